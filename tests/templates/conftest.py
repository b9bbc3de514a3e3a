from __future__ import annotations

import pytest

from tests.conftest import TWILIO_SID, TWILIO_TOKEN


@pytest.fixture
def wired_app(make_app, twilio, smtp):
    """Twilio and SMTP providers pointed at their wire fakes (push stays sandboxed)."""
    return make_app(TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN, TWILIO_FROM_NUMBER="+15005550006",
                    TWILIO_API_BASE_URL=twilio.base_url, PUBLIC_BASE_URL="http://localhost",
                    SMTP_HOST=smtp.host, SMTP_PORT=smtp.port, SMTP_FROM="App <app@mail.example.org>",
                    SMTP_STARTTLS="false")

from __future__ import annotations

import pytest

from tests.fakes.smtp_fake import SMTPFake
from tests.fakes.twilio_fake import TwilioFake

SID, TOKEN = "AC" + "2" * 32, "twilio-test-token"


@pytest.fixture
def twilio():
    with TwilioFake(SID, TOKEN) as fake:
        yield fake


@pytest.fixture
def smtp():
    with SMTPFake() as fake:
        yield fake


@pytest.fixture
def wired_app(make_app, twilio, smtp):
    """Twilio and SMTP providers pointed at their wire fakes (push stays sandboxed)."""
    return make_app(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM_NUMBER="+15005550006",
                    TWILIO_API_BASE_URL=twilio.base_url, PUBLIC_BASE_URL="http://localhost",
                    SMTP_HOST=smtp.host, SMTP_PORT=smtp.port, SMTP_FROM="App <app@mail.example.org>",
                    SMTP_STARTTLS="false")

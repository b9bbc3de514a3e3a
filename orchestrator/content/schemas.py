"""Request shapes of template management (`/v1/templates`, `orchestrator templates`).
Sources are Jinja2 text, checked and compiled when saved (content/render.py)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from ..schemas import Email, Locale, Strict, TemplateId, VariableName

MAX_SHORT_SOURCE = 2_000      # titles, subjects, URLs
MAX_TEXT_SOURCE = 50_000      # SMS text, push/in-app/email bodies
MAX_HTML_SOURCE = 200_000     # email HTML
MAX_TRANSLATIONS = 100


class SmsSource(Strict):
    text: str = Field(min_length=1, max_length=MAX_TEXT_SOURCE)


class PushSource(Strict):
    title: str = Field(default="", max_length=MAX_SHORT_SOURCE)
    body: str = Field(min_length=1, max_length=MAX_TEXT_SOURCE)
    image_url: str | None = Field(default=None, min_length=1, max_length=MAX_SHORT_SOURCE)
    action_url: str | None = Field(default=None, min_length=1, max_length=MAX_SHORT_SOURCE)


class EmailSource(Strict):
    subject: str = Field(min_length=1, max_length=MAX_SHORT_SOURCE)
    text: str = Field(min_length=1, max_length=MAX_TEXT_SOURCE)
    html: str | None = Field(default=None, min_length=1, max_length=MAX_HTML_SOURCE)


class InAppSource(Strict):
    title: str = Field(default="", max_length=MAX_SHORT_SOURCE)
    body: str = Field(min_length=1, max_length=MAX_TEXT_SOURCE)
    action_url: str | None = Field(default=None, min_length=1, max_length=MAX_SHORT_SOURCE)


class ChannelSources(Strict):
    """One variant per channel; a channel without one gets the first variant's title and
    body (in the order in_app, push, email, sms)."""

    sms: SmsSource | None = None
    push: PushSource | None = None
    email: EmailSource | None = None
    in_app: InAppSource | None = None

    @model_validator(mode="after")
    def _one(self) -> ChannelSources:
        if not any((self.sms, self.push, self.email, self.in_app)):
            raise ValueError("give at least one of sms, push, email, in_app")
        return self


class TemplateVersionIn(Strict):
    """A template's content: a new version of it each time it is saved."""

    default_locale: Locale = "en"
    reply_to: Email | None = None
    channels: ChannelSources
    translations: dict[Locale, ChannelSources] = Field(default_factory=dict, max_length=MAX_TRANSLATIONS)
    reason: str = Field(default="", max_length=2000)

    def definition(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude={"reason", "default_locale"})


class TemplateCreate(TemplateVersionIn):
    id: TemplateId


class PreviewIn(Strict):
    version: int | None = Field(default=None, ge=1, le=2_147_483_647)
    locale: Locale | None = None
    variables: dict[VariableName, Any] = Field(default_factory=dict, max_length=100)

"""Request shapes of template management (`/v1/templates`, `orchestrator templates`).
Sources are Jinja2 text, checked and compiled when saved (content/render.py). A variant's
fields and their limits follow the channel specs (channels/)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, create_model, model_validator

from channels import DECLARED, NAMES, ROUTE_ORDER, ChannelSpec, ContentField, FieldKind

from ..schemas import Email, Locale, Strict, TemplateId, VariableName

MAX_SHORT_SOURCE = 2_000      # titles, subjects, URLs
MAX_TEXT_SOURCE = 50_000      # SMS text, push/in-app/email bodies
MAX_HTML_SOURCE = 200_000     # email HTML
MAX_TRANSLATIONS = 100


# Longest source per field kind.
SOURCE_MAX_CHARS = {FieldKind.SHORT: MAX_SHORT_SOURCE, FieldKind.TEXT: MAX_TEXT_SOURCE, FieldKind.HTML: MAX_HTML_SOURCE,
                    FieldKind.IMAGE_URL: MAX_SHORT_SOURCE, FieldKind.LINK: MAX_SHORT_SOURCE}


def _source_field(f: ContentField) -> tuple[Any, Any]:
    """A required field is a non-empty source; an optional title may be empty; an optional
    HTML body or link is absent or non-empty."""
    limit = SOURCE_MAX_CHARS[f.kind]
    if f.required:
        return str, Field(min_length=1, max_length=limit)
    if f.kind == FieldKind.SHORT:
        return str, Field(default="", max_length=limit)
    return str | None, Field(default=None, min_length=1, max_length=limit)


def _source_model(spec: ChannelSpec) -> type[Strict]:
    """`<Channel>Source`: the channel's templated fields (not reply_to, set per version)."""
    return create_model(f"{spec.model_name}Source", __base__=Strict,
                        **{f.key: _source_field(f) for f in spec.content_fields if f.templated})


def _one(self: Strict) -> Strict:
    if not any(getattr(self, name) for name in NAMES):
        raise ValueError(f"give at least one of {', '.join(NAMES)}")
    return self


ChannelSources = create_model(
    "ChannelSources", __base__=Strict,
    __doc__="One variant per channel; a channel without one gets the first variant's title and\n"
            f"body (in the order {', '.join(ROUTE_ORDER)}).",
    __validators__={"_one": model_validator(mode="after")(_one)},
    **{spec.name: (_source_model(spec) | None, None) for spec in DECLARED})


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

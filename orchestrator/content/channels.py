"""The content stored on a message, resolved per channel.

Stored shape (`messages.content`, JSON)::

    {"title", "body", "html"?, "image_url"?, "action_url"?, "data"?,     # base content
     "channels"?: {"sms": {"text"}, "push": {"title", "body", "image_url", "action_url"},
                   "email": {"subject", "text", "html", "reply_to"},
                   "in_app": {"title", "body", "action_url"}},
     "template"?: {"id", "version", "locale"}}                            # where it came from

A channel's content is the base with that channel's entry laid over it: every key
*present* in the entry replaces the base field (an empty string clears an optional one), so
a rendered template variant (all keys present) stands alone, while an inline override
(`content.channels.sms.text`) changes only what it names. Rows written before per-channel
content have no `channels` and read exactly as before. Which keys a channel has, and how
they lay over the base, is its spec's (channels/<name>.py)."""

from __future__ import annotations

from typing import Any

from channels import DECLARED, SPECS

# Per channel: the stored key -> the Delivery field it fills (each channel spec's content_fields).
CHANNEL_FIELDS: dict[str, dict[str, str]] = {spec.name: spec.delivery_fields for spec in DECLARED}
_OPTIONAL = ("html", "image_url", "action_url", "reply_to")


def for_channel(stored: dict[str, Any] | None, channel: str) -> dict[str, Any]:
    """The fields a provider sends on `channel`: title, body, html, image_url, action_url,
    data, reply_to (absent optional fields are None)."""
    stored = stored or {}
    out: dict[str, Any] = {
        "title": stored.get("title", ""), "body": stored.get("body", ""), "html": stored.get("html"),
        "image_url": stored.get("image_url"), "action_url": stored.get("action_url"),
        "data": stored.get("data") or {}, "reply_to": stored.get("reply_to"),
    }
    entry = (stored.get("channels") or {}).get(str(channel))
    if entry:
        spec = SPECS.get(str(channel))
        if spec is not None and spec.text_is_whole and "text" in entry:
            out["title"] = ""  # the text is the whole text (SMS): no title line in front of it
        if spec is None or not spec.keeps_html:
            out["html"] = None
        for key, target in CHANNEL_FIELDS.get(channel, {}).items():
            if key in entry:
                out[target] = entry[key]
    for key in _OPTIONAL:
        out[key] = out[key] or None
    return out


def rendered_texts(stored: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """(title, body) per channel the content defines, for size and routing facts."""
    out = {}
    for channel in CHANNEL_FIELDS:
        c = for_channel(stored, channel)
        out[channel] = (c["title"] or "", c["body"] or "")
    return out

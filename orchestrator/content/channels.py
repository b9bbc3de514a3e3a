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
content have no `channels` and read exactly as before."""

from __future__ import annotations

from typing import Any

from providers.base import Channel

# Per channel: the stored key -> the Delivery field it fills.
CHANNEL_FIELDS: dict[str, dict[str, str]] = {
    Channel.SMS: {"text": "body"},
    Channel.PUSH: {"title": "title", "body": "body", "image_url": "image_url", "action_url": "action_url"},
    Channel.EMAIL: {"subject": "title", "text": "body", "html": "html", "reply_to": "reply_to"},
    Channel.IN_APP: {"title": "title", "body": "body", "action_url": "action_url"},
}
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
        if channel == Channel.SMS and "text" in entry:
            out["title"] = ""  # the SMS text is the whole text: no title line in front of it
        if channel != Channel.EMAIL:
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

"""What one channel is, as data: the `ChannelSpec` every channel module declares.

The policy engine, planning, content, preferences, review charts and the provider registry
read the list of channels from these specs (channels/registry.py), never from literals.
A spec holds only plain values, so every package may import it: `channels/` imports
nothing of the service, of `policies/` or of `providers/`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reach(StrEnum):
    """How a recipient is reached on a channel, i.e. where the address comes from."""

    INBOX = "inbox"      # every user id has one; no address to store
    FIELD = "field"      # one address on the recipient's profile (`address_field`)
    DEVICES = "devices"  # one delivery per active device (push)


class FieldKind(StrEnum):
    """What a content field holds, which sets its limits and checks (the request models in
    orchestrator/schemas.py and orchestrator/content/schemas.py are built from these)."""

    SHORT = "short"          # a title or subject line
    TEXT = "text"            # a body or message text
    HTML = "html"            # an HTML body (escaped when rendered from a template)
    IMAGE_URL = "image_url"  # an https image
    LINK = "link"            # https, or an app scheme of ACTION_URL_SCHEMES
    EMAIL = "email"          # an email address


@dataclass(frozen=True)
class ContentField:
    key: str                 # the key in content.channels.<channel> and in a template's variant
    target: str              # the Delivery field it fills
    kind: FieldKind
    required: bool = False   # the channel's message cannot go without it (never empty)
    templated: bool = True   # False: given per message or per template version, not rendered (reply_to)


class EngagementKind(StrEnum):
    """What a channel's receipts can report beyond delivery (same values as
    providers.base.Engagement)."""

    SEEN = "seen"
    READ = "read"
    CLICKED = "clicked"
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True)
class ChannelSpec:
    name: str                       # the stored value ("sms"); also its consent key and fact suffix
    label: str                      # "SMS", "In-app": titles, chart legends, policy labels
    word: str                       # "SMS", "in-app": the channel inside a sentence
    route_rank: int                 # canonical routing order: lower is tried first by default
    reach: Reach
    # Reach.FIELD: the recipient attribute holding the address, and the one that says it works
    address_field: str | None = None
    address_valid_field: str | None = None
    consent_default: bool = True    # consent when the profile says nothing (False: opt-in channels)
    address_words: str = ""         # "a usable phone number": what the policy's floor requires
    unavailable_reason: str = ""    # the engine's reason when the floor excludes the channel
    # Content: the channel's variant, in order (its keys, what they fill, their kinds).
    content_fields: tuple[ContentField, ...] = ()
    keeps_html: bool = False        # the base content's html survives a channel entry
    text_is_whole: bool = False     # the channel's `text` is the whole text: no title line in front
    # Receipts: whether a provider can report a failure after accepting a send (status
    # callbacks, bounces), and which engagement its receipts can report (declared for the
    # reader and for new channels; nothing filters receipts by it).
    late_failure: bool = False
    engagement: frozenset[EngagementKind] = frozenset()
    out_of_app: bool = True         # counts as "out of the app" for the critical-message floor
    colour: str = "#4a5568"         # review charts

    @property
    def source_fields(self) -> tuple[str, ...]:
        """Keys of the channel's template variant, in order."""
        return tuple(f.key for f in self.content_fields if f.templated)

    @property
    def required_fields(self) -> tuple[str, ...]:
        """Keys a rendered template may not leave empty."""
        return tuple(f.key for f in self.content_fields if f.required)

    @property
    def delivery_fields(self) -> dict[str, str]:
        """Stored key -> the Delivery field it fills."""
        return {f.key: f.target for f in self.content_fields}

    @property
    def model_name(self) -> str:
        """"InApp" for in_app: the stem of its request models' names (InAppOverride, InAppSource)."""
        return "".join(part.capitalize() for part in self.name.split("_"))

    def address_of(self, recipient: object) -> str | None:
        """The recipient's address on this channel (Reach.FIELD only), or None."""
        return getattr(recipient, self.address_field) if self.address_field else None

    def reachable(self, recipient: object) -> bool:
        """Whether the recipient has a working address on this channel (consent aside)."""
        if self.reach == Reach.INBOX:
            return True
        if self.reach == Reach.DEVICES:
            return any(d.active for d in getattr(recipient, "devices", ()))
        valid = getattr(recipient, self.address_valid_field) if self.address_valid_field else True
        return bool(self.address_of(recipient)) and bool(valid)

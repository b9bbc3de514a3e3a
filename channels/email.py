"""The email channel: one message to the recipient's email address."""

from .spec import ChannelSpec, EngagementKind, Reach

SPEC = ChannelSpec(
    name="email", label="Email", word="email", route_rank=2, reach=Reach.FIELD,
    address_field="email", address_valid_field="email_valid",
    address_words="a usable email address", unavailable_reason="no usable email address or no email consent",
    content_fields=(("subject", "title"), ("text", "body"), ("html", "html"), ("reply_to", "reply_to")),
    untemplated_fields=("reply_to",), required_fields=("subject", "text"),
    keeps_html=True, late_failure=True,
    engagement=frozenset({EngagementKind.READ, EngagementKind.CLICKED, EngagementKind.ACKNOWLEDGED}),
    colour="#2f855a",
)

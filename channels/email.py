"""The email channel: one message to the recipient's email address."""

from .spec import ChannelSpec, ContentField, EngagementKind, FieldKind, Reach

SPEC = ChannelSpec(
    name="email", label="Email", word="email", route_rank=2, reach=Reach.FIELD,
    address_field="email", address_valid_field="email_valid",
    address_words="a usable email address", unavailable_reason="no usable email address or no email consent",
    content_fields=(ContentField("subject", "title", FieldKind.SHORT, required=True),
                    ContentField("text", "body", FieldKind.TEXT, required=True),
                    ContentField("html", "html", FieldKind.HTML),
                    ContentField("reply_to", "reply_to", FieldKind.EMAIL, templated=False)),
    keeps_html=True, late_failure=True,
    engagement=frozenset({EngagementKind.READ, EngagementKind.CLICKED, EngagementKind.ACKNOWLEDGED}),
    colour="#2f855a",
)

"""The in-app channel: the user's inbox (and the live display when they are in the app)."""

from .spec import ChannelSpec, ContentField, EngagementKind, FieldKind, Reach

SPEC = ChannelSpec(
    name="in_app", label="In-app", word="in-app", route_rank=0, reach=Reach.INBOX,
    address_words="an in-app inbox", unavailable_reason="no consent for in-app messages",
    content_fields=(ContentField("title", "title", FieldKind.SHORT),
                    ContentField("body", "body", FieldKind.TEXT, required=True),
                    ContentField("action_url", "action_url", FieldKind.LINK)),
    engagement=frozenset({EngagementKind.SEEN, EngagementKind.READ, EngagementKind.CLICKED,
                          EngagementKind.ACKNOWLEDGED}),
    out_of_app=False, colour="#2b6cb0",
)

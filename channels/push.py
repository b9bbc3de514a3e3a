"""The push channel: one notification per active device, on the device's platform (the push
providers of providers/catalog.py each serve one platform)."""

from .spec import ChannelSpec, EngagementKind, Reach

SPEC = ChannelSpec(
    name="push", label="Push", word="push", route_rank=1, reach=Reach.DEVICES,
    address_words="an active push device", unavailable_reason="no active push device or no push consent",
    content_fields=(("title", "title"), ("body", "body"), ("image_url", "image_url"), ("action_url", "action_url")),
    required_fields=("body",),
    engagement=frozenset({EngagementKind.CLICKED}),
    colour="#6b46c1",
)

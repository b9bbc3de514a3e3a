"""The push channel: one notification per active device, on the device's platform (the push
providers of providers/catalog.py each serve one platform)."""

from .spec import ChannelSpec, ContentField, FieldKind, Reach

SPEC = ChannelSpec(
    name="push", label="Push", word="push", route_rank=1, reach=Reach.DEVICES,
    address_words="an active push device", unavailable_reason="no active push device or no push consent",
    content_fields=(ContentField("title", "title", FieldKind.SHORT),
                    ContentField("body", "body", FieldKind.TEXT, required=True),
                    ContentField("image_url", "image_url", FieldKind.IMAGE_URL),
                    ContentField("action_url", "action_url", FieldKind.LINK)),
    colour="#6b46c1",
)

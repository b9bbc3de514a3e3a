"""The SMS channel: one text to the recipient's phone number."""

from .spec import ChannelSpec, ContentField, FieldKind, Reach

SPEC = ChannelSpec(
    name="sms", label="SMS", word="SMS", route_rank=3, reach=Reach.FIELD,
    address_field="phone", address_valid_field="phone_valid",
    address_words="a usable phone number", unavailable_reason="no usable phone number or no SMS consent",
    content_fields=(ContentField("text", "body", FieldKind.TEXT, required=True),),
    text_is_whole=True, late_failure=True,
    colour="#c05621",
)

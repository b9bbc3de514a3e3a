"""The SMS channel: one text to the recipient's phone number."""

from .spec import ChannelSpec, Reach

SPEC = ChannelSpec(
    name="sms", label="SMS", word="SMS", route_rank=3, reach=Reach.FIELD,
    address_field="phone", address_valid_field="phone_valid",
    address_words="a usable phone number", unavailable_reason="no usable phone number or no SMS consent",
    content_fields=(("text", "body"),),
    required_fields=("text",),
    text_is_whole=True, late_failure=True,
    colour="#c05621",
)

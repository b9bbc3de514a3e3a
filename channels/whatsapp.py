"""The WhatsApp channel: one message to the recipient's phone number on WhatsApp, sent by the
business's WhatsApp sender. Opt-in: a user who never said yes gets none (WhatsApp's business
policy requires it). Unlike SMS it comes from the business's verified profile, reports `read`,
and the user can answer in the same thread (seed 004's three problems with SMS)."""

from .spec import ChannelSpec, ContentField, EngagementKind, FieldKind, Reach

SPEC = ChannelSpec(
    name="whatsapp", label="WhatsApp", word="WhatsApp", route_rank=4, reach=Reach.FIELD,
    address_field="phone", address_valid_field="phone_valid", consent_default=False,
    address_words="a usable phone number and a WhatsApp opt-in",
    unavailable_reason="no usable phone number or no WhatsApp opt-in",
    content_fields=(ContentField("text", "body", FieldKind.TEXT, required=True),),
    text_is_whole=True, late_failure=True,
    engagement=frozenset({EngagementKind.READ}),
    colour="#b83280",
)

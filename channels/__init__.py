"""Channels as data: one module per channel (in_app, push, sms, email) declares its
`ChannelSpec`; `registry` lists them and defines the `Channel` enum. Imports nothing of
the service, `policies/` or `providers/`, which all read their channel vocabulary here."""

from .registry import DECLARED, NAMES, ROUTE_ORDER, SPECS, Channel, spec
from .spec import ChannelSpec, ContentField, EngagementKind, FieldKind, Reach

__all__ = ["DECLARED", "NAMES", "ROUTE_ORDER", "SPECS", "Channel", "ChannelSpec", "ContentField", "EngagementKind",
           "FieldKind", "Reach", "spec"]

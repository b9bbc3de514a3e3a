"""A stored template version, compiled once and rendered per message: the variant of each
channel in the recipient's locale (falling back along `ko-KR` → `ko` → the default)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from channels import DECLARED, ROUTE_ORDER, SPECS

from ..domain import locales
from .limits import cpu_budget
from .render import MAX_OUTPUT_CHARS, Compiled, RenderError, compile_source, dry_run

# Field order per channel (its spec's source fields); these are the keys of content/channels.py's
# stored entries.
CHANNEL_SOURCE_FIELDS: dict[str, tuple[str, ...]] = {spec.name: spec.source_fields for spec in DECLARED}
# The base title/body/action_url come from the first variant in routing order.
BASE_ORDER = ROUTE_ORDER
URL_FIELDS = ("image_url", "action_url")
# What a channel's message cannot go without: a render that leaves one empty is refused.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {spec.name: spec.required_fields for spec in DECLARED}
# Longest rendered value per field (the inline content's limits); others: render.MAX_OUTPUT_CHARS.
FIELD_LIMITS = {"title": 500, "subject": 500, "image_url": 2000, "action_url": 2000}


def _keeps_html(channel: str) -> bool:
    spec = SPECS.get(channel)
    return spec is not None and spec.keeps_html


class SourceError(Exception):
    """A source that does not compile; `field` names it, e.g. `translations.ko.email.html`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Rendered:
    locale: str
    channels: dict[str, dict[str, str]]
    title: str
    body: str
    action_url: str


@dataclass(frozen=True)
class CompiledVersion:
    template_id: str
    version: int
    default_locale: str
    reply_to: str | None
    variables: frozenset[str]
    # locale -> channel -> field -> compiled source
    sources: dict[str, dict[str, dict[str, Compiled]]]

    def choose_locale(self, wanted: str | None) -> str:
        return locales.choose(wanted, frozenset(self.sources), self.default_locale)

    def render(self, wanted_locale: str | None, variables: dict[str, Any],
               reply_to: str | None = None) -> Rendered:
        """Every channel the version has a variant for, in the best locale for each.
        Raises RenderError (with `.variable` when one is at fault)."""
        chain = [*locales.chain(wanted_locale), self.default_locale]
        with cpu_budget():  # one budget for the whole message, every channel and field
            channels = self._render_channels(chain, variables, reply_to)
        first = channels[next(c for c in BASE_ORDER if c in channels)]
        title = first.get("title", first.get("subject", ""))
        body = first.get("body", first.get("text", ""))
        return Rendered(self.choose_locale(wanted_locale), channels, title, body, first.get("action_url", ""))

    def _render_channels(self, chain: list[str], variables: dict[str, Any],
                         reply_to: str | None) -> dict[str, dict[str, str]]:
        channels: dict[str, dict[str, str]] = {}
        for channel, fields in CHANNEL_SOURCE_FIELDS.items():
            variant = next((self.sources[loc][channel] for loc in chain
                            if channel in self.sources.get(loc, {})), None)
            if variant is None:
                continue
            out = {}
            for f in fields:
                try:
                    out[f] = variant[f].render(variables, FIELD_LIMITS.get(f, MAX_OUTPUT_CHARS)) if f in variant else ""
                except RenderError as exc:
                    raise RenderError(f"{channel}.{f}: {exc.message}", exc.variable,
                                      over_limit=exc.over_limit) from None
            if "reply_to" in SPECS[channel].delivery_fields:  # email: from the message or the version
                out["reply_to"] = reply_to or self.reply_to or ""
            channels[channel] = out
        return channels

    def dry_run(self) -> None:
        """Every source rendered once with stand-in variables, under one render's budget in
        all (render.dry_run): SourceError naming the first whose own work is over a limit."""
        with cpu_budget():
            for loc, variants in self.sources.items():
                prefix = "channels" if loc == self.default_locale else f"translations.{loc}"
                for channel, variant in variants.items():
                    for name, compiled in variant.items():
                        try:
                            dry_run(compiled, FIELD_LIMITS.get(name, MAX_OUTPUT_CHARS))
                        except RenderError as exc:
                            raise SourceError(f"{prefix}.{channel}.{name}", exc.message) from None


def compile_version(template_id: str, version: int, default_locale: str, definition: dict[str, Any]
                    ) -> CompiledVersion:
    """Compiles every source of a version's definition ({channels, translations, reply_to});
    SourceError names the first that fails."""
    entries = [(default_locale, "channels", definition.get("channels") or {})]
    entries += [(loc, f"translations.{loc}", variants)
                for loc, variants in (definition.get("translations") or {}).items()]
    sources: dict[str, dict[str, dict[str, Compiled]]] = {}
    variables: set[str] = set()
    for loc, prefix, variants in entries:
        for channel, fields in variants.items():
            variant: dict[str, Compiled] = {}
            for name, source in fields.items():
                if source is None:
                    continue
                try:
                    compiled = compile_source(source, html=(name == "html" and _keeps_html(channel)))
                except RenderError as exc:
                    raise SourceError(f"{prefix}.{channel}.{name}", exc.message) from None
                variant[name] = compiled
                variables |= compiled.variables
            sources.setdefault(loc, {})[channel] = variant
    return CompiledVersion(template_id, version, default_locale, definition.get("reply_to"),
                           frozenset(variables), sources)

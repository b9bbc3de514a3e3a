"""Which provider client carries an attempt. Configured providers come from the catalog
(providers/catalog.py) and the environment; a channel or push platform with none configured
is served by the sandbox, and `/readyz` says which is which. Several providers for one
channel are tried in order, skipping any whose circuit breaker is open."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from providers.base import Channel, ErrorClass, Provider, ProviderError
from providers.sandbox import SandboxProvider
from providers.spec import ProviderSpec

from ..config import ConfigError, Settings
from ..domain.statuses import DispatchErrorCode
from .breaker import BreakerStore, CircuitBreaker, LocalBreakerStore

BACKUP_MARK = "_BACKUP_"


class ProviderMode(StrEnum):
    """How a configured provider sends (health check, `providers`)."""

    LIVE = "live"        # to the real service
    SANDBOX = "sandbox"  # recorded only: no credentials for the real one


def backup_env(env: Mapping[str, str], prefix: str) -> dict[str, str]:
    """`TWILIO_BACKUP_ACCOUNT_SID` etc. as `TWILIO_ACCOUNT_SID`: a second account of the same
    provider, tried when the first fails over (configuration error, outage, open breaker)."""
    marker = f"{prefix}{BACKUP_MARK}"
    return {f"{prefix}_{k[len(marker):]}": v for k, v in env.items() if k.startswith(marker)}


@dataclass
class ProviderRegistry:
    by_channel: dict[str, list[Provider]]
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    push_platforms: dict[str, list[Provider]] = field(default_factory=dict)
    breaker_store: BreakerStore = field(default_factory=LocalBreakerStore)

    def __post_init__(self) -> None:
        for provider in self.all():
            self.breakers.setdefault(provider.name, CircuitBreaker(provider.name, self.breaker_store))

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Breakers read this clock (seconds since the epoch; several processes compare it)."""
        for breaker in self.breakers.values():
            breaker.clock = clock

    def all(self) -> list[Provider]:
        seen: dict[str, Provider] = {}
        for group in (*self.by_channel.values(), *self.push_platforms.values()):
            for p in group:
                seen.setdefault(p.name, p)
        return list(seen.values())

    def pool(self, channel: str, platform: str | None = None, preferred: str | None = None) -> list[Provider]:
        """Every provider of the channel (and push platform), the preferred one first; no
        breaker is consulted."""
        pool = list(self.push_platforms.get(platform, [])) if platform else []
        pool = pool or list(self.by_channel.get(channel, []))
        if preferred:
            pool.sort(key=lambda p: p.name != preferred)
        return pool

    def candidates(self, channel: str, platform: str | None = None,
                   preferred: str | None = None) -> Iterator[Provider]:
        """Providers to try for one attempt, in order, asked lazily: a breaker is consulted
        only when the previous provider failed, so a half-open trial is claimed only by a
        call that is really made. Open breakers are skipped; when every one refused, the
        attempt waits (`circuit_open_error`)."""
        for provider in self.pool(channel, platform, preferred):
            if self.breakers[provider.name].allows():
                yield provider

    def circuit_open_error(self, channel: str, platform: str | None = None) -> ProviderError | None:
        """Why no provider was tried: every breaker refused (a transient error, retried once the
        first breaker can take a trial), or none is configured (None)."""
        pool = self.pool(channel, platform)
        if not pool:
            return None
        wait = min(self.breakers[p.name].seconds_until_trial() for p in pool)
        return ProviderError(ErrorClass.TRANSIENT, DispatchErrorCode.CIRCUIT_OPEN,
                             "every provider's circuit breaker is open", provider=pool[0].name,
                             retry_after=max(wait, 1.0))

    def status_callback_url(self, channel: str, public_base_url: str) -> str | None:
        """Where the channel's provider wants its delivery receipts, if it calls back: each
        provider names its own webhook path (`status_callback_path`)."""
        if not public_base_url:
            return None
        for provider in self.by_channel.get(channel, []):
            path = getattr(provider, "status_callback_path", None)
            if path:
                return f"{public_base_url}{path}"
        return None

    def describe(self) -> dict[str, Any]:
        return {
            p.name: {
                "channel": str(p.channel),
                "mode": ProviderMode.SANDBOX if isinstance(p, SandboxProvider) else ProviderMode.LIVE,
                "circuit": self.breakers[p.name].state,
            }
            for p in self.all()
        }

    def summary(self) -> str:
        """One line for startup: which channels are live (by which provider) and which sandboxed."""
        live: list[str] = []
        sandbox: list[str] = []
        groups = [(str(c), ps) for c, ps in self.by_channel.items() if c != Channel.PUSH or not self.push_platforms]
        groups += [(f"push/{platform}", ps) for platform, ps in self.push_platforms.items()]
        for label, providers in groups:
            real = [p.name for p in providers if not isinstance(p, SandboxProvider)]
            if real:
                live.append(f"{label}({','.join(real)})")
            else:
                sandbox.append(label)
        return f"live={' '.join(live) or '-'} sandbox={' '.join(sandbox) or '-'}"

    @classmethod
    def from_settings(cls, settings: Settings, extra: Mapping[str, list[Provider]] | None = None,
                      breaker_store: BreakerStore | None = None) -> ProviderRegistry:
        """Every provider of the catalog (providers/catalog.py) that is configured, in catalog
        order; a channel or push platform with none is served by the sandbox. `breaker_store`:
        where breaker state lives (breaker.make_store; per process when None)."""
        from providers import catalog

        from ..inapp.provider import InAppProvider

        env, sink = settings.env, settings.sandbox_sink
        by_channel: dict[str, list[Provider]] = {}
        platforms: dict[str, list[Provider]] = {}
        platform_channel: dict[str, str] = {}
        for spec in catalog.PROVIDERS:
            if spec.build is None:
                continue  # receipts only (a webhook)
            group = by_channel.setdefault(spec.channel, [])
            if spec.platform:
                platform_channel[spec.platform] = spec.channel
                group = platforms.setdefault(spec.platform, [])
            group += _configured(spec, env)
        for channel in Channel:
            by_channel.setdefault(channel, [])
        by_channel[Channel.IN_APP] = [InAppProvider()]  # the service's own inbox
        for channel, live in by_channel.items():
            if not live:
                live.append(SandboxProvider(Channel(channel), sink))
        for platform, live in platforms.items():
            if not live:  # the channel's sandbox serves it (one provider, one breaker)
                live.append(by_channel[platform_channel[platform]][0])
        for channel, providers in (extra or {}).items():
            by_channel[channel] = list(providers)
        return cls(by_channel=by_channel, push_platforms=platforms,
                   breaker_store=breaker_store or LocalBreakerStore())


def _configured(spec: ProviderSpec, env: Mapping[str, str]) -> list[Provider]:
    """The provider from its settings, and its backup account when the spec has one
    (`TWILIO_BACKUP_*`, named "twilio-backup" so breakers and attempts tell the two apart).
    Any mistake in the variables becomes one ConfigError line naming them."""
    found: list[Provider] = []
    accounts = [(env, "", lambda text: text)]
    if spec.backup_prefix:
        prefix = spec.backup_prefix
        accounts.append((backup_env(env, prefix), "-backup",
                         lambda text: text.replace(f"{prefix}_", f"{prefix}{BACKUP_MARK}")))
    for account_env, suffix, rename in accounts:
        try:
            typed = spec.settings(account_env)
            provider = spec.build(typed) if typed is not None and spec.build is not None else None
        except (ValueError, OSError) as exc:
            raise ConfigError(rename(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None
        if provider is not None:
            if suffix:
                provider.name = f"{spec.name}{suffix}"
            found.append(provider)
    return found

"""Which provider client carries an attempt. Configured providers come from the
environment; a channel with none configured is served by the sandbox, and `/readyz` says
which is which. Several providers for one channel are tried in order, skipping any whose
circuit breaker is open."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from providers.base import Channel, ErrorClass, Provider, ProviderError
from providers.sandbox import SandboxProvider

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
        pool = list(self.push_platforms.get(platform or "", [])) if channel == Channel.PUSH else []
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
        """`breaker_store`: where breaker state lives (breaker.make_store; per process when None)."""
        from providers.apns import APNsProvider
        from providers.fcm import FCMProvider
        from providers.smtp_email import SMTPEmailProvider
        from providers.twilio_sms import TwilioSMSProvider

        from ..inapp.provider import InAppProvider

        env = settings.env
        sink = settings.sandbox_sink

        def live_or_sandbox(channel: Channel, *found: Provider | None) -> list[Provider]:
            live = [p for p in found if p is not None]
            return live or [SandboxProvider(channel, sink)]

        def configured(build: Callable[[Mapping[str, str]], Provider | None], settings_env: Mapping[str, str],
                       rename: Callable[[str], str] = lambda text: text) -> Provider | None:
            """One provider from its variables; any mistake in them becomes one ConfigError line."""
            try:
                return build(settings_env)
            except (ValueError, OSError) as exc:
                raise ConfigError(rename(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None

        fcm, apns = configured(FCMProvider.from_env, env), configured(APNsProvider.from_env, env)
        sms_backup = configured(TwilioSMSProvider.from_env, backup_env(env, "TWILIO"),
                                lambda text: text.replace("TWILIO_", "TWILIO_BACKUP_"))
        if sms_backup is not None:
            sms_backup.name = "twilio-backup"  # breakers and attempts tell the two apart
        push_sandbox = SandboxProvider(Channel.PUSH, sink)
        by_channel: dict[str, list[Provider]] = {
            Channel.SMS: live_or_sandbox(Channel.SMS, configured(TwilioSMSProvider.from_env, env), sms_backup),
            Channel.EMAIL: live_or_sandbox(Channel.EMAIL, configured(SMTPEmailProvider.from_env, env)),
            Channel.PUSH: [push_sandbox],
            Channel.IN_APP: [InAppProvider()],
        }
        platforms = {"fcm": [fcm or push_sandbox], "apns": [apns or push_sandbox]}
        for channel, providers in (extra or {}).items():
            by_channel[channel] = list(providers)
        return cls(by_channel=by_channel, push_platforms=platforms,
                   breaker_store=breaker_store or LocalBreakerStore())

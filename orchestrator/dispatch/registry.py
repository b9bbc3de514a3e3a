"""Which provider client carries an attempt. Configured providers come from the
environment; a channel with none configured is served by the sandbox, and `/readyz` says
which is which. Several providers for one channel are tried in order, skipping any whose
circuit breaker is open."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.base import Channel, Provider
from providers.sandbox import SandboxProvider

from ..config import ConfigError, Settings


class CircuitBreaker:
    """Opens after `threshold` consecutive failures and lets one trial through after
    `cooldown` seconds (half-open). Hand-written: a dozen lines of per-process state, and
    breaker libraries wrap calls in decorators, while we decide per classified error."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.cooldown else "open"

    def allows(self) -> bool:
        return self.state != "open"

    def record_success(self) -> None:
        with self._lock:
            self.failures = 0
            self.opened_at = None

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.threshold or self.opened_at is not None:
                self.opened_at = self.clock()


BACKUP_MARK = "_BACKUP_"


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

    def __post_init__(self) -> None:
        for provider in self.all():
            self.breakers.setdefault(provider.name, CircuitBreaker())

    def all(self) -> list[Provider]:
        seen: dict[str, Provider] = {}
        for group in (*self.by_channel.values(), *self.push_platforms.values()):
            for p in group:
                seen.setdefault(p.name, p)
        return list(seen.values())

    def candidates(self, channel: str, platform: str | None = None,
                   preferred: str | None = None) -> list[Provider]:
        """Providers to try for one attempt, in order; breakers that are open are skipped
        unless every provider is open (then the first is tried: a trial beats giving up)."""
        pool = list(self.push_platforms.get(platform or "", [])) if channel == Channel.PUSH else []
        pool = pool or list(self.by_channel.get(channel, []))
        if preferred:
            pool.sort(key=lambda p: p.name != preferred)
        allowed = [p for p in pool if self.breakers[p.name].allows()]
        return allowed or pool[:1]

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
                "mode": "sandbox" if isinstance(p, SandboxProvider) else "live",
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
    def from_settings(cls, settings: Settings, extra: Mapping[str, list[Provider]] | None = None
                      ) -> ProviderRegistry:
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
        return cls(by_channel=by_channel, push_platforms=platforms)

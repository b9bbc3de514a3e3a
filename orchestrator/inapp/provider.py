"""In-app delivery is ours: the attempt row is the inbox entry. Sending marks it visible;
the live stream then carries it to any connected client (see inapp/stream.py)."""

from __future__ import annotations

from providers.base import AttemptStatus, Channel, Delivery, SendResult


class InAppProvider:
    name = "inapp"
    channel = Channel.IN_APP

    def send(self, delivery: Delivery) -> SendResult:
        return SendResult(provider=self.name, provider_message_id=delivery.attempt_id,
                          status=AttemptStatus.SENT)

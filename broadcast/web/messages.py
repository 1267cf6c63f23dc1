"""The web app's confirmation sends: the SMS-pumping caps first (sms_caps.py), then the runtime's
channels and capacity (broadcast/delivery/confirmations.py)."""

from __future__ import annotations

from collections.abc import Callable

from broadcast.delivery.confirmations import ConfirmationResult, send_confirmation
from broadcast.registrants.signup import PendingMessage
from broadcast.runtime import Runtime
from broadcast.web.sms_caps import SmsCaps


class Confirmations:
    """Sends double opt-in messages once their transaction has committed."""

    def __init__(self, caps: SmsCaps, runtime: Callable[[], Runtime]) -> None:
        self.caps = caps  # the platform's: pumping is capped across all its forces
        self._runtime = runtime

    def send(self, message: PendingMessage) -> ConfirmationResult:
        """Send one confirmation. Not sent (and logged) if a confirmation SMS cap is reached, the
        channel has no capacity now (`busy_for` says for how long) or the provider refused."""
        # The caps before the channel's capacity: a pumping script must not use up alert capacity.
        if message.channel == "sms" and not self.caps.allow(message.to):
            return ConfirmationResult(False)
        return send_confirmation(self._runtime(), message)

    def send_all(self, messages: list[PendingMessage]) -> list[ConfirmationResult]:
        return [self.send(message) for message in messages]

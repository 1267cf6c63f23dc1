"""Every Twilio error code and HTTP status we act on, mapped in one table to what happens next.

Kinds: ``transient`` (retry later with backoff until the alert expires), ``permanent`` (never
retry; the delivery ends undeliverable) and ``suppress`` (permanent, and the address must not be
used again on this channel). Problems with *our* account or sender (bad credentials, a From
number Twilio will not send from) are transient on purpose: every delivery would fail the same
way, and fixing the setting while retries are pending rescues the alert instead of discarding it.
The ``30xxx`` codes arrive later in status callbacks; they are here so the web app classifies
them with the same table.
"""

from __future__ import annotations

from typing import Literal

from broadcast.channels.base import ChannelError, PermanentChannelError, TransientChannelError

Kind = Literal["transient", "permanent", "suppress"]

TWILIO_ERRORS: dict[int, tuple[Kind, str]] = {
    # Account and sender setup: ours to fix, so retry rather than discard.
    20003: ("transient", "Twilio rejected the credentials; check BROADCAST_TWILIO_*"),
    20404: ("transient", "Twilio resource not found; check the account SID and API URL"),
    20429: ("transient", "Twilio rate limit (too many requests)"),
    20500: ("transient", "Twilio internal error"),
    20503: ("transient", "Twilio service unavailable"),
    21210: (
        "transient",
        "caller ID is not a verified or Twilio number; check BROADCAST_VOICE_FROM",
    ),
    21212: ("transient", "invalid From number; check BROADCAST_SMS_FROM / BROADCAST_VOICE_FROM"),
    21603: ("transient", "no From number or Messaging Service given; check BROADCAST_SMS_FROM"),
    21606: ("transient", "From number cannot send SMS; check BROADCAST_SMS_FROM"),
    21611: ("transient", "the sender's outgoing queue is full"),
    # The recipient: retrying the same message cannot help.
    21211: ("permanent", "invalid To number"),
    21214: ("permanent", "To number cannot be reached by voice"),
    21215: ("permanent", "calls to this destination are not permitted on the account"),
    21217: ("permanent", "To number is not a valid phone number"),
    21408: ("permanent", "SMS to this region is not enabled on the account"),
    21602: ("permanent", "message body is required"),
    21604: ("permanent", "To number is required"),
    21612: ("permanent", "To number cannot be reached by SMS from this sender"),
    21614: ("permanent", "To number is not a mobile number"),
    21617: ("permanent", "message body is too long"),
    13223: ("permanent", "To number is not in a dialable format"),
    13224: ("permanent", "To number is not a valid phone number"),
    13227: ("permanent", "international calling is not enabled for this destination"),
    # The recipient said no: suppress the number on this channel.
    21610: ("suppress", "the recipient has opted out (replied STOP)"),
    # Delivery-status codes from status callbacks.
    30001: ("transient", "Twilio queue overflow"),
    30002: ("transient", "Twilio account suspended"),
    30003: ("permanent", "handset unreachable"),
    30004: ("permanent", "message blocked by the carrier or recipient"),
    30005: ("permanent", "unknown or inactive destination"),
    30006: ("permanent", "landline or unreachable carrier"),
    30007: ("permanent", "message filtered by the carrier"),
    30008: ("transient", "unknown delivery error"),
}

# Used when a response carries no code we know.
HTTP_STATUSES: dict[int, tuple[Kind, str]] = {
    400: ("permanent", "Twilio rejected the request"),
    401: ("transient", "Twilio rejected the credentials; check BROADCAST_TWILIO_*"),
    403: ("permanent", "Twilio refused the request"),
    404: ("transient", "Twilio resource not found; check the account SID and API URL"),
    429: ("transient", "Twilio rate limit (too many requests)"),
}


def classify(code: int | None, http_status: int | None) -> tuple[Kind, str]:
    """The kind and operator-facing reason for a Twilio error code and/or HTTP status."""
    if code is not None and code in TWILIO_ERRORS:
        return TWILIO_ERRORS[code]
    if http_status is not None:
        if http_status in HTTP_STATUSES:
            return HTTP_STATUSES[http_status]
        if http_status >= 500:
            return "transient", f"Twilio server error (HTTP {http_status})"
        if http_status >= 400:
            return "permanent", f"Twilio rejected the request (HTTP {http_status})"
    return "transient", "unexpected Twilio error"


def twilio_error(code: int | None, http_status: int | None) -> ChannelError:
    """The channel error for a Twilio failure (code takes precedence over HTTP status)."""
    kind, reason = classify(code, http_status)
    shown = str(code) if code is not None else (str(http_status) if http_status else None)
    if kind == "transient":
        return TransientChannelError(reason, code=shown)
    return PermanentChannelError(reason, code=shown, suppress=kind == "suppress")

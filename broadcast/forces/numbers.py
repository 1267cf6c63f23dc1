"""Which force a Twilio number is: each force's SMS sender and caller number (its profile's
`sms_from`, `voice_from`, else the platform's). Webhooks are routed by it (web/routes/twilio.py):
the number a registrant texted, or the number a message or call of ours came from."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from broadcast.forces.registry import ForceInfo
from broadcast.settings import Settings

# The field of a Twilio webhook naming our number: an inbound SMS was sent *to* it; status
# callbacks and a call's keypress are about a message or call we sent *from* it.
INBOUND_PATHS = ("/twilio/sms/inbound",)


def our_number_field(path: str) -> str:
    return "To" if path in INBOUND_PATHS else "From"


def owner_of(
    forces: Sequence[ForceInfo],
    settings_of: Callable[[ForceInfo], Settings],
    number: str,
    *,
    chosen: ForceInfo,
) -> ForceInfo | None:
    """The force whose number `number` is; `chosen` (the force the request's URL named) when
    several share it, as forces sending on the platform's numbers do; None when no force has it
    or several do and `chosen` is not one of them."""
    number = number.strip()
    if not number:
        return None
    owners = [f for f in forces if number in _numbers(settings_of(f))]
    if chosen in owners:
        return chosen
    return owners[0] if len(owners) == 1 else None


def _numbers(settings: Settings) -> set[str]:
    return {n.strip() for n in (settings.sms_from, settings.voice_from) if n}

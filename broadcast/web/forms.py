"""Reading the sign-up and manage forms into a validated draft, with one error per field."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from broadcast.forces.coverage import Elsewhere, outside
from broadcast.registrants.validation import InvalidRegistrant, RegistrantDraft, parse_registrant
from broadcast.settings import Settings
from broadcast.vocabulary import CHANNELS as CHANNELS  # re-exported: forms.CHANNELS
from broadcast.vocabulary import ChannelName

TEXT_FIELDS = ("name", "postcode", "email", "mobile", "landline", "areas")
LIST_FIELDS = ("channels", "topics", "named_areas")
MAX_LENGTH = 400  # longer than any real value; refuses junk before it reaches the validators
# Which field a validation message is about, when it does not quote the value typed.
_KEYWORDS = (
    ("postcode", "postcode"),
    ("topic", "topics"),
    ("area", "areas"),
    ("email", "email"),
    ("landline", "landline"),
    ("voice", "landline"),
    ("sms", "mobile"),
    ("mobile", "mobile"),
    ("channel", "channels"),
    ("name", "name"),
)


@dataclass
class FormResult:
    """`values` to show again in the form, `errors` per field (in page order), the `draft`."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    draft: RegistrantDraft | None = None


def read(form: Mapping[str, Any], getlist: Any) -> dict[str, Any]:
    """Only strings, trimmed and capped; lists for the checkbox groups."""
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        raw = form.get(name)
        values[name] = raw.strip()[:MAX_LENGTH] if isinstance(raw, str) else ""
    for name in LIST_FIELDS:
        values[name] = [v for v in getlist(name) if isinstance(v, str)][:50]
    values["consent"] = form.get("consent") == "yes"
    return values


# A hyphen after these stays a hyphen in a label ("anti-social", "e-crime"); others are spaces.
HYPHENATED_PREFIXES = frozenset({"anti", "co", "counter", "cross", "cyber", "non", "self"})


def label(slug: str) -> str:
    """Words for a slug, keeping hyphens that are spelling: "e-crime" -> "E-crime"."""
    parts = slug.split("-")
    text = parts[0]
    for before, part in zip(parts, parts[1:], strict=False):
        keep = len(before) == 1 or before.lower() in HYPHENATED_PREFIXES
        text += ("-" if keep else " ") + part
    return text[:1].upper() + text[1:]


def options(names: frozenset[str]) -> list[tuple[str, str]]:
    """Checkbox (value, label) pairs: "missing-person" -> "Missing person"."""
    return [(n, label(n)) for n in sorted(names)]


# Who covers a postcode this force does not: the other forces on the platform that do.
Finder = Callable[[str], list[Elsewhere]]


def nowhere(_postcode: str) -> list[Elsewhere]:
    return []


def outside_message(postcode: str, settings: Settings, elsewhere: list[Elsewhere]) -> str:
    """Sends the person to the force on this platform that covers `postcode` (its sign-up
    page), else to the national force finder."""
    start = f"{postcode} is outside the area {settings.force_name} covers."
    if elsewhere:
        offers = " or ".join(f"{e.name} at {e.signup_url}" for e in elsewhere)
        return f"{start} Sign up with {offers} instead"
    return (
        f"{start} Sign up with the police force for that address instead: find it at "
        f"{settings.other_forces_url}"
    )


def _field_for(problem: str, values: Mapping[str, Any]) -> str:
    for name in ("email", "mobile", "landline", "postcode", "name"):
        if values.get(name) and f"'{values[name]}'" in problem:
            return name
    lowered = problem.lower()
    return next((f for word, f in _KEYWORDS if word in lowered), "name")


def parse(
    values: dict[str, Any],
    settings: Settings,
    *,
    require_consent: bool = True,
    elsewhere: Finder = nowhere,
) -> FormResult:
    """Validate a sign-up or amend form; the area check names the force when it fails, and
    offers the forces `elsewhere` finds for the postcode."""
    result = FormResult(values)
    errors: dict[str, str] = {}
    channels = [c for c in values["channels"] if c in CHANNELS]
    named = [a for a in values["named_areas"] if a.lower() in settings.named_area_set]
    fields = {
        "name": values["name"],
        "postcode": values["postcode"],
        "email": values["email"] if ChannelName.EMAIL in channels else "",
        "mobile": values["mobile"] if ChannelName.SMS in channels or values["mobile"] else "",
        "landline": values["landline"] if ChannelName.VOICE in channels else "",
        "channels": ",".join(channels),
        "areas": ",".join([values["areas"], *named]),
        "topics": ",".join(values["topics"]),
    }
    if not values["postcode"]:
        errors["postcode"] = "Enter your postcode"
    if not channels:
        errors["channels"] = "Choose at least one way to get alerts: text, email or phone call"
    if require_consent and not values["consent"]:
        errors["consent"] = "Tick the box to say you agree to get alerts"
    try:
        draft = parse_registrant(
            fields,
            topics=settings.topic_set,
            named_areas=settings.named_area_set,
            region=settings.default_region,
            require_channels=False,
        )
    except InvalidRegistrant as exc:
        for problem in exc.problems:
            errors.setdefault(_field_for(problem, fields), problem[0].upper() + problem[1:])
        draft = None
    if draft is not None:
        if draft.postcode and outside(settings, draft.postcode):
            message = outside_message(draft.postcode, settings, elsewhere(draft.postcode))
            errors.setdefault("postcode", message)
        away = [a for a in draft.areas if outside(settings, a)]
        if away:
            errors.setdefault("areas", outside_message(away[0], settings, elsewhere(away[0])))
    if draft is not None and not draft.areas and draft.postcode:
        # Follow the home district unless the person chose areas of their own.
        draft = RegistrantDraft(**{**draft.__dict__, "areas": (draft.postcode.split()[0],)})
    order = ["name", "postcode", "areas", "topics", "channels", "email", "mobile", "landline"]
    result.errors = {k: errors[k] for k in [*order, "consent"] if k in errors}
    result.draft = None if result.errors else draft
    return result

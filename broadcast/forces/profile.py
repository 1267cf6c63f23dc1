"""What a force sets for itself: the settings its profile may override, and its settings.

A force's `profile` (store.tables.Force) holds values for the settings named here; every other
setting, and every one the profile leaves out, is the platform's (the environment's). So the
default force of a single-force install, with an empty profile, is described by the environment
exactly as before forces existed.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from broadcast.capacity.rate import parse_rate
from broadcast.errors import ConfigurationError
from broadcast.settings import Settings, settings_error

# Setting name -> what `forces show` calls it. Brand, senders, reach, templates, capacity, policy.
PROFILE_FIELDS: dict[str, str] = {
    "public_url": "public address of its pages",
    "force_logo_url": "logo",
    "brand_colour": "colour",
    "help_text": "HELP reply",
    "sms_from": "SMS sender (number or alphanumeric ID)",
    "voice_from": "voice caller number",
    "email_from": "email sender",
    "area_postcodes": "postcode areas covered",
    "named_areas": "named areas",
    "topics": "topics",
    "languages": "languages offered",
    "templates_dir": "template folder (overrides the national templates by name)",
    "sms_rate": "its own SMS rate",
    "email_rate": "its own email rate",
    "voice_rate": "its own voice rate",
    "voice_concurrency": "its own voice lines",
    "quiet_hours": "quiet hours default",
    "require_approval": "two-person approval",
    "retention_days": "retention period (days)",
    "timezone": "time zone",
}
# The force's own capacity: taken beside the platform's (broadcast.delivery.lanes).
CAPACITY_FIELDS = ("sms_rate", "email_rate", "voice_rate", "voice_concurrency")


def parse(profile: str) -> dict[str, Any]:
    values = json.loads(profile or "{}")
    return values if isinstance(values, dict) else {}


def validated(base: Settings, changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` checked as settings values (the same validators as the environment's), as they
    would be stored; ConfigurationError in one line naming the bad one."""
    unknown = sorted(set(changes) - set(PROFILE_FIELDS))
    if unknown:
        raise ConfigurationError(
            f"a force cannot set {', '.join(unknown)}; it can set {', '.join(PROFILE_FIELDS)}"
        )
    try:
        checked = Settings.model_validate({**base.model_dump(), **changes})
    except ValidationError as exc:
        raise ConfigurationError(settings_error(exc)) from None
    for name in ("sms_rate", "email_rate", "voice_rate"):
        if name in changes:
            parse_rate(getattr(checked, name), setting=f"BROADCAST_{name.upper()}")
    out: dict[str, Any] = {}
    for name in changes:
        value = getattr(checked, name)
        out[name] = str(value) if name == "templates_dir" and value is not None else value
    return out


def settings_for(
    base: Settings,
    name: str | None,
    profile: dict[str, Any],
    hosts: tuple[str, ...] = (),
    *,
    prefix: str | None = None,
) -> Settings:
    """The settings a force works with: the platform's, its name and its profile over them.

    A force with host names and no `public_url` of its own is at https://<its first host>: its
    pages answer there, so its messages' links and its provider callbacks point there too. One
    with neither is on the platform's host under `prefix` (/f/<code>), unless it is the
    platform's own force (prefix None).
    """
    update = {k: v for k, v in profile.items() if k in PROFILE_FIELDS}
    if hosts and "public_url" not in update:
        update["public_url"] = f"https://{hosts[0]}"
    elif prefix and "public_url" not in update:
        update["public_url"] = base.public_url.rstrip("/") + prefix
    if name:
        update["force_name"] = name
    if not update:
        return base
    merged = Settings.model_validate({**base.model_dump(), **update})
    # Private state (the suppression keying read from the database, the link key) carries over.
    return base.model_copy(update={k: getattr(merged, k) for k in update})

"""Which postcodes a force covers, and which other force on the platform covers one it does not.

A force's areas are the postcode areas of its `area_postcodes` setting (the leading letters of
the outward code: "SW" of "SW1A 1AA"). A force that names none covers every postcode (it checks
nothing), but is never offered as the force for a postcode: only areas a force names are its.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from broadcast.forces.registry import ForceInfo
from broadcast.settings import Settings

_AREA_LETTERS = re.compile(r"^([A-Z]{1,2})[0-9]")


def postcode_area(postcode: str) -> str | None:
    """ "SW" for "SW1A 1AA" or "SW1A": the leading letters of the outward code."""
    match = _AREA_LETTERS.match(postcode.upper())
    return match[1] if match else None


def outside(settings: Settings, postcode: str) -> bool:
    """The postcode (or district, sector) is in an area the force with `settings` does not cover.
    Something that is not a postcode (a named area) is outside nothing."""
    covered = settings.area_postcode_set
    area = postcode_area(postcode)
    return bool(covered) and area is not None and area not in covered


@dataclass(frozen=True)
class Elsewhere:
    """Another force that covers a postcode, and the address of its sign-up page."""

    name: str
    signup_url: str


def covering(
    forces: Iterable[ForceInfo], platform: Settings, postcode: str, *, besides: int
) -> list[Elsewhere]:
    """The forces other than force `besides` whose named areas include `postcode`'s, in code
    order, each with its sign-up page (at its public_url: its host, or the one it sets)."""
    area = postcode_area(postcode)
    if area is None:
        return []
    found = []
    for force in forces:
        if force.id == besides:
            continue
        settings = force.settings(platform)
        if area in settings.area_postcode_set:
            url = settings.public_url.rstrip("/") + "/subscribe"
            found.append(Elsewhere(settings.force_name, url))
    return found

"""Turning what a person typed (CLI, CSV row, web form) into a normalised registrant draft."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from broadcast.errors import InvalidInput
from broadcast.registrants import contacts
from broadcast.text_rules import control_character_problem
from broadcast.vocabulary import CHANNELS, ChannelName, address_for

T = TypeVar("T")

# A language tag as registrants give it: en, cy, cy-GB (a template's files use the same codes).
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})?")


class InvalidRegistrant(InvalidInput):
    """Every problem found in one registrant's fields, not just the first; `unknown_topics`:
    the topic names among them that are not the force's (an import sums them up)."""

    def __init__(self, problems: list[str], unknown_topics: tuple[str, ...] = ()) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.unknown_topics = unknown_topics


@dataclass(frozen=True)
class RegistrantDraft:
    name: str | None
    postcode: str | None
    email: str | None
    mobile: str | None
    landline: str | None
    channels: frozenset[str]
    areas: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    language: str = "en"
    # Unknown topics left out (an import with --unknown-topics drop).
    dropped_topics: tuple[str, ...] = ()

    def address_for(self, channel: str) -> str | None:
        """The address a channel uses (`vocabulary.address_for`)."""
        return address_for(channel, self)

    def addresses(self) -> dict[str, str]:
        return {c: a for c in self.channels if (a := self.address_for(c)) is not None}


CHANNEL_NAMES = frozenset(CHANNELS)


def parse_channels(raw: str | None) -> frozenset[str]:
    names = frozenset(part.lower() for part in contacts.split_list(raw))
    unknown = names - CHANNEL_NAMES
    if unknown:
        raise InvalidInput(
            f"unknown channel(s) {', '.join(sorted(unknown))} (use sms, email, voice)",
            field="channels",
        )
    return names


def parse_registrant(
    fields: Mapping[str, str | None],
    *,
    topics: frozenset[str],
    named_areas: frozenset[str] = frozenset(),
    region: str = "GB",
    require_channels: bool = True,
    topic_map: Mapping[str, str] | None = None,
    drop_unknown_topics: bool = False,
) -> RegistrantDraft:
    """Validate and normalise every field; raise InvalidRegistrant listing all problems.

    `topic_map` renames topics first (another organisation's names for the force's topics);
    with `drop_unknown_topics`, a topic still unknown is left out instead of being a problem.
    """
    # Control characters first, and alone: the other checks would only echo the same junk.
    problems = [
        f"{key} {problem}"
        for key, value in fields.items()
        if isinstance(value, str) and (problem := control_character_problem(value))
    ]
    if problems:
        raise InvalidRegistrant(problems)

    def attempt(function: Callable[..., T], *args: Any) -> T | None:
        try:
            return function(*args)
        except InvalidInput as exc:
            problems.append(str(exc))
            return None

    def text(key: str) -> str | None:
        value = fields.get(key)
        return (value.strip() or None) if value else None

    name, raw_email, raw_mobile, raw_landline, raw_postcode, raw_channels = (
        text("name"),
        text("email"),
        text("mobile"),
        text("landline"),
        text("postcode"),
        text("channels"),
    )
    if name and len(name) > 200:
        problems.append("name is longer than 200 characters")
    email = attempt(contacts.normalise_email, raw_email) if raw_email else None
    mobile = attempt(contacts.normalise_mobile, raw_mobile, region) if raw_mobile else None
    landline = (
        attempt(contacts.normalise_voice_number, raw_landline, region) if raw_landline else None
    )
    postcode = attempt(contacts.normalise_postcode, raw_postcode) if raw_postcode else None
    channels = attempt(parse_channels, raw_channels) or frozenset()
    areas = [
        attempt(contacts.normalise_area, a, named_areas)
        for a in contacts.split_list(fields.get("areas"))
    ]
    topic_list: list[str] = []
    unknown_topics: list[str] = []
    for raw_topic in contacts.split_list(fields.get("topics")):
        if topic_map:
            raw_topic = topic_map.get(contacts.topic_slug(raw_topic), raw_topic)
        try:
            topic_list.append(contacts.normalise_topic(raw_topic, topics))
        except InvalidInput as exc:
            unknown_topics.append(contacts.topic_slug(raw_topic))
            if not drop_unknown_topics:
                problems.append(str(exc))
    language = (text("language") or "en").lower()
    if not _LANGUAGE.fullmatch(language):
        problems.append("language must be a language code like en, cy or cy-GB")

    if require_channels and not channels and raw_channels is None:
        problems.append("no channels given (use sms, email and/or voice)")
    if ChannelName.SMS in channels and not raw_mobile:
        problems.append("landline given for SMS" if raw_landline else "SMS needs a mobile number")
    if ChannelName.EMAIL in channels and not raw_email:
        problems.append("email channel needs an email address")
    if ChannelName.VOICE in channels and not (raw_landline or raw_mobile):
        problems.append("voice channel needs a landline or mobile number")
    if mobile and landline and mobile == landline:
        # The person wants calls on their mobile: voice uses the mobile when there is no
        # landline, so the duplicate is simply not kept as one.
        landline = None
    if problems:
        raise InvalidRegistrant(problems, tuple(dict.fromkeys(unknown_topics)))
    return RegistrantDraft(
        name=name,
        postcode=postcode,
        email=email,
        mobile=mobile,
        landline=landline,
        channels=channels,
        areas=tuple(dict.fromkeys(a for a in areas if a)),
        topics=tuple(dict.fromkeys(t for t in topic_list if t)),
        language=language,
        dropped_topics=tuple(dict.fromkeys(unknown_topics)) if unknown_topics else (),
    )

"""Builders for registrant drafts used across the store tests."""

from __future__ import annotations

from broadcast.registrants.validation import RegistrantDraft, parse_registrant

TOPICS = frozenset({"burglary", "fraud", "missing-person"})


def draft(**overrides: str) -> RegistrantDraft:
    fields = {
        "name": "Jo Bloggs",
        "email": "jo@example.com",
        "mobile": "07911 123456",
        "landline": "",
        "postcode": "SW1A 1AA",
        "channels": "sms;email",
        "areas": "SW1A",
        "topics": "burglary",
    }
    fields.update(overrides)
    return parse_registrant(fields, topics=TOPICS)

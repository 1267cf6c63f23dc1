"""One error tree: everything the library raises on purpose derives from BroadcastError."""

from __future__ import annotations


class BroadcastError(Exception):
    """Base of every error the library raises on purpose; its message is fit to show a user."""


class ConfigurationError(BroadcastError):
    """A setting is missing, malformed or unsafe for the current mode."""


class InvalidInput(BroadcastError):
    """A value given by a person (phone number, email, postcode, CSV row...) is not acceptable."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(BroadcastError):
    """The thing asked for does not exist."""


class Conflict(BroadcastError):
    """The change would break a uniqueness or state rule (e.g. a number owned by someone else)."""


class Suppressed(BroadcastError):
    """The address is on the suppression list and must not be messaged or re-added."""

"""Signed, expiring, non-guessable links for registrants (manage, unsubscribe, confirm).

A token carries the registrant's random public id (never the database id), the purpose and, for
channel-specific links, the channel; it is signed with BROADCAST_SECRET_KEY and time-stamped, so
a forged, altered or expired token is refused.

Tokens are kept short because every SMS carries one: the 16-byte public id in base64url, one
letter each for purpose and channel, then itsdangerous' timestamp and signature. About 60
characters, where a signed JSON payload took 110 and pushed alerts into another SMS segment.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from itsdangerous.encoding import base64_decode, base64_encode

from broadcast.errors import BroadcastError

if TYPE_CHECKING:
    from broadcast.settings import Settings

PURPOSES = {"manage": "m", "unsubscribe": "u", "confirm": "c"}
CHANNELS = {None: "-", "sms": "s", "email": "e", "voice": "v"}
_PURPOSE_OF = {code: name for name, code in PURPOSES.items()}
_CHANNEL_OF = {code: name for name, code in CHANNELS.items()}
# How long each kind of link stays valid, in seconds.
DEFAULT_MAX_AGE = {
    "manage": 90 * 24 * 3600,
    "unsubscribe": 365 * 24 * 3600,
    "confirm": 7 * 24 * 3600,
}


class InvalidLink(BroadcastError):
    """The link was altered, forged, meant for something else, or has expired."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class LinkClaims:
    public_id: str
    purpose: str
    channel: str | None


class LinkSigner:
    def __init__(self, secret_key: str, public_url: str) -> None:
        self._signer = TimestampSigner(secret_key, salt="broadcast-links")
        self._public_url = public_url.rstrip("/")

    def token(self, public_id: str, purpose: str, channel: str | None = None) -> str:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown link purpose {purpose!r}")
        packed = base64.urlsafe_b64encode(bytes.fromhex(public_id)).rstrip(b"=").decode()
        return self._signer.sign(f"{PURPOSES[purpose]}{CHANNELS[channel]}{packed}").decode()

    def url(self, public_id: str, purpose: str, channel: str | None = None) -> str:
        """The full link, e.g. https://alerts.example.police.uk/manage/<token>."""
        return f"{self._public_url}/{purpose}/{self.token(public_id, purpose, channel)}"

    def verify(self, token: str, purpose: str, max_age: int | None = None) -> LinkClaims:
        age = max_age if max_age is not None else DEFAULT_MAX_AGE[purpose]
        try:
            value = self._signer.unsign(token, max_age=age).decode()
            token_purpose, channel = _PURPOSE_OF[value[0]], _CHANNEL_OF[value[1]]
            public_id = base64.urlsafe_b64decode(value[2:] + "==").hex()
            canonical = token == self._spelled(public_id, value[:2], token)
        except SignatureExpired:
            raise InvalidLink("this link has expired", expired=True) from None
        except (BadSignature, KeyError, IndexError, ValueError, binascii.Error, UnicodeError):
            raise InvalidLink("this link is not valid") from None
        if not canonical:
            raise InvalidLink("this link is not valid")
        if token_purpose != purpose or len(public_id) != 32:
            raise InvalidLink("this link is not valid here")
        return LinkClaims(public_id=public_id, purpose=purpose, channel=channel)

    @staticmethod
    def _spelled(public_id: str, prefix: str, token: str) -> str:
        # Base64's last character carries a few unused bits, so several spellings decode alike;
        # only the one this signer writes is accepted, so each link has exactly one form.
        packed = base64.urlsafe_b64encode(bytes.fromhex(public_id)).rstrip(b"=").decode()
        _, stamp, signature = token.rsplit(".", 2)
        stamp, signature = (
            base64_encode(base64_decode(part)).decode() for part in (stamp, signature)
        )
        return f"{prefix}{packed}.{stamp}.{signature}"


def signer_from_settings(settings: Settings) -> LinkSigner:
    return LinkSigner(settings.link_key(), settings.public_url)

from __future__ import annotations

import time

import pytest

from broadcast.registrants.links import InvalidLink, LinkSigner
from broadcast.store.tables import new_public_id

signer = LinkSigner("a-secret-key-for-tests", "https://alerts.example.police.uk/")


def test_round_trip_and_length() -> None:
    public_id = new_public_id()
    for purpose, channel in (("manage", None), ("unsubscribe", "email"), ("confirm", "sms")):
        claims = signer.verify(signer.token(public_id, purpose, channel), purpose)
        assert (claims.public_id, claims.purpose, claims.channel) == (public_id, purpose, channel)
    url = signer.url(public_id, "manage")
    assert url.startswith("https://alerts.example.police.uk/manage/")
    assert len(signer.token(public_id, "manage")) <= 64  # short enough for one SMS line


def test_forged_altered_misused_and_expired_tokens_are_refused() -> None:
    token = signer.token(new_public_id(), "unsubscribe", "sms")
    other = LinkSigner("another-key", "https://x")
    with pytest.raises(InvalidLink):
        other.verify(token, "unsubscribe")
    # The last character of each base64 part has unused low bits: a spelling that differs only
    # there decodes to the same bytes and is refused as well.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(token[-1]) ^ 1]  # same 20 signature bytes, another spelling
    middle = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    for altered in (token[:-1] + last, middle, "x" + token[1:], "", "a.b.c"):
        with pytest.raises(InvalidLink):
            signer.verify(altered, "unsubscribe")
    with pytest.raises(InvalidLink, match="not valid here"):
        signer.verify(token, "manage")
    time.sleep(1.1)
    with pytest.raises(InvalidLink, match="expired") as caught:
        signer.verify(token, "unsubscribe", max_age=0)
    assert caught.value.expired

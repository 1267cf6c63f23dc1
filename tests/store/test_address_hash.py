"""The suppression list's keyed hash must be exactly HMAC-SHA256: stored hashes outlive code."""

from __future__ import annotations

import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from broadcast.registrants.suppression import address_hash


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=1, max_size=200), address=st.text(max_size=80))
def test_address_hash_is_hmac_sha256_of_the_utf8_address(key: bytes, address: str) -> None:
    expected = hmac.digest(key, address.encode(), "sha256").hex()
    assert address_hash(address, key) == expected


def test_different_keys_give_different_hashes() -> None:
    assert address_hash("+447700900123", b"one") != address_hash("+447700900123", b"two")

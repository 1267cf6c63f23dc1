"""A sign-up challenge once sign-ups come faster than `web_challenge_after` (all clients
together): a hashcash-style proof of work solved by a small first-party script
(/challenge.js, no third party), or, for a browser without JavaScript, simply a form that was
loaded `web_challenge_wait` seconds before it was sent (a person typing their details takes
longer than that; a script has to hold every form that long).

The challenge is `ISSUED.NONCE.BITS.MAC`, MACed with the secret key, so the server keeps no
state until it is used; each one is good for one sign-up (claimed like a webhook replay) and
for `LIFETIME` seconds. The proof is a number N such that SHA-256("CHALLENGE:N") starts with
BITS zero bits. Neither step is a wall: the confirmation SMS caps (sms_caps.py) are the hard
limit on what pumping can cost; the challenge makes each automated sign-up cost a fresh form
and either CPU time or waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from broadcast.capacity import CapacityLimiter
from broadcast.settings import Settings
from broadcast.web.limits import ReplayGuard, limiter

LIFETIME = 1800.0


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def solve(challenge: str, bits: int) -> int:
    """What the browser's script does, for tests and tools: the first N that works."""
    n = 0
    while leading_zero_bits(hashlib.sha256(f"{challenge}:{n}".encode()).digest()) < bits:
        n += 1
    return n


@dataclass(frozen=True)
class Verdict:
    """`ok`, or why not: `wait` seconds still to go (no proof, sent too soon) or `invalid`."""

    ok: bool
    wait: float = 0.0


class ChallengeGate:
    def __init__(self, settings: Settings, secret: bytes) -> None:
        self.bits = settings.web_challenge_bits
        self.wait = settings.web_challenge_wait
        self._secret = secret
        self._rate: CapacityLimiter = limiter(
            settings, settings.web_challenge_after, "challenge-after"
        )
        self._used = ReplayGuard.from_settings(settings, prefix="challenge:")

    def _mac(self, body: str) -> str:
        return hmac.new(self._secret, f"challenge:{body}".encode(), "sha256").hexdigest()[:32]

    def issue(self) -> str:
        body = f"{int(time.time())}.{secrets.token_hex(8)}.{self.bits}"
        return f"{body}.{self._mac(body)}"

    def reuse_or_issue(self, challenge: str) -> str:
        """The challenge a re-shown form carries: the same one while it is valid (so the wait
        counts from the first load), else a new one."""
        return challenge if self._parse(challenge) is not None else self.issue()

    def _parse(self, challenge: str) -> tuple[float, int] | None:
        """(age in seconds, bits) of a genuine, live challenge, else None."""
        parts = challenge.split(".")
        if len(parts) != 4 or not parts[0].isdigit() or not parts[2].isdigit():
            return None
        body = ".".join(parts[:3])
        if not hmac.compare_digest(self._mac(body), parts[3]):
            return None
        age = time.time() - int(parts[0])
        return (age, int(parts[2])) if -60 < age < LIFETIME else None

    def required(self) -> bool:
        """Charge one sign-up to the shared count; True once it is over the threshold."""
        return self._rate.try_acquire("all") > 0

    def check(self, challenge: str, proof: str) -> Verdict:
        parsed = self._parse(challenge)
        if parsed is None:
            return Verdict(False)
        age, bits = parsed
        solved = proof.isdigit() and len(proof) < 20
        if solved:
            digest = hashlib.sha256(f"{challenge}:{proof}".encode()).digest()
            solved = leading_zero_bits(digest) >= max(bits, self.bits)
        if not solved and age < self.wait:
            return Verdict(False, wait=self.wait - age)
        # One sign-up per challenge, atomically, across processes with Redis.
        return Verdict(self._used.claim(challenge, ttl=LIFETIME))

"""What the routes share: the platform's (database, key, limits, the forces on it), built once
per app, and each force's own view of it (its settings, scope, link signer, branding)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from broadcast.forces.choose import platform_base
from broadcast.forces.coverage import Elsewhere, covering
from broadcast.forces.registry import ForceInfo, all_forces
from broadcast.registrants.confirmation import Policy
from broadcast.registrants.links import LinkSigner, signer_from_settings
from broadcast.registrants.suppression import bind_keying
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.engine import engine_for, session_scope
from broadcast.store.tenancy import scoped
from broadcast.web.challenge import ChallengeGate
from broadcast.web.limits import RateLimits, ReplayGuard
from broadcast.web.messages import Confirmations
from broadcast.web.sms_caps import SmsCaps

WEB_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "web"
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$|^#[0-9a-fA-F]{3}$")


@dataclass(frozen=True)
class Branding:
    """Per-force look, from settings; the colour is checked because it is put into CSS."""

    force_name: str
    logo_url: str | None
    colour: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Branding:
        colour = settings.brand_colour if _COLOUR.match(settings.brand_colour) else "#1d70b8"
        logo = settings.force_logo_url
        if logo and not logo.startswith(("https://", "http://", "/")):
            logo = None
        return cls(settings.force_name, logo, colour)


class WebPlatform:
    """Built once by create_app (app.state.web): what every force's pages share, and the forces.

    The force list is read at start and again when it is `FORCES_TTL` seconds old (the request
    routing refreshes it, web/routing.py), so a force added or given a host is served without a
    restart and a request does not read the force table.
    """

    FORCES_TTL = 5.0

    def __init__(self, settings: Settings) -> None:
        # The key first: without a real one the app must not start (nor touch the database).
        signer_from_settings(settings)
        self.database = engine_for(settings.database_url)
        self.key = bind_keying(settings, self.database)
        self.settings = settings
        # The force of requests for the platform itself (webhooks, /ops, /metrics, /readyz) on
        # a host no force claims: BROADCAST_FORCE, else the first force (forces.choose).
        self.home = platform_base(self.database, settings)
        self.secret = settings.link_key().encode()
        self.limits = RateLimits.from_settings(settings)
        self.replays = ReplayGuard.from_settings(settings)
        self.challenges = ChallengeGate(settings, self.secret)
        self.caps = SmsCaps(settings)
        self._forces = all_forces(self.database)
        self._read_at = time.monotonic()
        self._contexts: dict[int, WebContext] = {}
        self._lock = threading.Lock()
        self._runtime: Runtime | None = None

    def forces(self) -> list[ForceInfo]:
        """The forces as last read (no database read: `refresh` does that)."""
        return self._forces

    def stale(self) -> bool:
        return time.monotonic() - self._read_at > self.FORCES_TTL

    def refresh(self) -> None:
        """Read the force list again (blocking: the routing calls it in a worker thread)."""
        forces = all_forces(self.database)
        self._forces, self._read_at = forces, time.monotonic()

    def context(self, force: ForceInfo) -> WebContext:
        """Force `force`'s context, built on first use and again once the force has changed."""
        with self._lock:
            found = self._contexts.get(force.id)
            if found is None or found.force != force:
                found = self._contexts[force.id] = WebContext(self, force)
            return found

    def runtime(self) -> Runtime:
        """The delivery engine's runtime (channels, capacity, voice-line leases), built on first
        use: confirmations take capacity from the same limiters as the delivery workers. Each
        force's is `runtime().for_force(id)`, sharing them."""
        with self._lock:
            if self._runtime is None:
                self._runtime = Runtime(self.settings, engine=self.database, force=self.home)
            return self._runtime

    def close(self) -> None:
        with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()


class WebContext:
    """One force's view of the platform: what a request for its pages works with. Routes reach
    it as a dependency (deps.Ctx); web/routing.py chooses it for each request."""

    def __init__(self, platform: WebPlatform, force: ForceInfo) -> None:
        self.platform = platform
        self.force = force
        self.settings = settings = force.settings(platform.settings)
        self.signer: LinkSigner = signer_from_settings(settings)
        self.engine: Engine = scoped(platform.database, force.id)
        self.policy = Policy.from_settings(settings)
        self.branding = Branding.from_settings(settings)
        # The platform's: one key, one set of limits and caps across forces (a script moving
        # between forces' pages is counted once).
        self.key = platform.key
        self.secret = platform.secret
        self.limits = platform.limits
        self.replays = platform.replays
        self.challenges = platform.challenges
        self.confirmations = Confirmations(platform.caps, self.runtime)

    def runtime(self) -> Runtime:
        """This force's runtime: its scope, settings and links on the platform's channels and
        capacity (Runtime.for_force)."""
        return self.platform.runtime().for_force(self.force.id)

    def elsewhere(self, postcode: str) -> list[Elsewhere]:
        """The other forces on the platform that cover `postcode`, for the sign-up's area check."""
        return covering(
            self.platform.forces(), self.platform.settings, postcode, besides=self.force.id
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.engine) as session:
            yield session

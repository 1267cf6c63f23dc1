"""Everything the routes share, built once per app: settings, database, link signer, limits."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlmodel import Session

from broadcast.forces.choose import chosen
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

if TYPE_CHECKING:
    from broadcast.runtime import Runtime

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


class WebContext:
    """Built by create_app; routes reach it as request.app.state.ctx."""

    def __init__(self, settings: Settings) -> None:
        # The key first: without a real one the app must not start (nor touch the database).
        signer_from_settings(settings)
        database = engine_for(settings.database_url)
        self.key = bind_keying(settings, database)
        # The pages serve one force: BROADCAST_FORCE, or the only one (forces.choose).
        self.force = chosen(database, settings)
        self.platform_settings = settings
        settings = self.force.settings(settings)
        self.settings = settings
        self.signer: LinkSigner = signer_from_settings(settings)
        self.engine: Engine = scoped(database, self.force.id)
        self.secret = settings.link_key().encode()
        self.policy = Policy.from_settings(settings)
        self.branding = Branding.from_settings(settings)
        self.limits = RateLimits.from_settings(settings)
        self.replays = ReplayGuard.from_settings(settings)
        self.confirmations = Confirmations(settings, self.runtime)
        self.challenges = ChallengeGate(settings, self.secret)
        self._runtime: Runtime | None = None
        self._runtime_lock = threading.Lock()

    def runtime(self) -> Runtime:
        """The delivery engine's runtime (channels, capacity, voice-line leases), built on first
        use: confirmations take capacity from the same limiters as the delivery workers."""
        with self._runtime_lock:
            if self._runtime is None:
                self._runtime = Runtime(
                    self.platform_settings, engine=self.engine, force=self.force
                )
            return self._runtime

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.engine) as session:
            yield session

    def close(self) -> None:
        with self._runtime_lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()

"""What delivery code needs in a process: the database, channels, limiters, templates, links.

One `Runtime` per worker process, shared by its threads. Channels and limiters are built on
first use; tests pass their own channels (e.g. a recording channel) instead of patching.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping

import redis
from sqlalchemy import Engine

from broadcast.capacity import (
    CapacityLimiter,
    ConcurrencyLimiter,
    MemoryConcurrencyLimiter,
    MemoryLimiter,
    RedisConcurrencyLimiter,
    RedisLimiter,
    channel_rate,
    guarded,
)
from broadcast.capacity.rate import Rate
from broadcast.channels import Channel, build_channel
from broadcast.clock import SYSTEM, Clock
from broadcast.forces.choose import chosen
from broadcast.forces.registry import ForceInfo, all_forces, by_id
from broadcast.messages.render import AlertTemplate, library
from broadcast.registrants.links import LinkSigner, signer_from_settings
from broadcast.registrants.suppression import bind_keying
from broadcast.settings import Settings
from broadcast.store.engine import engine_for
from broadcast.store.tenancy import scoped

# What a channel signs its messages with, and where its provider callbacks come back (the
# status callback URLs are built into a Twilio channel): a force that sets any of these builds
# its own channels.
SENDER_SETTINGS = ("force_name", "sms_from", "voice_from", "email_from", "public_url")


class Runtime:
    """Per-process delivery context.

    Parameters:
        settings: The settings to build everything from.
        engine: The database (default: `engine_for(settings.database_url)`).
        channels: Ready-made channels by name; others are built with `build_channel`.
        clock: What lifecycle and delivery code asks for the time (default: the system clock);
            tests pass a `FixedClock` to set the time instead of sleeping.
        force: The force it works as, or its code (default: `forces.choose.chosen`: the
            BROADCAST_FORCE setting, the force `engine` is scoped to, or the only force).
            `engine` is scoped to it and `settings` are the force's (its profile over the
            platform's); `for_force` gives the runtime of another force, sharing this one's
            connections, limiters and channels (docs/tenancy.md).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        channels: Mapping[str, Channel] | None = None,
        clock: Clock = SYSTEM,
        force: ForceInfo | str | None = None,
    ) -> None:
        self.clock: Clock = clock
        self.base_engine = engine if engine is not None else engine_for(settings.database_url)
        self.platform_settings = settings
        self.key = bind_keying(settings, self.base_engine)
        self.force = (
            force if isinstance(force, ForceInfo) else chosen(self.base_engine, settings, force)
        )
        self.settings = self.force.settings(settings)
        self.engine = scoped(self.base_engine, self.force.id)
        self.signer: LinkSigner = signer_from_settings(self.settings)
        self._forces: dict[int, Runtime] = {self.force.id: self}
        self._channels: dict[str, Channel] = dict(channels or {})
        self._limiters: dict[str, CapacityLimiter] = {}
        # Voice line leases by force id, and the platform's under None (shared by every force's
        # runtime, like the limiters, which are by channel and by "<channel>@<force code>").
        self._leases: dict[int | None, ConcurrencyLimiter] = {}
        self._redis: redis.Redis | None = None
        self._lock = threading.Lock()
        self._warmed: set[str] = set()
        # Names this process on its claims: workers set their broker id (the heartbeat key);
        # anything else is "local:<host>:<pid>", which `alert resume` can check on this host.
        self.worker_id: str = local_worker_id()

    def for_force(self, force_id: int) -> Runtime:
        """The runtime of force `force_id` (this one if it is), built once per process: its
        engine scoped to that force, its settings, links and templates; the connections,
        limiters, channels and clock shared with this one."""
        with self._lock:
            found = self._forces.get(force_id)
        if found is not None:
            return found
        force = by_id(self.base_engine, force_id)
        if force is None:
            raise LookupError(f"no force with id {force_id}")
        other = object.__new__(Runtime)
        other.__dict__.update(self.__dict__)
        other.force = force
        other.settings = force.settings(self.platform_settings)
        other.engine = scoped(self.base_engine, force.id)
        other.signer = signer_from_settings(other.settings)
        if any(getattr(other.settings, n) != getattr(self.settings, n) for n in SENDER_SETTINGS):
            # Its own senders on every message (SMS number, caller id, email From): channels
            # of its own. Forces that send as the platform share this process's channels.
            other._channels, other._warmed = {}, set()
        with self._lock:
            return self._forces.setdefault(force_id, other)

    def each_force(self) -> list[Runtime]:
        """A runtime per force on the platform (the sweeper and scheduler pass over each)."""
        return [self.for_force(f.id) for f in all_forces(self.base_engine)]

    @property
    def redis(self) -> redis.Redis | None:
        if self.settings.redis_url and self._redis is None:
            self._redis = redis.Redis.from_url(self.settings.redis_url)
        return self._redis

    def channel(self, name: str) -> Channel:
        with self._lock:
            if name not in self._channels:
                self._channels[name] = build_channel(name, self.settings)  # type: ignore[arg-type]
            return self._channels[name]

    def warm_channel(self, name: str) -> Channel:
        """The channel, connected before its first capacity grant (once per process)."""
        channel = self.channel(name)
        if name not in self._warmed:
            channel.warm()
            self._warmed.add(name)
        return channel

    def limiter(self, name: str) -> CapacityLimiter:
        """The channel's rate limiter: in Redis when workers share one, else in this process."""
        with self._lock:
            if name not in self._limiters:
                self._limiters[name] = self._rate_limiter(
                    channel_rate(self.platform_settings, name)
                )
            return self._limiters[name]

    def concurrency(self) -> ConcurrencyLimiter:
        """The platform's voice lines in use (BROADCAST_VOICE_CONCURRENCY); unlimited when unset."""
        return self._lines(None, self.platform_settings.voice_concurrency)

    def force_limiter(self, name: str) -> CapacityLimiter | None:
        """The force's own rate on channel `name` when its profile sets one (`<name>_rate`),
        else None: then only the platform's applies. Its key is `force_key(name)`."""
        if f"{name}_rate" not in self.force.profile:
            return None
        key = self.force_key(name)
        with self._lock:
            if key not in self._limiters:
                self._limiters[key] = self._rate_limiter(channel_rate(self.settings, name))
            return self._limiters[key]

    def force_concurrency(self) -> ConcurrencyLimiter | None:
        """The force's own voice lines when its profile sets `voice_concurrency`, else None.
        Its key is `force_key("voice")`."""
        if "voice_concurrency" not in self.force.profile:
            return None
        return self._lines(self.force.id, self.settings.voice_concurrency)

    def force_key(self, channel: str) -> str:
        """The capacity key of this force's own limit on `channel` ("voice@suffolk")."""
        return f"{channel}@{self.force.code}"

    def _rate_limiter(self, rate: Rate | None) -> CapacityLimiter:
        """A limiter for `rate` with the guard: in Redis when workers share one, else here."""
        guarded_rate = guarded(rate, self.settings.capacity_guard)
        client = self.redis
        if client is not None:
            return RedisLimiter(client, guarded_rate)
        return MemoryLimiter(guarded_rate)

    def _lines(self, owner: int | None, limit: int | None) -> ConcurrencyLimiter:
        with self._lock:
            if owner not in self._leases:
                client = self.redis
                self._leases[owner] = (
                    RedisConcurrencyLimiter(client, limit)
                    if client is not None
                    else MemoryConcurrencyLimiter(limit)
                )
            return self._leases[owner]

    def template(self, name: str) -> AlertTemplate:
        """The named template: the force's own folder's, else the platform's (national)."""
        return library(self.settings.templates_dir, self.platform_settings.templates_dir).load(name)

    def close(self) -> None:
        with self._lock:
            runtimes = list(self._forces.values())
        channels: list[Channel] = []
        for rt in runtimes:
            with self._lock:
                channels += [c for c in rt._channels.values() if c not in channels]
                rt._channels.clear()
        for channel in channels:
            channel.close()


def local_worker_id() -> str:
    return f"local:{socket.gethostname()}:{os.getpid()}"

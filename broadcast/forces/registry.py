"""The forces on the platform: add, list, find, amend (the `force` table, read nationally)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert, select, update

from broadcast.errors import BroadcastError
from broadcast.forces import profile as profiles
from broadcast.settings import Settings
from broadcast.store.tables import Force, utcnow
from broadcast.store.tenancy import national

CODE = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d+)?$")


class UnknownForce(BroadcastError):
    """No force has that code (the message lists the ones there are)."""


class ForceRefused(BroadcastError):
    """A force's code, host or profile that cannot be stored."""


@dataclass(frozen=True)
class ForceInfo:
    id: int
    code: str
    name: str | None
    hosts: tuple[str, ...] = ()
    profile: dict[str, Any] = field(default_factory=dict)

    def settings(self, base: Settings) -> Settings:
        """The settings this force works with (its profile over the platform's)."""
        if self.is_home(base):
            return profiles.settings_for(base, self.name, self.profile, self.hosts)
        own = profiles.settings_for(
            base, self.name, self.profile, self.hosts, prefix=f"/f/{self.code}"
        )
        # Without providers, each force's messages land in an outbox of its own.
        return own.model_copy(update={"outbox_dir": base.outbox_dir / self.code})

    def is_home(self, base: Settings) -> bool:
        """The platform's own force, at its bare address: BROADCAST_FORCE's, else the first
        (the default force of an install that began with one)."""
        return self.code == base.force if base.force else self.id == 1


def _info(row: Any) -> ForceInfo:
    hosts = tuple(h for h in (row.hosts or "").split(",") if h)
    return ForceInfo(row.id, row.code, row.name, hosts, profiles.parse(row.profile))


def all_forces(engine: Engine) -> list[ForceInfo]:
    with national(engine).connect() as conn:
        rows = conn.execute(select(Force).order_by(Force.code)).all()
    return [_info(r) for r in rows]


def by_code(engine: Engine, code: str) -> ForceInfo:
    """The force with `code`; UnknownForce in one line listing the known codes."""
    forces = all_forces(engine)
    for force in forces:
        if force.code == code:
            return force
    known = ", ".join(f.code for f in forces) or "none"
    raise UnknownForce(f"unknown force {code!r}; known forces: {known}")


def by_id(engine: Engine, force_id: int) -> ForceInfo | None:
    with national(engine).connect() as conn:
        row = conn.execute(select(Force).where(Force.id == force_id)).first()
    return _info(row) if row is not None else None


def by_host(engine: Engine, host: str) -> ForceInfo | None:
    """The force whose pages answer on `host` (port ignored unless the force names one)."""
    return host_owner(all_forces(engine), host)


def host_owner(forces: Iterable[ForceInfo], host: str) -> ForceInfo | None:
    """Of `forces`, the one whose pages answer on `host` (a Host header: any case, any port;
    the port counts only where a force names one)."""
    host = host.strip().lower()
    bare = host.rsplit(":", 1)[0] if ":" in host else host
    for force in forces:
        if host in force.hosts or bare in force.hosts:
            return force
    return None


def normalise_hosts(hosts: list[str]) -> list[str]:
    out = []
    for raw in hosts:
        host = raw.strip().lower()
        if not host:
            continue
        if not HOST.match(host):
            raise ForceRefused(f"not a host name: {raw!r}")
        out.append(host)
    return out


def _check_hosts_free(engine: Engine, hosts: list[str], code: str) -> None:
    for force in all_forces(engine):
        if force.code == code:
            continue
        taken = set(hosts) & set(force.hosts)
        if taken:
            raise ForceRefused(f"host {sorted(taken)[0]} is already force {force.code}'s")


def add(
    engine: Engine,
    base: Settings,
    code: str,
    name: str,
    *,
    hosts: list[str] | None = None,
    profile: dict[str, Any] | None = None,
) -> ForceInfo:
    if not CODE.match(code):
        raise ForceRefused(
            f"a force code is 2-40 lower-case letters, digits and hyphens, starting with a "
            f"letter (like met or dyfed-powys): {code!r}"
        )
    if not name.strip():
        raise ForceRefused("a force needs a name")
    if any(f.code == code for f in all_forces(engine)):
        raise ForceRefused(f"force {code} already exists (amend it with `forces amend {code}`)")
    clean_hosts = normalise_hosts(hosts or [])
    _check_hosts_free(engine, clean_hosts, code)
    values = profiles.validated(base, profile or {})
    with national(engine).begin() as conn:
        conn.execute(
            insert(Force).values(
                code=code,
                name=name.strip(),
                hosts=",".join(clean_hosts),
                profile=json.dumps(values, sort_keys=True),
                created_at=utcnow(),
            )
        )
    return by_code(engine, code)


def amend(
    engine: Engine,
    base: Settings,
    code: str,
    *,
    name: str | None = None,
    new_code: str | None = None,
    hosts: list[str] | None = None,
    set_values: dict[str, Any] | None = None,
    unset: list[str] | None = None,
) -> ForceInfo:
    force = by_code(engine, code)
    changes: dict[str, Any] = {}
    if new_code is not None and new_code != code:
        if not CODE.match(new_code):
            raise ForceRefused(f"not a force code: {new_code!r}")
        if any(f.code == new_code for f in all_forces(engine)):
            raise ForceRefused(f"force {new_code} already exists")
        changes["code"] = new_code
    if name is not None:
        if not name.strip():
            raise ForceRefused("a force needs a name")
        changes["name"] = name.strip()
    if hosts is not None:
        clean = normalise_hosts(hosts)
        _check_hosts_free(engine, clean, code)
        changes["hosts"] = ",".join(clean)
    profile = dict(force.profile)
    if set_values:
        profile.update(profiles.validated(base, set_values))
    for key in unset or []:
        if key not in profiles.PROFILE_FIELDS:
            raise ForceRefused(f"a force cannot set {key}")
        profile.pop(key, None)
    if set_values or unset:
        changes["profile"] = json.dumps(profile, sort_keys=True)
    if changes:
        with national(engine).begin() as conn:
            conn.execute(update(Force).where(Force.id == force.id).values(**changes))
    return by_code(engine, changes.get("code", code))

"""Which force a command, process or request works as."""

from __future__ import annotations

from sqlalchemy import Engine

from broadcast.errors import BroadcastError
from broadcast.forces.registry import ForceInfo, all_forces, by_code, by_id
from broadcast.settings import Settings
from broadcast.store.tenancy import force_of


class ForceNotChosen(BroadcastError):
    """Several forces and none named: the message says how to name one."""


def chosen(engine: Engine, settings: Settings, code: str | None = None) -> ForceInfo:
    """`code` (from --force), else BROADCAST_FORCE, else the force `engine` is scoped to, else
    the only force there is. Several and none named: ForceNotChosen, listing them."""
    code = code or settings.force
    if code:
        return by_code(engine, code)
    scoped_to = force_of(engine)
    if scoped_to is not None:
        found = by_id(engine, scoped_to)
        if found is not None:
            return found
    forces = all_forces(engine)
    if len(forces) == 1:
        return forces[0]
    known = ", ".join(f.code for f in forces)
    raise ForceNotChosen(
        f"this platform has {len(forces)} forces ({known}): choose one with --force CODE "
        "or BROADCAST_FORCE"
    )


def platform_base(engine: Engine, settings: Settings) -> ForceInfo:
    """The force a process that works for every force starts as (workers, sweeper, scheduler:
    each job then works as its own force): BROADCAST_FORCE, else the first force."""
    if settings.force:
        return by_code(engine, settings.force)
    forces = all_forces(engine)
    if not forces:
        raise ForceNotChosen("this platform has no force: run `broadcast db upgrade`")
    return min(forces, key=lambda f: f.id)

"""Group commit: one transaction records and claims for every lane of a process waiting on one.

A lane's step (record its last success, claim its next message) used to be a transaction of its
own: five round trips (ping, BEGIN with the force's `SET LOCAL`, two UPDATEs, COMMIT) for each
delivery. The lanes of a process now hand their steps to a `GroupCommit`; the first to find no
transaction in flight runs one for every step waiting (its own included) while the others wait
for its answer, and the next waiting lane runs the next batch. Nothing waits to fill a batch: a
step alone is committed at once, and under load a batch is however many lanes arrived during the
previous transaction.

Each lane still waits until its step is committed, so the guarantees of `delivery.lanes` hold
unchanged: a success is in the database before its lane takes more, and a delivery is `sending`
only while its request is out (docs/delivery.md, "Group commit").
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from sqlalchemy import Connection

from broadcast.delivery.records import record_and_claim
from broadcast.runtime import Runtime

# (delivery id, provider id, units) of an accepted message, as `records.record_sent` takes it.
Success = tuple[int, str, int]


@dataclass(slots=True)
class _Step:
    success: Success | None
    claim_id: int | None
    done: bool = False
    owned: bool = False
    error: BaseException | None = None


class GroupCommit:
    """Batches the lanes' steps of one runtime (one force's scoped engine) into transactions."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._ready = threading.Condition()
        self._waiting: list[_Step] = []
        self._busy = False
        # The last batch's connection, kept while more steps are waiting: the next batch then
        # skips the pool's checkout and its ping (a round trip). Only the leader touches it.
        self._held: Connection | None = None
        self.transactions = 0  # read by tests and the benchmark: steps per transaction
        self.steps = 0

    def step(self, success: Success | None, claim_id: int | None) -> bool:
        """Record `success` and claim delivery `claim_id`, committed before this returns; True
        when this worker now owns `claim_id` (False: another worker had it, or none asked)."""
        if success is None and claim_id is None:
            return False
        mine = _Step(success, claim_id)
        with self._ready:
            self._waiting.append(mine)
            while not mine.done:
                if self._busy:
                    self._ready.wait()
                    continue
                self._busy, batch, self._waiting = True, self._waiting, []
                self._ready.release()
                try:
                    self._commit(batch)
                finally:
                    self._ready.acquire()
                    self._busy = False
                    if not self._waiting and self._held is not None:
                        self._held.close()  # idle now: back to the pool
                        self._held = None
                    self._ready.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.owned

    def _commit(self, batch: list[_Step]) -> None:
        successes = [s.success for s in batch if s.success is not None]
        wanted = [s.claim_id for s in batch if s.claim_id is not None]
        conn, self._held = self._held, None
        try:
            if conn is None:
                conn = self._rt.engine.connect()
            with conn.begin():
                owned = record_and_claim(conn, successes, wanted, claimed_by=self._rt.worker_id)
        except BaseException as exc:  # every lane in the batch sees the failure as its own
            if conn is not None:
                conn.close()  # (a broken one is invalidated by the pool on its way back)
            for s in batch:
                s.error, s.done = exc, True
            return
        self._held = conn
        self.transactions += 1
        self.steps += len(batch)
        # Two copies of one chunk (a message queued twice, a redelivery) can put the same
        # delivery in one batch twice: the database claims it once, so only the first step
        # asking for it owns it (the other lane must not send it too).
        unowned = set(owned)
        for s in batch:
            s.owned, s.done = s.claim_id in unowned, True
            unowned.discard(s.claim_id)


_COMMITTERS: weakref.WeakKeyDictionary[Runtime, GroupCommit] = weakref.WeakKeyDictionary()
_COMMITTERS_LOCK = threading.Lock()


def group_commit(rt: Runtime) -> GroupCommit:
    """The group commit of `rt` (one per force's runtime in a process, built on first use)."""
    with _COMMITTERS_LOCK:
        found = _COMMITTERS.get(rt)
        if found is None:
            found = _COMMITTERS[rt] = GroupCommit(rt)
        return found

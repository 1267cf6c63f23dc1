"""The feed a channel's lanes pull from: claim, capacity and record, one message at a time.

A lane asks for its next message only when it can send at once (a free connection or request
slot). The feed then claims the delivery, in the same transaction that records the lane's
previous success, and takes capacity for it last (giving the claim back when refused). So a
delivery is `sending` only while its request is out (a crash leaves at most `lanes` per process
in doubt), a success is in the database before the lane takes more, and each capacity grant
lands next to its request (docs/delivery.md).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

from broadcast.channels import ChannelError, OutboundMessage, SendResult
from broadcast.channels.base import Finished
from broadcast.delivery.group_commit import group_commit
from broadcast.delivery.levels import Capacity
from broadcast.delivery.records import release
from broadcast.runtime import Runtime


class ClaimFeed:
    """Feeds one batch of prepared messages (in delivery id order) to a channel's lanes.

    Parameters:
        granted: the first message's capacity is already taken (the caller may wait for it).
    """

    def __init__(
        self,
        rt: Runtime,
        capacity: Capacity,
        messages: Sequence[OutboundMessage],
        *,
        granted: bool,
    ) -> None:
        self.rt, self.capacity = rt, capacity
        self.size = len(messages)
        self._waiting = deque(messages)
        self._pre_granted = messages[0].delivery_id if granted and messages else None
        self._lock = threading.Lock()
        self._stopped = False
        self.sent = 0
        self.failed: list[Finished] = []  # errors, recorded in bulk by the caller
        self.unsent: list[OutboundMessage] = []  # capacity refused, or never reached
        self.in_flight: dict[int, OutboundMessage] = {}
        self._committer = group_commit(rt)

    def advance(self, finished: Finished | None) -> OutboundMessage | None:
        success = self._settle(finished)
        while True:
            message = self._next()
            if message is None:
                self._commit(success, None)
                return None
            owned = self._commit(success, message)
            success = None
            if not owned:
                # Another worker had it (a redelivered chunk); a line taken for it goes back.
                if message.delivery_id == self._pre_granted:
                    self.capacity.give_back(message)
                continue
            # Capacity last, so nothing (not even the claim's round trip) sits between the
            # grant and the request: the provider sees the limiter's exact spacing.
            if message.delivery_id != self._pre_granted:
                granted, _ = self.capacity.take(message)
                if not granted:
                    self._unclaim(message)
                    # The next round's first grant says how long to wait.
                    self._refused(message)
                    return None
            return message

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self.unsent.extend(self._waiting)
            self._waiting.clear()

    def release_in_flight(self) -> None:
        """After a lane failed: claims with no result go back to `queued`."""
        with self._lock:
            ids, self.in_flight = list(self.in_flight), {}
        if ids:
            with self.rt.engine.begin() as conn:
                release(conn, ids)

    def _unclaim(self, message: OutboundMessage) -> None:
        with self._lock:
            self.in_flight.pop(message.delivery_id, None)
        with self.rt.engine.begin() as conn:
            release(conn, [message.delivery_id])

    def _settle(self, finished: Finished | None) -> tuple[int, str, int] | None:
        if finished is None:
            return None
        message, result = finished
        with self._lock:
            self.in_flight.pop(message.delivery_id, None)
            if isinstance(result, SendResult):
                self.sent += 1
                return (message.delivery_id, result.provider_id, message.units)
            assert isinstance(result, ChannelError)
            self.failed.append(finished)
            return None

    def _next(self) -> OutboundMessage | None:
        with self._lock:
            if self._stopped or not self._waiting:
                return None
            return self._waiting.popleft()

    def _refused(self, message: OutboundMessage) -> None:
        with self._lock:
            self._stopped = True
            self.unsent.append(message)
            self.unsent.extend(self._waiting)
            self._waiting.clear()

    def _commit(
        self, success: tuple[int, str, int] | None, message: OutboundMessage | None
    ) -> bool:
        """One committed step: the lane's last success recorded, then the next message claimed
        (batched with the other lanes' steps: delivery.group_commit)."""
        owned = self._committer.step(success, message.delivery_id if message else None)
        if owned and message is not None:
            with self._lock:
                self.in_flight[message.delivery_id] = message
        return owned


def run_feed(send: Callable[[ClaimFeed], None], feed: ClaimFeed) -> None:
    """Run the channel's lanes over the feed; on a failure, claims with no result are released."""
    try:
        send(feed)
    except BaseException:
        feed.release_in_flight()
        raise

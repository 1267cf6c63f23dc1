"""What a queue message names: a range of one alert's deliveries on one channel, and its queue."""

from __future__ import annotations

from dataclasses import dataclass

from broadcast.vocabulary import CHANNELS


def queue_for(channel: str, urgent: bool) -> str:
    """Urgent alerts get their own queue per channel, served first by the same workers."""
    return f"{channel}_urgent" if urgent else channel


# Every queue the code uses; the Procfile test compares its worker lines with this.
QUEUES = tuple(queue_for(c, u) for c in CHANNELS for u in (False, True)) + ("maintenance",)


@dataclass(frozen=True)
class Chunk:
    alert_id: int
    channel: str
    after_id: int
    upto_id: int
    urgent: bool = False
    # The alert's force: the worker works as it (None in messages from before forces: the
    # worker looks the alert's force up).
    force_id: int | None = None

    @property
    def queue(self) -> str:
        return queue_for(self.channel, self.urgent)

    def as_args(self) -> tuple[int, str, int, int, bool, int | None]:
        return (
            self.alert_id,
            self.channel,
            self.after_id,
            self.upto_id,
            self.urgent,
            self.force_id,
        )

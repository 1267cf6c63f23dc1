"""The outbox: what a channel with no provider configured would have sent, written to files.

Email goes to ``<dir>/email/<delivery_id>.eml`` (open it in any mail client); SMS and calls are
appended as JSON lines to ``<dir>/sms.jsonl`` and ``<dir>/voice.jsonl`` (calls with their TwiML).
Appends take an exclusive ``flock`` so worker threads and processes never interleave lines.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from broadcast.channels.base import (
    Channel,
    OutboundMessage,
    SendResult,
    SentQuery,
)
from broadcast.channels.email.message import build_email
from broadcast.channels.twilio.voice import voice_twiml
from broadcast.settings import Settings
from broadcast.vocabulary import ChannelLiteral

DEFAULT_EMAIL_FROM = "alerts@localhost"


class OutboxChannel(Channel):
    """Writes each message to the outbox directory instead of sending it."""

    def __init__(
        self,
        name: ChannelLiteral,
        directory: Path,
        *,
        sender: str | None = None,
        public_url: str = "http://localhost:8000",
    ) -> None:
        self.name = name
        self.directory = Path(directory)
        self.sender = sender
        self.public_url = public_url.rstrip("/")

    @classmethod
    def from_settings(cls, name: ChannelLiteral, settings: Settings) -> OutboxChannel:
        sender = {"sms": settings.sms_from, "voice": settings.voice_from}.get(name)
        if name == "email":
            sender = settings.email_sender(DEFAULT_EMAIL_FROM)
        return cls(name, settings.outbox_dir, sender=sender, public_url=settings.public_url)

    @property
    def location(self) -> Path:
        """Where this channel's messages end up."""
        if self.name == "email":
            return self.directory / "email"
        return self.directory / f"{self.name}.jsonl"

    def send(self, message: OutboundMessage) -> SendResult:
        if self.name == "email":
            return self._write_email(message)
        record: dict[str, object] = {
            "delivery_id": message.delivery_id,
            "to": message.to,
            "from": self.sender,
            "written_at": time.time(),
        }
        if self.name == "sms":
            record |= {
                "body": message.body,
                "units": message.units,
                "status_callback": f"{self.public_url}/twilio/sms/status",
            }
        else:
            gather_url = f"{self.public_url}/twilio/voice/gather"
            record |= {
                "script": message.body,
                "twiml": voice_twiml(message.body, gather_url),
                "status_callback": f"{self.public_url}/twilio/voice/status",
            }
        append_json_line(self.location, record)
        return SendResult(
            provider_id=f"outbox-{self.name}-{message.delivery_id}", provider_status="outbox"
        )

    def find_sent(self, queries: Sequence[SentQuery]) -> list[str | None] | None:
        """The outbox can tell: the message's file, or its line, is there or not."""
        if self.name == "email":
            return [
                f"outbox-email-{q.message.delivery_id}"
                if (self.location / f"{q.message.delivery_id}.eml").exists()
                else None
                for q in queries
            ]
        written = {record.get("delivery_id") for record in read_json_lines(self.location)}
        return [
            f"outbox-{self.name}-{q.message.delivery_id}"
            if q.message.delivery_id in written
            else None
            for q in queries
        ]

    def _write_email(self, message: OutboundMessage) -> SendResult:
        email = build_email(message, self.sender or DEFAULT_EMAIL_FROM)
        folder = self.location
        folder.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half a message.
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(email.as_bytes())
        os.replace(temporary, folder / f"{message.delivery_id}.eml")
        return SendResult(provider_id=str(email["Message-ID"]), provider_status="outbox")


def append_json_line(path: Path, record: dict[str, object]) -> None:
    """Append one JSON object as a line, safely against other threads and processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        os.close(fd)  # closing releases the lock


def read_json_lines(path: Path) -> list[dict[str, object]]:
    """Every record in an outbox JSON-lines file (empty when nothing was written)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]

"""A real Twilio-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It speaks enough of REST API v2010 for the official client (create and list Messages and Calls,
Basic auth), checks every request against Twilio's OpenAPI contract (``.violations``), records
every request (``.requests``), and injects failures per destination or globally (``.fail``).
It is a small asyncio HTTP/1.1 server rather than a framework app, because the failure modes
need the raw connection (drop it, stop listening) and it must keep up with a throughput bench.

In process: ``with twilio_test_server() as server: ...``. As a separate process:
``python -m tests.support.twilio_server --port N --record FILE`` (see ``twilio_server_process``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.support import twilio_contract
from tests.support.twilio_http import HttpProtocol, Reply, error_reply, json_reply

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token"
PREFIX = "/2010-04-01/Accounts/"
# failure name -> (HTTP status, Twilio code, message)
ERRORS = {
    "500": (500, 20500, "Internal Server Error"),
    "503": (503, 20503, "Service Unavailable"),
    "429": (429, 20429, "Too Many Requests"),
    "21211": (400, 21211, "The 'To' number is not a valid phone number."),
    "21614": (400, 21614, "'To' number is not a valid mobile number"),
    "21610": (400, 21610, "Attempt to send to unsubscribed recipient"),
}
CONNECTION_FAILURES = {"slow", "drop", "lost-response", "refuse"}


@dataclass(frozen=True)
class RecordedRequest:
    """One request that reached a Twilio endpoint, with what the server answered."""

    method: str
    resource: str  # "Messages" or "Calls"
    params: dict[str, list[str]]
    status: int  # HTTP status sent back (0: the connection was dropped instead)
    sid: str | None  # the SID created, when one was
    monotonic: float
    time: float

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None

    @property
    def accepted(self) -> bool:
        return self.sid is not None


@dataclass
class Failure:
    kind: str
    to: str | None
    remaining: int | None
    delay: float


class TwilioTestServer:
    """The server state and request handling; the network side lives in twilio_http."""

    def __init__(
        self,
        *,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        record_file: Path | None = None,
    ) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self._auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._lock = threading.Lock()
        self._records: list[RecordedRequest] = []
        self._violations: list[str] = []
        self._failures: list[Failure] = []
        self._resources: dict[str, list[dict[str, object]]] = {"Messages": [], "Calls": []}
        self._record_file = record_file.open("a", buffering=1) if record_file else None
        self.connections_made = 0
        self.transports: set[asyncio.Transport] = set()
        self.url = ""

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    @property
    def violations(self) -> list[str]:
        with self._lock:
            return list(self._violations)

    def accepted(self, resource: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.resource == resource and r.accepted]

    def fail(
        self, failure: str, *, to: str | None = None, count: int | None = None, delay: float = 5.0
    ) -> None:
        """Inject a failure for requests to ``to`` (or all), ``count`` times (or until cleared).

        Failures: "500", "503", "429" (code 20429), "21211", "21614", "21610", "slow" (answer
        after ``delay`` seconds), "drop" (close the connection, nothing created), "lost-response"
        (create the resource, then close the connection), "refuse" (stop listening; global).
        """
        if failure not in ERRORS and failure not in CONNECTION_FAILURES:
            raise ValueError(f"unknown failure {failure!r}")
        if failure == "refuse":
            if to is not None:
                raise ValueError("'refuse' stops the whole server; it cannot target a number")
            self._set_listening(False)
            return
        with self._lock:
            self._failures.append(Failure(failure, to, count, delay))

    def clear(self) -> None:
        """Remove every injected failure and listen again after "refuse"."""
        with self._lock:
            self._failures.clear()
        self._set_listening(True)

    def _set_listening(self, listening: bool) -> None:
        """Overridden by the runner that owns the socket."""

    def _take_failure(self, to: str | None) -> Failure | None:
        with self._lock:
            for failure in sorted(self._failures, key=lambda f: f.to is None):
                if failure.to in (None, to):
                    if failure.remaining is not None:
                        failure.remaining -= 1
                        if failure.remaining <= 0:
                            self._failures.remove(failure)
                    return failure
        return None

    def _record(self, record: RecordedRequest, violations: list[str]) -> None:
        with self._lock:
            self._records.append(record)
            self._violations += violations
            if self._record_file:
                self._record_file.write(json.dumps(asdict(record)) + "\n")

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one HTTP request (called on the server's event loop)."""
        split = urlsplit(target)
        if split.path.startswith("/_test/"):
            return self._control(method, split.path, parse_qs(body.decode()))
        account, _, rest = split.path.removeprefix(PREFIX).partition("/")
        resource = rest.removesuffix(".json")
        if not split.path.startswith(PREFIX) or resource not in self._resources:
            return error_reply(404, 20404, "The requested resource was not found")
        if headers.get("authorization") != self._auth or account != self.account_sid:
            return error_reply(401, 20003, "Authenticate")
        if method == "GET":
            return self._list(resource, split.path, parse_qs(split.query, keep_blank_values=True))
        if method != "POST":
            return error_reply(405, 20004, "Method not allowed")
        params = parse_qs(body.decode(), keep_blank_values=True)
        problems = twilio_contract.check("POST", resource, params)
        now = (time.monotonic(), time.time())
        if problems:
            self._record(RecordedRequest(method, resource, params, 400, None, *now), problems)
            return error_reply(400, 21604 if "'To'" in problems[0] else 20001, "; ".join(problems))
        to = params["To"][0]
        failure = self._take_failure(to)
        if failure and failure.kind in ERRORS:
            status, code, message = ERRORS[failure.kind]
            self._record(RecordedRequest(method, resource, params, status, None, *now), [])
            return error_reply(status, code, message)
        if failure and failure.kind == "drop":
            self._record(RecordedRequest(method, resource, params, 0, None, *now), [])
            return Reply(drop=True)
        created = self._create(resource, params)
        status = 0 if failure and failure.kind == "lost-response" else 201
        self._record(
            RecordedRequest(method, resource, params, status, str(created["sid"]), *now), []
        )
        reply = json_reply(201, created)
        reply.drop = status == 0
        reply.delay = failure.delay if failure and failure.kind == "slow" else 0.0
        return reply

    def _create(self, resource: str, params: dict[str, list[str]]) -> dict[str, object]:
        first = {name: values[0] for name, values in params.items()}
        prefix = "SM" if resource == "Messages" else "CA"
        sid = prefix + secrets.token_hex(16)
        now = time.time()
        stamp = format_datetime(_utc(now))
        common = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": first["To"],
            "from": first.get("From"),
            "status": "queued",
            "date_created": stamp,
            "date_updated": stamp,
            "api_version": "2010-04-01",
            "price": None,
            "price_unit": "USD",
            "uri": f"{PREFIX}{self.account_sid}/{resource}/{sid}.json",
            "subresource_uris": {},
        }
        if resource == "Messages":
            body = first.get("Body", "")
            resource_json = common | {
                "body": body,
                "num_segments": str(max(1, -(-len(body) // 153))),
                "num_media": "0",
                "direction": "outbound-api",
                "messaging_service_sid": first.get("MessagingServiceSid"),
                "date_sent": None,
                "error_code": None,
                "error_message": None,
            }
        else:
            resource_json = common | {
                "direction": "outbound-api",
                "parent_call_sid": None,
                "to_formatted": first["To"],
                "from_formatted": first.get("From"),
                "phone_number_sid": None,
                "start_time": None,
                "end_time": None,
                "duration": None,
                "answered_by": None,
                "forwarded_from": None,
                "group_sid": None,
                "caller_name": None,
                "queue_time": "0",
                "trunk_sid": None,
            }
        # What a later list shows: the message has gone out by then (sent, date_sent set).
        stored = resource_json | {
            "status": "sent" if prefix == "SM" else "completed",
            "date_sent" if prefix == "SM" else "start_time": stamp,
            "_at": now,
        }
        with self._lock:
            self._resources[resource].append(stored)
        return resource_json

    def _list(self, resource: str, path: str, query: dict[str, list[str]]) -> Reply:
        problems = twilio_contract.check("GET", resource, query)
        if problems:
            with self._lock:
                self._violations += problems
            return error_reply(400, 20001, "; ".join(problems))
        first = {name: values[0] for name, values in query.items()}
        after_key = "DateSent>" if resource == "Messages" else "StartTime>"
        after = _parse_time(first[after_key]) if after_key in first else None
        with self._lock:
            rows = [
                r
                for r in self._resources[resource]
                if ("To" not in first or r["to"] == first["To"])
                and (after is None or float(r["_at"]) >= after)
            ]  # type: ignore[arg-type]
        size, page = int(first.get("PageSize", 50)), int(first.get("Page", 0))
        chunk = [
            {k: v for k, v in r.items() if k != "_at"}
            for r in rows[page * size : (page + 1) * size]
        ]
        more = (page + 1) * size < len(rows)
        next_query = urlencode({**first, "Page": page + 1, "PageSize": size}) if more else None
        return json_reply(
            200,
            {
                resource.lower(): chunk,
                "page": page,
                "page_size": size,
                "start": page * size,
                "end": page * size + len(chunk),
                "uri": path,
                "first_page_uri": path,
                "previous_page_uri": None,
                "next_page_uri": f"{path}?{next_query}" if more else None,
            },
        )

    def _control(self, method: str, path: str, form: dict[str, list[str]]) -> Reply:
        if path == "/_test/fail" and method == "POST":
            one = {k: v[0] for k, v in form.items()}
            self.fail(
                one["failure"],
                to=one.get("to"),
                count=int(one["count"]) if "count" in one else None,
                delay=float(one.get("delay", 5.0)),
            )
        elif path == "/_test/clear" and method == "POST":
            self.clear()
        elif path == "/_test/violations":
            return json_reply(200, {"violations": self.violations})
        else:
            return error_reply(404, 20404, "unknown control endpoint")
        return json_reply(200, {"ok": True})


def _utc(timestamp: float):  # noqa: ANN202 - a datetime
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC)


def _parse_time(value: str) -> float:
    from datetime import UTC, datetime

    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


class _ThreadedServer(TwilioTestServer):
    """Runs the server on its own event loop in a daemon thread."""

    def start(self, port: int = 0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="twilio-test-server"
        )
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._port = port
        self._set_listening(True)
        self.url = f"http://127.0.0.1:{self._port}"

    def stop(self) -> None:
        self._set_listening(False)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if self._record_file:
            self._record_file.close()

    def _set_listening(self, listening: bool) -> None:
        asyncio.run_coroutine_threadsafe(self._listen(listening), self._loop).result(10)

    async def _listen(self, listening: bool) -> None:
        if listening and self._server is None:
            self._server = await self._loop.create_server(
                lambda: HttpProtocol(self), "127.0.0.1", self._port, reuse_address=True
            )
            self._port = self._server.sockets[0].getsockname()[1]
        elif not listening and self._server is not None:
            self._server.close()
            for transport in list(self.transports):
                transport.abort()  # open keep-alive connections die too, as in a real outage
            await self._server.wait_closed()
            self._server = None


@contextmanager
def twilio_test_server(**kwargs: object) -> Iterator[TwilioTestServer]:
    """A running server in this process on a free loopback port."""
    server = _ThreadedServer(**kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", type=Path, help="append every request as a JSON line")
    parser.add_argument("--account-sid", default=ACCOUNT_SID)
    parser.add_argument("--auth-token", default=AUTH_TOKEN)
    args = parser.parse_args(argv)
    server = _ThreadedServer(
        account_sid=args.account_sid, auth_token=args.auth_token, record_file=args.record
    )
    server.start(args.port)
    print(f"READY {server.url}", flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()

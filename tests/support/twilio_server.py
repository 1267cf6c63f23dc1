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
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.support import twilio_contract
from tests.support.twilio_http import HttpProtocol, Reply, error_reply, json_reply
from tests.support.twilio_resources import PREFIX, RESOURCES, ResourceStore

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token"
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
        self.store = ResourceStore(account_sid)
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
        if not split.path.startswith(PREFIX) or resource not in RESOURCES:
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
        created = self.store.create(resource, params)
        status = 0 if failure and failure.kind == "lost-response" else 201
        self._record(
            RecordedRequest(method, resource, params, status, str(created["sid"]), *now), []
        )
        reply = json_reply(201, created)
        reply.drop = status == 0
        reply.delay = failure.delay if failure and failure.kind == "slow" else 0.0
        return reply

    def _list(self, resource: str, path: str, query: dict[str, list[str]]) -> Reply:
        problems = twilio_contract.check("GET", resource, query)
        if problems:
            with self._lock:
                self._violations += problems
            return error_reply(400, 20001, "; ".join(problems))
        return json_reply(200, self.store.page(resource, path, query))

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


class _ThreadedServer(TwilioTestServer):
    """Runs the server on its own event loop in a daemon thread."""

    def start(self, port: int = 0) -> None:
        twilio_contract.ensure_available()
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

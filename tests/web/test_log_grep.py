"""No log line holds a registrant's email, phone number or link token (issue 12, "Done when").

A realistic run, every process writing its log to a file: the web app started by the Procfile's
own command (uvicorn, access log on), a sign-up confirmed by code and by email link, the manage
and unsubscribe pages opened (and tampered with, and asked with personal data in the query
string), a worker pool delivering an alert sent from the CLI, and CLI commands. Then every log
is searched for each person's email, each number in E.164 and national forms, and every token
that was sent to them.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.delivery.processes import ROOT, start_workers, stop_workers, wait_until
from tests.support.keys import TEST_SECRET_KEY
from tests.support.servers import free_port
from tests.support.smtp_server import SmtpTestServer
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN, TwilioTestServer
from tests.web.conftest import SMS_FROM, VOICE_FROM, confirm_link, sms_code

WEB_PERSON = {"name": "Wendy Weblog", "email": "wendy.weblog@example.org"}
WEB_MOBILE = ("+447911123111", "07911 123111", "07911123111")
CLI_PERSON = {"name": "Colin Clilog", "email": "colin.clilog@example.org"}
CLI_MOBILE = ("+447911123222", "07911 123222", "07911123222")
CLI_LANDLINE = ("+442079460333", "020 7946 0333", "02079460333")
TOKEN = re.compile(r"/(?:manage|unsubscribe|confirm)/([A-Za-z0-9_.-]{20,})")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/grep.db"
        return
    from broadcast.store.engine import create_db_engine, upgrade
    from tests.support.servers import throwaway_postgres_database

    with throwaway_postgres_database() as url:
        engine = create_db_engine(url)
        upgrade(engine)  # the Procfile's release step, before its web process starts
        engine.dispose()
        yield url


def procfile_command(name: str, port: int) -> list[str]:
    """The Procfile's line for `name`, run with this interpreter."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            words = shlex.split(line.split(":", 1)[1].replace("${PORT:-8000}", str(port)))
            return [sys.executable, "-m", *words]
    raise AssertionError(f"no {name} in the Procfile")


class Run:
    """The processes of one run and where each writes its log."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env = tmp, env
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self._cli_log = threading.Lock()  # CLI commands run side by side (each takes ~3 s)

    def full_env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
        return base | self.env | {"PYTHONPATH": str(ROOT)}

    def start(self, command: list[str], log: str) -> subprocess.Popen[bytes]:
        with (self.logs / log).open("ab") as out:
            return subprocess.Popen(
                command,
                cwd=self.tmp,
                env=self.full_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A CLI command; its stderr (where it logs and reports errors) is its log."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "cli.py"), *args],
            cwd=self.tmp,
            env=self.full_env() | {"BROADCAST_OPERATOR": "pc-grep"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        with self._cli_log, (self.logs / "cli.log").open("a") as log:
            log.write(result.stderr)
        return result


def sign_up_on_the_web(url: str, twilio: TwilioTestServer, smtp: SmtpTestServer) -> list[str]:
    """Sign up, confirm both channels, manage, download, unsubscribe; the links used."""
    links: list[str] = []
    with httpx.Client(base_url=url, timeout=10) as client:
        page = client.get("/subscribe")
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
        assert csrf, page.text
        form = {
            "name": WEB_PERSON["name"],
            "postcode": "SW1A 2AA",
            "channels": ["email", "sms"],
            "email": WEB_PERSON["email"],
            "mobile": WEB_MOBILE[1],
            "topics": ["burglary"],
            "consent": "yes",
            "csrf_token": csrf[1],
        }
        check = client.post("/subscribe", data=form)
        # Email first: the code is texted once the email address is confirmed
        assert check.status_code == 200 and "Check your messages" in check.text, check.text
        mails = [
            m.message.get_body(("plain",)).get_content()
            for m in smtp.messages
            if WEB_PERSON["email"] in m.rcpt_tos
        ]
        confirm = confirm_link(mails[-1]).removeprefix(url)
        links.append(confirm)
        assert client.get(confirm).status_code == 200
        confirmed = client.post(confirm, data={"csrf_token": csrf[1]})
        assert confirmed.status_code == 200
        found = re.search(r'href="(/confirm/[^"]+)">Enter the code', confirmed.text)
        assert found, confirmed.text
        links.append(found[1])
        # (The test servers serve the whole session: only what went to this person counts.)
        texts = [
            r.param("Body") or ""
            for r in twilio.accepted("Messages")
            if r.param("To") == WEB_MOBILE[0]
        ]
        code = sms_code(texts[-1])
        done = client.post(found[1], data={"code": code, "csrf_token": csrf[1]})
        assert "You are signed up" in done.text
        # The manage and unsubscribe links from the confirmation page and messages
        client.get(confirm)  # once more, after use: logged too
        sent = "\n".join([*mails, *texts, done.text])
        links += [match[0] for match in TOKEN.finditer(sent)]
        manage = re.search(r"/manage/[A-Za-z0-9_.-]{20,}", done.text)
        assert manage, done.text
        manage_path = manage[0]
        assert client.get(manage_path).status_code == 200
        assert client.get(manage_path + "/data.json").status_code == 200
        # A tampered link, and personal data in a query string, are logged too
        assert client.get(manage_path[:-3] + "abc").status_code == 400
        client.get("/subscribe", params={"email": WEB_PERSON["email"], "mobile": WEB_MOBILE[0]})
        client.get(f"/manage/{manage_path.rsplit('/', 1)[1]}?token=x")
        client.get(f"/no-such-page/{WEB_PERSON['email']}/{WEB_MOBILE[2]}")
    return links


def test_no_log_holds_an_email_a_number_or_a_token(
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    smtp: SmtpTestServer,
    twilio: TwilioTestServer,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    run = Run(
        tmp_path,
        {
            "BROADCAST_DATABASE_URL": database_url,
            "BROADCAST_REDIS_URL": redis_url,
            "BROADCAST_SECRET_KEY": TEST_SECRET_KEY,
            "BROADCAST_PUBLIC_URL": url,
            "BROADCAST_FORCE_NAME": "Test Metropolitan Police",
            "BROADCAST_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "BROADCAST_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "BROADCAST_TWILIO_API_URL": twilio.url,
            "BROADCAST_SMS_FROM": SMS_FROM,
            "BROADCAST_VOICE_FROM": VOICE_FROM,
            "BROADCAST_SMTP_HOST": smtp.host,
            "BROADCAST_SMTP_PORT": str(smtp.port),
            "BROADCAST_SMTP_TLS": "none",
            "BROADCAST_EMAIL_FROM": "alerts@example.police.uk",
            "BROADCAST_QUIET_HOURS": "off",
            "BROADCAST_VOICE_RATE": "",
        },
    )
    # Given the stack: the Procfile's web process and a worker pool, logging to files
    migrated = run.cli("db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr
    web = run.start(procfile_command("web", port), "web.log")
    workers = start_workers(run.env, run.logs / "worker.log", threads=2)
    # Each CLI command is a process that takes seconds to start: those that do not depend on
    # each other run side by side (the CLI person, registrant 1, is added while the web app
    # starts, and is in before the web sign-up, registrant 2, begins).
    pool = ThreadPoolExecutor(3)
    try:
        # When an operator adds a person
        adding = pool.submit(
            run.cli,
            "registrants", "add", "--name", CLI_PERSON["name"], "--email", CLI_PERSON["email"],
            "--mobile", CLI_MOBILE[1], "--landline", CLI_LANDLINE[1], "--postcode", "SW1A 1AA",
            "--areas", "SW1A", "--channels", "sms,email,voice",
        )  # fmt: skip
        wait_until(lambda: _up(url), 30, "the web app", run.logs / "web.log")
        added = adding.result()
        assert added.returncode == 0, added.stderr
        # And a person signs up on the web and uses every link they were sent
        links = sign_up_on_the_web(url, twilio, smtp)
        # And the operator lists, adds a duplicate and sends an alert the workers deliver
        again = pool.submit(
            run.cli,
            "registrants", "add", "--name", "Someone Else", "--email", CLI_PERSON["email"],
            "--channels", "email",
        )  # fmt: skip
        listed = pool.submit(run.cli, "registrants", "list")
        sent = run.cli(
            "alert", "send", "community-alert", "--area", "SW1A", "--channels", "sms,email,voice",
            "--var", "headline=Road closed", "--var", "message=Avoid the high street today.",
            "--yes",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert again.result().returncode != 0  # a refused duplicate: its error line is logged
        assert listed.result().returncode == 0
        wait_until(
            lambda: any(r.param("To") == CLI_MOBILE[0] for r in twilio.accepted("Messages")),
            60,
            "the alert SMS",
            run.logs / "worker.log",
        )
        wait_until(
            lambda: any(r.param("To") == CLI_LANDLINE[0] for r in twilio.accepted("Calls")),
            60,
            "the alert call",
            run.logs / "worker.log",
        )
        status = pool.submit(run.cli, "alert", "status", "1")
        # And the person who signed up on the web is erased
        assert run.cli("registrants", "erase", "2", "--yes").returncode == 0
        assert status.result().returncode == 0
    finally:
        pool.shutdown()
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(20)
        stop_workers(workers)
        time.sleep(0.5)
    # The tokens every person was sent (web links, and the links in the alert's messages)
    bodies = [r.param("Body") or "" for r in twilio.accepted("Messages")]
    bodies += [r.param("Twiml") or "" for r in twilio.accepted("Calls")]
    bodies += [m.message.get_body(("plain",)).get_content() for m in smtp.messages]
    tokens = {m[1] for m in TOKEN.finditer("\n".join([*links, *bodies]))}
    assert len(tokens) >= 4, bodies
    codes = {m[1] for text in bodies if (m := re.search(r"your code is (\d{6})", text))}
    secrets = [
        WEB_PERSON["name"],
        CLI_PERSON["name"],
        WEB_PERSON["email"],
        CLI_PERSON["email"],
        WEB_PERSON["email"].split("@")[0],
        *WEB_MOBILE,
        *CLI_MOBILE,
        *CLI_LANDLINE,
        *(number[3:] for number in (WEB_MOBILE[0], CLI_MOBILE[0], CLI_LANDLINE[0])),
        *tokens,
        *codes,
    ]
    logs = {path.name: path.read_text(errors="replace") for path in run.logs.iterdir()}
    # The logs are real: the web app logged each request's route, the workers their start
    assert "/manage/<token>/data.json" in logs["web.log"], logs["web.log"][-3000:]
    assert '"GET /subscribe' in logs["web.log"]
    assert "ready for action" in logs["worker.log"], logs["worker.log"][-3000:]
    found = [(name, s) for name, text in logs.items() for s in secrets if s in text]
    assert found == [], found


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False

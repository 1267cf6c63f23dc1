"""A private PostgreSQL cluster for a test run on a machine that has no server to use.

`python -m tests.support.postgres_cluster COMMAND ...` runs COMMAND (tests/run: pytest) with
BROADCAST_TEST_POSTGRES_URL pointing at a server the tests may create databases on: the one
already given there, else 127.0.0.1:5432 (trust auth), else a cluster of our own: `initdb` in a
temporary folder, trust auth, a free loopback port, stopped and removed when COMMAND ends. Only
that private cluster is ever stopped; a machine's own PostgreSQL is left alone.

`initdb` refuses to run as root, so as root (CI) the cluster runs as the `postgres` user, or as a
system user `broadcast-pg` made for it when there is none.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.support.servers import DEFAULT_POSTGRES_URL, free_port

EXIT_MISSING = 3
CLUSTER_USER = "broadcast-pg"


def reachable(url: str) -> bool:
    """Whether a server answers at `url` and lets us in (a refused login counts as no server)."""
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def reachable_server(urls: Sequence[str]) -> str | None:
    return next((url for url in urls if reachable(url)), None)


def candidate_urls() -> list[str]:
    given = os.environ.get("BROADCAST_TEST_POSTGRES_URL")
    return [given, DEFAULT_POSTGRES_URL] if given else [DEFAULT_POSTGRES_URL]


def server_binary(name: str) -> str | None:
    """`initdb`/`pg_ctl` on PATH, else the newest of Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    number = re.compile(r"/postgresql/(\d+)")
    versions.sort(key=lambda p: int(m.group(1)) if (m := number.search(p)) else 0)
    return versions[-1] if versions else None


def _cluster_user() -> str | None:
    """Who runs the cluster: ourselves, unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", CLUSTER_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", CLUSTER_USER],
        check=True,
    )
    return CLUSTER_USER


def _as(user: str | None, command: list[str]) -> list[str]:
    return command if user is None else ["runuser", "-u", user, "--", *command]


@contextmanager
def private_cluster() -> Iterator[str]:
    """Start a throwaway cluster; yield its superuser URL; stop and remove it afterwards."""
    initdb, pg_ctl = server_binary("initdb"), server_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError(
            "PostgreSQL is not installed (no initdb): install it (Debian: apt-get install "
            "postgresql) or set BROADCAST_TEST_POSTGRES_URL"
        )
    user = _cluster_user()
    workdir = Path(tempfile.mkdtemp(prefix="broadcast-pg-"))
    data, log = workdir / "data", workdir / "server.log"
    if user is not None:
        shutil.chown(workdir, user=user)
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
    try:
        step = subprocess.run(
            _as(
                user,
                [
                    initdb,
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            ),
            **quiet,  # type: ignore[call-overload]
        )
        if step.returncode != 0:
            raise RuntimeError(f"initdb failed: {step.stderr.strip()}")
        # Tests throw their data away: fsync off makes CREATE DATABASE and commits cheap.
        options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        step = subprocess.run(
            _as(
                user,
                [pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"],
            ),
            **quiet,  # type: ignore[call-overload]
        )
        if step.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else step.stderr
            raise RuntimeError(f"the private PostgreSQL did not start on port {port}: {tail}")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                _as(user, [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
                **quiet,  # type: ignore[call-overload]
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(128 + signal.SIGTERM)


def main(argv: list[str]) -> int:
    """Run argv with a PostgreSQL for the tests; `--status` exits 3 when initdb is missing."""
    if argv[:1] == ["--status"]:
        # tests/run installs the server when missing, like redis-server: the suite also starts
        # a private cluster of its own (tests/test_postgres_cluster.py).
        return EXIT_MISSING if server_binary("initdb") is None else 0
    server = reachable_server(candidate_urls())
    if not argv:
        print("usage: python -m tests.support.postgres_cluster [--status] COMMAND ...")
        return 2
    if server is not None:
        os.environ["BROADCAST_TEST_POSTGRES_URL"] = server
        os.execvp(argv[0], argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with private_cluster() as url:
        print(f"tests: no PostgreSQL reachable; started a private cluster at {url}", flush=True)
        child = subprocess.Popen(argv, env=os.environ | {"BROADCAST_TEST_POSTGRES_URL": url})
        try:
            return child.wait()
        except BaseException:
            child.terminate()
            child.wait()
            raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

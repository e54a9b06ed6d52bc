"""A real PostgreSQL server for the end-to-end tests, started and stopped by the test session.

``CRM_TEST_POSTGRES_URL`` points the tests at a server you already run (the user in the URL
must be allowed to create databases). Without it, a throwaway cluster is made with the
PostgreSQL binaries on this machine (``initdb`` and ``pg_ctl``; Debian's ``postgresql``
package, which ``.ci/run`` installs) in a temporary folder, listening on 127.0.0.1 only.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
from psycopg2.extensions import ISOLATION_LEVEL_AUTOCOMMIT

USER = "crm_test"
PASSWORD = "crm-test-password"
"""A throwaway cluster's password, on loopback only; never a real secret."""


class PostgresUnavailableError(RuntimeError):
    """No server URL was given and no PostgreSQL binaries were found."""


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise PostgresUnavailableError(
            f"PostgreSQL's {name} was not found. Install the server (Debian/Ubuntu: "
            "apt-get install postgresql; macOS: brew install postgresql) or set "
            "CRM_TEST_POSTGRES_URL to a server whose user may create databases."
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a new cluster on a free loopback port; yield its admin URL; remove it after."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="crm-postgres-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PostgresUnavailableError(
                "running as root needs the postgres user (apt-get install postgresql makes it)"
            ) from exc
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, password_file, port = root / "data", root / "password", _free_port()
    password_file.write_text(PASSWORD)

    def run(*args: str) -> None:
        subprocess.run(_as_owner(list(args)), check=True, capture_output=True)

    try:
        run(initdb, "-D", str(data), "-U", USER, "--pwfile", str(password_file), "-A", "md5", "-N")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(pg_ctl, "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start")
        try:
            yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
        finally:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The admin URL of ``CRM_TEST_POSTGRES_URL``, or of a throwaway cluster."""
    given = os.environ.get("CRM_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    with throwaway_cluster() as url:
        yield url


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """Create an empty database for one test; yield its URL; drop it after."""
    name = f"crm_{uuid.uuid4().hex[:12]}"
    _admin(admin_url, f"create database {name}")
    try:
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        _admin(admin_url, f"drop database {name} with (force)")


def _admin(admin_url: str, statement: str) -> None:
    connection = psycopg2.connect(admin_url)
    try:
        connection.set_isolation_level(ISOLATION_LEVEL_AUTOCOMMIT)
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()

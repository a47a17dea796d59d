"""Real servers for the extraction tests, each started on a free loopback port in a temp dir.

- PostgreSQL from Debian's `postgresql` package (initdb + pg_ctl), password (SCRAM) logins;
- OpenSSH `sshd` with generated host and client keys, serving SFTP;
- an HTTP server shaped like DingTalk's approval API (cursor-paginated id list, then one
  instance per id), with token checks and injectable 429 / 5xx answers.

Each is a context manager that stops its server in `finally`. Where a binary is missing the
caller skips with the reason (`make test` installs them with apt when run as root).
"""

from __future__ import annotations

import getpass
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlparse


class Unavailable(Exception):
    """A server cannot be started here; the message says why (the test skips with it)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen | None, seconds: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited early: {log.read_text() if log and log.exists() else process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on port {port} within {seconds} s")


# ---------------------------------------------------------------------------- PostgreSQL


def _postgres_binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


@dataclass
class Postgres:
    port: int
    user: str = "recon"
    password: str = "s3cret-pw"
    host: str = "127.0.0.1"
    _engines: dict = field(default_factory=dict, repr=False)

    def url(self, database: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        return f"postgresql://{user or self.user}:{password or self.password}@{self.host}:{self.port}/{database}"

    def engine(self, database: str = "postgres"):
        from sqlalchemy import create_engine

        if database not in self._engines:  # one per database: the test loops call this a lot
            self._engines[database] = create_engine(self.url(database), isolation_level="AUTOCOMMIT", pool_size=1)
        return self._engines[database]

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()

    def create_database(self, name: str) -> str:
        from sqlalchemy import text

        with self.engine().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return self.url(name)

    def execute(self, database: str, *statements: str, rows: list | None = None) -> None:
        """Run SQL in `database`; with `rows`, the last statement runs once per row (executemany)."""
        from sqlalchemy import text

        with self.engine(database).connect() as conn:
            for statement in statements[:-1] if rows is not None else statements:
                conn.execute(text(statement))
            if rows is not None and rows:
                conn.execute(text(statements[-1]), rows)


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise Unavailable("PostgreSQL is not installed (no initdb/pg_ctl); `make test` installs Debian's postgresql as root")
    run_as = {}
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the postgres user
        try:
            import pwd

            account = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no `postgres` user to run the server as") from None
        run_as = {"user": account.pw_uid, "group": account.pw_gid}
    root = Path(tempfile.mkdtemp(prefix="recon-pg-"))
    server = Postgres(port=free_port())
    data, log, password_file = root / "data", root / "server.log", root / "password"
    password_file.write_text(server.password)
    if run_as:
        os.chown(root, run_as["user"], run_as["group"])
        os.chown(password_file, run_as["user"], run_as["group"])
    started = False
    try:
        subprocess.run(
            [initdb, "-D", str(data), "-U", server.user, f"--pwfile={password_file}", "--auth-local=trust",
             "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"],
            check=True, capture_output=True, cwd=root, **run_as,
        )
        options = (f"-c listen_addresses=127.0.0.1 -p {server.port} -c unix_socket_directories='' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=30 "
                   "-c shared_buffers=32MB -c timezone=UTC")
        subprocess.run([pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"],
                       check=True, capture_output=True, cwd=root, **run_as)
        started = True
        yield server
    finally:
        server.dispose()
        if started:
            subprocess.run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True, cwd=root, **run_as)
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------- sshd / SFTP


@dataclass
class SftpServer:
    port: int
    user: str
    key_file: Path  # the client's private key (its public half is authorized)
    outbox: Path  # the remote directory the bank delivers into (an absolute path on the server)
    other_key: Path  # a key the server does not know
    host: str = "127.0.0.1"


@contextmanager
def sftp_server() -> Iterator[SftpServer]:
    sshd, keygen = "/usr/sbin/sshd", shutil.which("ssh-keygen")
    if not os.path.exists(sshd) or not keygen:
        raise Unavailable("OpenSSH server is not installed (/usr/sbin/sshd); `make test` installs openssh-server as root")
    root = Path(tempfile.mkdtemp(prefix="recon-sshd-"))
    for name in ("host_key", "client_key", "other_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    outbox = root / "outbox"
    outbox.mkdir()
    port = free_port()
    config = root / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {root / 'host_key'}", f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}", "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
        "Subsystem sftp internal-sftp", "LogLevel ERROR", "MaxStartups 50", "",
    ]))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    log = root / "sshd.log"
    with log.open("w") as log_handle:
        process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log_handle, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, 15, log)
        yield SftpServer(port=port, user=getpass.getuser(), key_file=root / "client_key", outbox=outbox,
                         other_key=root / "other_key")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung or firewalled host)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        listener.close()


# ---------------------------------------------------------------------------- HTTP (DingTalk-shaped)


@dataclass
class ApprovalApi:
    """State of the fake approval system; tests change it between extractions."""

    token: str = "ding-token-1"
    instances: dict[str, dict] = field(default_factory=dict)  # id -> instance (the `result` object)
    page_size: int = 20
    planned_failures: list[int] = field(default_factory=list)  # status codes for the next requests
    always_fail: int | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    list_bodies: list[dict] = field(default_factory=list)
    csv_pages: list[bytes] = field(default_factory=list)  # for /export.csv?page=N (1-based)
    items: list[dict] = field(default_factory=list)  # for /api/items?page=N&size=M
    base_url: str = ""


def _approval_handler(api: ApprovalApi):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _send(self, code: int, payload, content_type: str = "application/json; charset=utf-8", headers=None) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            url = urlparse(self.path)
            api.requests.append((method, url.path))
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null") if length else None
            if api.always_fail is not None:
                return self._send(api.always_fail, {"code": "ServiceUnavailable", "message": "try later"})
            if api.planned_failures:
                code = api.planned_failures.pop(0)
                return self._send(code, {"code": "Throttled", "message": "slow down"}, headers={"Retry-After": "0"})
            if api.token not in (self.headers.get("x-acs-dingtalk-access-token"),
                                 (self.headers.get("Authorization") or "").removeprefix("Bearer ")):
                return self._send(401, {"code": "InvalidAuthentication", "message": "不合法的access_token"})
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if method == "POST" and url.path == "/v1.0/workflow/processes/instanceIds/query":
                api.list_bodies.append(body)
                if not isinstance(body.get("startTime"), int) or not body.get("processCode"):
                    return self._send(400, {"code": "InvalidParameter", "message": "startTime/processCode"})
                start = int(body.get("nextToken") or 0)
                size = min(int(body.get("maxResults") or 20), api.page_size)
                ids = sorted(api.instances)
                page = ids[start:start + size]
                result = {"list": page}
                if start + size < len(ids):
                    result["nextToken"] = str(start + size)
                return self._send(200, {"result": result, "success": True})
            if method == "GET" and url.path == "/v1.0/workflow/processInstances":
                instance = api.instances.get(query.get("processInstanceId", ""))
                if instance is None:
                    return self._send(404, {"code": "NotFound", "message": "instance not found"})
                return self._send(200, {"result": instance, "success": True})
            if method == "GET" and url.path == "/api/items":
                page, size = int(query.get("page", "1")), int(query.get("size", "10"))
                chunk = api.items[(page - 1) * size:page * size]
                return self._send(200, {"data": {"items": chunk, "hasMore": page * size < len(api.items)}})
            if method == "GET" and url.path == "/export.csv":
                page = int(query.get("page", "1"))
                data = api.csv_pages[page - 1] if page <= len(api.csv_pages) else b""
                return self._send(200, data, "text/csv; charset=utf-8")
            return self._send(404, {"code": "NotFound", "message": url.path})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

    return Handler


@contextmanager
def approval_api() -> Iterator[ApprovalApi]:
    api = ApprovalApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _approval_handler(api))
    server.daemon_threads = True
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def dingtalk_instance(instance_id: str, form: dict[str, str | None], *, status: str = "COMPLETED",
                      result: str = "agree", create_time: str = "2025-03-01T02:00Z") -> dict:
    """One approval instance as DingTalk's GET /v1.0/workflow/processInstances returns it."""
    return {
        "title": f"合同审批 {instance_id}", "businessId": f"2025{instance_id[-6:]}", "status": status, "result": result,
        "createTime": create_time, "finishTime": None if status == "RUNNING" else "2025-03-01T06:00Z",
        "originatorUserId": "manager01", "originatorDeptName": "法务部",
        "formComponentValues": [{"id": f"TextField-{i}", "name": name, "value": value, "componentType": "TextField"}
                                for i, (name, value) in enumerate(form.items())],
        "operationRecords": [{"userId": "legal01", "type": "EXECUTE_TASK_NORMAL", "result": result}],
    }

"""`kind: sftp`: a bank's host-to-host delivery, fetched file by file, byte for byte.

Each run lists `remote_dir` and takes the regular files matching `glob` that it has not fetched
before (same name, size and modification time), into `<source>/<as-of date>/` under their own
names; ingest's statement readers then read them (MT940, CAMT.053, bank exports, zip). Files
stay on the server, as banks keep them. A file is fetched only once its size and mtime have
stayed the same for `settle_seconds` (the bank may still be writing it) and is checked again
after the download; one still growing after `settle_timeout` is left for the next run.

The server's host key: with `known_hosts` it must be listed in that file; without, the key seen
on the first connection is pinned in the entry's state and a different key later is refused.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import posixpath
import socket
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from recon_pipeline.extract.config import ExtractError, SftpSpec, secret
from recon_pipeline.extract.landing import place_file, scratch_path
from recon_pipeline.extract.stage import ExtractContext, ExtractResult, relative
from recon_pipeline.ingest.loader import IGNORED_FILES

# paramiko logs handshake failures with tracebacks; our one-line errors say it for the user.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def extract_sftp(spec: SftpSpec, context: ExtractContext) -> ExtractResult:
    result = ExtractResult(spec.name, spec.source, spec.kind)
    fetched: dict[str, str] = context.state.data.setdefault("fetched", {})
    with _session(spec, context) as sftp:
        candidates = [a for a in _listing(spec, sftp) if _identity(a) not in fetched]
        stable, growing = _settled(spec, sftp, candidates)
        for attributes in stable:
            path = _download(spec, sftp, attributes, context)
            if path is None:  # it changed while we read it: still being written
                growing.append(attributes.filename)
                continue
            fetched[_identity(attributes)] = relative(context.landing, path)
            context.state.save()  # a later failure must not fetch this file again
            result.files.append(relative(context.landing, path))
    if growing:
        result.error = (f"{spec.name}: 远程文件仍在写入，{spec.settle_timeout:g} 秒内大小仍在变化，本次未下载: "
                        f"{', '.join(sorted(growing))}（下次提取时再取）")
    elif not result.files:
        result.note = "没有新文件" if not candidates else "没有可下载的文件"
    return result


def _identity(attributes) -> str:
    return f"{attributes.filename}\t{attributes.st_size}\t{attributes.st_mtime}"


# ---------------------------------------------------------------------------- connection


@contextmanager
def _session(spec: SftpSpec, context: ExtractContext) -> Iterator["paramiko.SFTPClient"]:
    import paramiko

    where = f"{spec.host}:{spec.port}"
    client = paramiko.SSHClient()
    pins = context.state.data.setdefault("host_keys", {})
    if spec.known_hosts:
        try:
            client.load_host_keys(os.path.expanduser(spec.known_hosts))
        except OSError as exc:
            raise ExtractError(f"{spec.name}: 无法读取 known_hosts 文件 {spec.known_hosts}（{exc.strerror or exc}）") from None
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        client.set_missing_host_key_policy(_PinnedHostKey(spec, pins, context.state.path))
    try:
        client.connect(
            spec.host, port=spec.port, username=spec.user, pkey=_private_key(spec),
            password=secret(spec, spec.password_env, "SFTP 密码") if spec.password_env else None,
            timeout=spec.timeout, banner_timeout=spec.timeout, auth_timeout=spec.timeout,
            channel_timeout=spec.timeout, allow_agent=False, look_for_keys=False,
        )
        sftp = client.open_sftp()
        sftp.get_channel().settimeout(spec.timeout)
        context.state.save()  # keeps a newly pinned host key even when nothing is fetched
    except ExtractError:
        client.close()
        raise
    except paramiko.AuthenticationException:
        client.close()
        credential = spec.key_file_env or spec.password_env
        raise ExtractError(f"{spec.name}: SFTP 登录失败（{where}，用户 {spec.user}）：服务器拒绝了 {credential} 中的凭据") from None
    except paramiko.BadHostKeyException:
        client.close()
        raise ExtractError(f"{spec.name}: SFTP 服务器 {where} 的主机密钥与 {spec.known_hosts} 中登记的不同（可能被冒充）") from None
    except (socket.timeout, TimeoutError):
        client.close()
        raise ExtractError(f"{spec.name}: 连接 SFTP 服务器 {where} 超时（{spec.timeout:g} 秒内没有响应）") from None
    except paramiko.SSHException as exc:
        client.close()
        text = str(exc)
        if any(word in text.lower() for word in ("banner", "timeout", "no existing session")):
            # The TCP connection opened but no SSH handshake completed in time (a hung service).
            raise ExtractError(f"{spec.name}: 连接 SFTP 服务器 {where} 超时（{spec.timeout:g} 秒内没有完成 SSH 握手）") from None
        if "known_hosts" in text:
            raise ExtractError(f"{spec.name}: SFTP 服务器 {where} 的主机密钥不在 {spec.known_hosts} 中") from None
        raise ExtractError(f"{spec.name}: SFTP 连接失败（{where}）: {text}") from None
    except OSError as exc:  # refused, unknown host, no route (NoValidConnectionsError is one)
        client.close()
        causes = list(getattr(exc, "errors", {}).values()) or [exc]  # NoValidConnectionsError: one per address
        refused = all(isinstance(c, ConnectionRefusedError) or getattr(c, "errno", None) == 111 for c in causes)
        reason = "连接被拒绝" if refused else (getattr(causes[0], "strerror", None) or str(causes[0]))
        raise ExtractError(f"{spec.name}: 无法连接 SFTP 服务器 {where}（{reason}）") from None
    try:
        yield sftp
    except (socket.timeout, TimeoutError):
        raise ExtractError(f"{spec.name}: SFTP 服务器 {where} 在 {spec.timeout:g} 秒内没有响应（传输中断）") from None
    finally:
        client.close()


def _private_key(spec: SftpSpec):
    if not spec.key_file_env:
        return None
    import paramiko

    path = Path(os.path.expanduser(secret(spec, spec.key_file_env, "SFTP 私钥文件的路径")))
    if not path.is_file():
        raise ExtractError(f"{spec.name}: 私钥文件不存在: {path}（来自环境变量 {spec.key_file_env}）")
    passphrase = secret(spec, spec.passphrase_env, "私钥口令") if spec.passphrase_env else None
    try:
        return paramiko.PKey.from_path(path, password=passphrase)
    except paramiko.PasswordRequiredException:
        raise ExtractError(f"{spec.name}: 私钥 {path} 有口令，请用 passphrase_env 指定保存口令的环境变量") from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise ExtractError(f"{spec.name}: 无法读取私钥 {path}（{exc}）") from None


class _PinnedHostKey:
    """Trust on first use: remember the server's key, refuse a different one later."""

    def __init__(self, spec: SftpSpec, pins: dict[str, str], state_path: Path):
        self.spec, self.pins, self.state_path = spec, pins, state_path

    def missing_host_key(self, client, hostname, key) -> None:
        where = f"[{self.spec.host}]:{self.spec.port}"
        seen = f"{key.get_name()} {key.get_base64()}"
        pinned = self.pins.get(where)
        if pinned is None:
            self.pins[where] = seen
        elif pinned != seen:
            raise ExtractError(
                f"{self.spec.name}: SFTP 服务器 {self.spec.host}:{self.spec.port} 的主机密钥与首次连接时不同（可能被冒充）；"
                f"确认银行更换了密钥后，删除 {self.state_path} 中 host_keys 的这一项"
            )


# ---------------------------------------------------------------------------- files


def _listing(spec: SftpSpec, sftp) -> list:
    try:
        entries = sftp.listdir_attr(spec.remote_dir)
    except FileNotFoundError:
        raise ExtractError(f"{spec.name}: 远程目录不存在: {spec.remote_dir}") from None
    except PermissionError:
        raise ExtractError(f"{spec.name}: 无权读取远程目录: {spec.remote_dir}") from None
    except OSError as exc:
        raise ExtractError(f"{spec.name}: 无法列出远程目录 {spec.remote_dir}（{exc}）") from None
    wanted = []
    for attributes in entries:
        name = attributes.filename
        if attributes.st_mode is not None and not stat.S_ISREG(attributes.st_mode):
            continue
        if name.startswith(".") and not spec.glob.startswith("."):
            continue  # like a shell glob: `*` does not match hidden files
        if IGNORED_FILES.search(name) or not fnmatch.fnmatchcase(name, spec.glob):
            continue
        wanted.append(attributes)
    return sorted(wanted, key=lambda a: (a.st_mtime or 0, a.filename))


def _settled(spec: SftpSpec, sftp, candidates: list) -> tuple[list, list[str]]:
    """The candidates whose size and mtime stay put for `settle_seconds`, and those that
    were still changing when `settle_timeout` ran out."""
    if not candidates:
        return [], []
    deadline = time.monotonic() + spec.settle_timeout
    pending = {a.filename: (a.st_size, a.st_mtime) for a in candidates}
    stable = []
    while pending:
        time.sleep(spec.settle_seconds)
        for name, before in list(pending.items()):
            try:
                now = sftp.stat(posixpath.join(spec.remote_dir, name))
            except FileNotFoundError:  # removed by the bank meanwhile (a renamed upload)
                del pending[name]
                continue
            now.filename = name
            if (now.st_size, now.st_mtime) == before:
                stable.append(now)
                del pending[name]
            else:
                pending[name] = (now.st_size, now.st_mtime)
        if pending and time.monotonic() + spec.settle_seconds > deadline:
            break
    return sorted(stable, key=lambda a: (a.st_mtime or 0, a.filename)), sorted(pending)


def _download(spec: SftpSpec, sftp, attributes, context: ExtractContext) -> Path | None:
    remote = posixpath.join(spec.remote_dir, attributes.filename)
    scratch = scratch_path(context.landing, Path(attributes.filename).suffix)
    try:
        with scratch.open("wb") as handle:
            sftp.getfo(remote, handle)
        after = sftp.stat(remote)
        if (after.st_size, after.st_mtime) != (attributes.st_size, attributes.st_mtime) \
                or scratch.stat().st_size != attributes.st_size:
            return None
        if attributes.st_mtime is not None:  # the bank's time, for provenance and the landing sensor
            os.utime(scratch, (attributes.st_mtime, attributes.st_mtime))
        return place_file(scratch, context.landing, spec.source, context.as_of.date(), attributes.filename)
    except (socket.timeout, TimeoutError):
        raise ExtractError(f"{spec.name}: 下载 {remote} 超时（{spec.timeout:g} 秒内没有数据）") from None
    except OSError as exc:
        raise ExtractError(f"{spec.name}: 下载 {remote} 失败（{exc}）") from None
    finally:
        scratch.unlink(missing_ok=True)

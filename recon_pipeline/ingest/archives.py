"""Archive deliveries (`.zip`, `.gz`, `.tar`, `.tgz`): their members, read in memory within limits.

Banks and portals deliver statements zipped (a day's camt.053 files in one `.zip`, a
`.csv.gz` download). Each member is read like a file of its own; a member that cannot be
read is reported by name and the others still load. Nothing is ever extracted into the
landing zone: members are read into memory, and a member's name is only a label, cleaned of
`..`, drive letters and leading slashes, so a hostile name cannot point anywhere.

Limits (settings `ingest_limits`, see `IngestLimits`) refuse a zip bomb by its size before
and while decompressing: the sizes an archive declares are checked first, then the bytes
actually produced, because a crafted archive can lie about them.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from recon_pipeline.settings import Settings

MB = 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
GZIP_MAGIC = b"\x1f\x8b"


class ArchiveError(Exception):
    """The archive as a whole is refused (damaged, or over the limits); Chinese message."""


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on what one landing file may make the pipeline hold in memory."""

    max_file_mb: int = 512  # a landing file (or an archive member) larger than this is refused
    max_archive_mb: int = 1024  # all members of one archive, decompressed
    max_compression_ratio: int = 200  # decompressed / compressed, for members over 10 MB
    max_members: int = 10_000
    max_cell_chars: int = 32_767  # Excel's own limit for a cell: a longer one is not a real export

    @classmethod
    def from_settings(cls, settings: Settings | None) -> "IngestLimits":
        raw = ((settings.raw if settings is not None else {}) or {}).get("ingest_limits") or {}
        known = {k: int(v) for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * MB


RATIO_CHECK_BYTES = 10 * MB


@dataclass(frozen=True)
class Member:
    """One member of an archive: its cleaned path inside the archive and its bytes, or the
    reason it was not read (`data` is None then)."""

    name: str
    data: bytes | None
    problem: str | None = None


def archive_kind(head: bytes, name: str) -> str | None:
    """"zip", "gzip" or "tar" from the first bytes (an `.xlsx` is a zip too, but is left to
    the spreadsheet reader); None for anything else."""
    lowered = name.lower()
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        return None if lowered.endswith((".xlsx", ".xlsm", ".xls")) else "zip"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def is_archive(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    if archive_kind(head, path.name) != "zip":
        return archive_kind(head, path.name) is not None
    # A workbook saved without its usual extension is still a workbook, not a delivery.
    try:
        with zipfile.ZipFile(path) as archive:
            return "[Content_Types].xml" not in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return True  # a damaged zip: reported as a damaged archive


def safe_member_name(name: str) -> str:
    """A member's path as a harmless label: `../../etc/x.csv` -> `etc/x.csv`, `C:\\x.csv` ->
    `x.csv`, `/abs/x.csv` -> `abs/x.csv`."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if parts and len(parts[0]) == 2 and parts[0][1] == ":":
        parts = parts[1:]
    cleaned = "/".join(p.replace("\x00", "") for p in parts)
    return cleaned or "unnamed"


def _zip_name(info: zipfile.ZipInfo) -> str:
    """Windows zips from Chinese systems store GBK names without the UTF-8 flag."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


class _Budget:
    def __init__(self, archive: str, limits: IngestLimits):
        self.archive, self.limits, self.used = archive, limits, 0

    def declared(self, name: str, size: int, compressed: int | None) -> str | None:
        """Refuse the archive for a declared total over the limit, a member for its size."""
        self.used += size
        if self.used > self.limits.max_archive_mb * MB:
            raise ArchiveError(
                f"{self.archive}: 解压后超过 {self.limits.max_archive_mb} MB（ingest_limits.max_archive_mb），疑似压缩炸弹，已拒绝")
        if compressed is not None and size > RATIO_CHECK_BYTES and size > compressed * self.limits.max_compression_ratio:
            raise ArchiveError(
                f"{self.archive}: 成员 {name} 压缩比超过 {self.limits.max_compression_ratio}:1"
                "（ingest_limits.max_compression_ratio），疑似压缩炸弹，已拒绝")
        if size > self.limits.max_file_bytes:
            return f"解压后超过 {self.limits.max_file_mb} MB（ingest_limits.max_file_mb）"
        return None

    def read(self, name: str, stream, compressed: int | None) -> bytes:
        """The member's bytes, stopping as soon as it produces more than it may."""
        limit = self.limits.max_file_bytes
        chunks, size = [], 0
        while True:
            chunk = stream.read(min(1 * MB, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ArchiveError(f"{self.archive}: 成员 {name} 实际解压后超过 {self.limits.max_file_mb} MB，疑似压缩炸弹，已拒绝")
            if compressed is not None and size > RATIO_CHECK_BYTES and size > compressed * self.limits.max_compression_ratio:
                raise ArchiveError(f"{self.archive}: 成员 {name} 实际压缩比超过 {self.limits.max_compression_ratio}:1，疑似压缩炸弹，已拒绝")
        return b"".join(chunks)


def _zip_members(path: Path, budget: _Budget) -> Iterator[Member]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"{path.name}: 压缩包已损坏，无法打开（{exc}）") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > budget.limits.max_members:
            raise ArchiveError(f"{path.name}: 压缩包内有 {len(infos)} 个文件，超过 {budget.limits.max_members} 个的上限")
        for info in infos:
            name = safe_member_name(_zip_name(info))
            if info.flag_bits & 0x1:
                yield Member(name, None, "已加密，无法读取（请解密后再放入）")
                continue
            problem = budget.declared(name, info.file_size, info.compress_size)
            if problem:
                yield Member(name, None, problem)
                continue
            try:
                with archive.open(info) as stream:
                    data = budget.read(name, stream, info.compress_size)
            except ArchiveError:
                raise
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError, ValueError) as exc:
                yield Member(name, None, f"已损坏，无法解压（{exc}）")
                continue
            yield Member(name, data)


def _tar_members(path: Path, budget: _Budget, fileobj=None) -> Iterator[Member]:
    try:
        archive = tarfile.open(path if fileobj is None else None, mode="r:*", fileobj=fileobj)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{path.name}: 压缩包已损坏，无法打开（{exc}）") from None
    compressed = path.stat().st_size
    count = 0
    with archive:
        try:
            for info in archive:
                if info.isdir():
                    continue
                count += 1
                if count > budget.limits.max_members:
                    raise ArchiveError(f"{path.name}: 压缩包内文件超过 {budget.limits.max_members} 个的上限")
                name = safe_member_name(info.name)
                if not info.isreg():  # links and devices point elsewhere: never followed
                    yield Member(name, None, "是链接或特殊文件，未读取")
                    continue
                problem = budget.declared(name, info.size, compressed)
                if problem:
                    yield Member(name, None, problem)
                    continue
                stream = archive.extractfile(info)
                yield Member(name, budget.read(name, stream, compressed) if stream else b"")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise ArchiveError(f"{path.name}: 压缩包已损坏（{exc}）") from None


def _gzip_members(path: Path, budget: _Budget) -> Iterator[Member]:
    inner = path.name[:-3] if path.name.lower().endswith(".gz") else path.stem
    if path.name.lower().endswith((".tgz", ".tar.gz")):
        yield from _tar_members(path, budget)
        return
    compressed = path.stat().st_size
    try:
        with gzip.open(path, "rb") as stream:
            data = budget.read(inner, stream, compressed)
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{path.name}: gzip 文件已损坏，无法解压（{exc}）") from None
    budget.declared(inner, len(data), compressed)
    if len(data) > 262 and data[257:262] == b"ustar":
        yield from _tar_members(path, _Budget(path.name, budget.limits), fileobj=io.BytesIO(data))
        return
    yield Member(safe_member_name(inner), data)


def read_members(path: Path, limits: IngestLimits) -> Iterator[Member]:
    """Every member of the archive at `path`, in archive order. Raises ArchiveError when the
    archive itself is damaged or over the limits (a zip bomb), never part-way silently."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    kind = archive_kind(head, path.name) or "zip"
    budget = _Budget(path.name, limits)
    if kind == "gzip":
        members = _gzip_members(path, budget)
    elif kind == "tar":
        members = _tar_members(path, budget)
    else:
        members = _zip_members(path, budget)
    for member in members:
        suffix = PurePosixPath(member.name).suffix.lower()
        if member.data is not None and (archive_kind(member.data[:512], member.name) or suffix in (".zip", ".gz", ".tgz", ".tar")):
            yield Member(member.name, None, "是压缩包中的压缩包，不再展开（请解压后放入）")
            continue
        yield member


def check_workbook(path: Path, limits: IngestLimits) -> None:
    """An `.xlsx` is a zip of XML sheets: refuse one that would expand past the limits
    before the spreadsheet reader decompresses it."""
    try:
        with zipfile.ZipFile(path) as workbook:
            infos = workbook.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a readable zip: the spreadsheet reader reports the damage
    budget = _Budget(path.name, limits)
    for info in infos:
        problem = budget.declared(info.filename, info.file_size, info.compress_size)
        if problem:
            raise ArchiveError(f"{path.name}: 工作簿中的 {info.filename} {problem}，疑似压缩炸弹，已拒绝")

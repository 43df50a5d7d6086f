"""The bundle object: a fixed header (format, sha256 and size of the payload) followed by a
deterministic tar.gz of ``src/`` (the sources) and ``site-packages/`` (the requirements).

The header lets one object be verified on its own, wherever it is stored: a truncated or
altered object is refused before a single byte of it is unpacked.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

if TYPE_CHECKING:
    import tarfile

MAGIC = b"SWBUNDLE1"
HEADER_SIZE = 96  # MAGIC, space, 64 hex digits, space, 20-digit size, newline
TOP_LEVEL = ("src", "site-packages", "bundle.json")
# Entries carry this time and no owner, so equal inputs give byte-identical archives.
_MTIME = 315532800  # 1980-01-01, the earliest time a zip (a wheel) can hold
_CHUNK = 1 << 20


class BundleCorrupt(Exception):
    """The object failed verification; ``str()`` says how (one line)."""


class Member(NamedTuple):
    """One file of the archive: bytes in memory, or a file on disk."""

    name: str
    data: bytes | Path
    executable: bool = False


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``target``."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


class _Payload(io.RawIOBase):
    """The object's payload as a file of its own: gzip rewinds to offset 0 to seek backwards,
    which must be the payload's start, not the header's."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.fh.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            offset += HEADER_SIZE
        return self.fh.seek(offset, whence) - HEADER_SIZE

    def tell(self) -> int:
        return self.fh.tell() - HEADER_SIZE


def _header(digest: str, size: int) -> bytes:
    header = MAGIC + f" {digest} {size:020d}\n".encode()
    assert len(header) == HEADER_SIZE
    return header


def pack(dest: Path, members: Iterable[Member], compresslevel: int = 6) -> tuple[str, int]:
    """Write the bundle object to ``dest``; returns the payload's sha256 and the object's size."""
    import gzip
    import tarfile

    with dest.open("wb") as fh:
        fh.write(b"\0" * HEADER_SIZE)
        hashing = _Hashing(fh)
        with (
            gzip.GzipFile(
                filename="", mode="wb", fileobj=hashing, compresslevel=compresslevel, mtime=0
            ) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for member in sorted(members, key=lambda m: m.name):
                info = tarfile.TarInfo(member.name)
                info.mtime = _MTIME
                info.mode = 0o755 if member.executable else 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if isinstance(member.data, bytes):
                    info.size = len(member.data)
                    tar.addfile(info, io.BytesIO(member.data))
                else:
                    info.size = member.data.stat().st_size
                    with member.data.open("rb") as src:
                        tar.addfile(info, src)
        digest = hashing.sha.hexdigest()
        fh.seek(0)
        fh.write(_header(digest, hashing.size))
    return digest, HEADER_SIZE + hashing.size


def read_header(fh: BinaryIO) -> tuple[str, int]:
    raw = fh.read(HEADER_SIZE)
    if len(raw) < HEADER_SIZE:
        raise BundleCorrupt(f"truncated: {len(raw)} bytes, shorter than its header")
    parts = raw.rstrip(b"\n").split(b" ")
    if len(parts) != 3 or parts[0] != MAGIC or not raw.endswith(b"\n"):
        raise BundleCorrupt("not a sparkwing bundle (bad header)")
    try:
        digest, size = parts[1].decode("ascii"), int(parts[2])
    except (UnicodeDecodeError, ValueError):
        raise BundleCorrupt("not a sparkwing bundle (bad header)") from None
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise BundleCorrupt("not a sparkwing bundle (bad digest in header)")
    return digest, size


def verify(path: Path) -> str:
    """The payload's sha256 when the object is whole and unaltered, else BundleCorrupt."""
    with path.open("rb") as fh:
        digest, size = read_header(fh)
        actual = os.fstat(fh.fileno()).st_size - HEADER_SIZE
        if actual != size:
            raise BundleCorrupt(
                f"truncated: {actual} of {size} bytes"
                if actual < size
                else f"{actual - size} bytes more than recorded"
            )
        sha = hashlib.sha256()
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            sha.update(chunk)
    if sha.hexdigest() != digest:
        raise BundleCorrupt(f"hash mismatch: sha256 {sha.hexdigest()[:12]}, expected {digest[:12]}")
    return digest


def _check_member(info: tarfile.TarInfo) -> None:
    name = info.name
    parts = name.split("/")
    unsafe = (
        not name
        or name.startswith("/")
        or "\\" in name
        or any(p in ("", ".", "..") for p in parts)
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or parts[0] not in TOP_LEVEL
    )
    if unsafe:
        raise BundleCorrupt(f"unsafe path {name!r} in the archive; refusing it")
    if not (info.isreg() or info.isdir()):
        raise BundleCorrupt(f"{name!r} in the archive is a link or device; refusing it")


def unpack(path: Path, dest: Path) -> int:
    """Unpack a verified object into ``dest`` (a new, empty folder); returns the bytes written.

    Every entry is checked first, so a hostile archive writes nothing: no absolute paths, no
    ``..``, no links or devices, nothing outside ``src/``, ``site-packages/``, ``bundle.json``.
    """
    import gzip
    import tarfile
    import zlib

    with path.open("rb") as fh:
        read_header(fh)
        try:
            with tarfile.open(fileobj=_Payload(fh), mode="r:gz") as tar:
                members = tar.getmembers()
                for info in members:
                    _check_member(info)
                tar.extractall(dest, members=members, filter="data")
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise BundleCorrupt(f"unreadable archive: {exc}") from None
    return sum(m.size for m in members if m.isreg())

"""The bundle object: deterministic, verified as a whole before use, unpacked safely."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from sparkwing.bundle.archive import HEADER_SIZE, BundleCorrupt, Member, pack, unpack, verify


def _members(tmp_path: Path) -> list[Member]:
    installed = tmp_path / "lib.py"
    installed.write_text("VALUE = 1\n")
    return [
        Member("src/ci.py", b"import sparkwing\n"),
        Member("src/tools/run.sh", b"#!/bin/sh\necho hi\n", executable=True),
        Member("site-packages/lib.py", installed),
        Member("bundle.json", b"{}"),
    ]


def test_equal_members_give_identical_objects(tmp_path: Path) -> None:
    a, b = tmp_path / "a.swb", tmp_path / "b.swb"
    digest_a, size_a = pack(a, _members(tmp_path))
    digest_b, _ = pack(b, list(reversed(_members(tmp_path))))
    assert a.read_bytes() == b.read_bytes()
    assert digest_a == digest_b == hashlib.sha256(a.read_bytes()[HEADER_SIZE:]).hexdigest()
    assert size_a == a.stat().st_size
    assert verify(a) == digest_a


def test_round_trip_keeps_content_and_modes(tmp_path: Path) -> None:
    obj = tmp_path / "b.swb"
    pack(obj, _members(tmp_path))
    dest = tmp_path / "out"
    dest.mkdir()
    unpack(obj, dest)
    assert (dest / "src" / "ci.py").read_bytes() == b"import sparkwing\n"
    assert (dest / "site-packages" / "lib.py").read_text() == "VALUE = 1\n"
    assert (dest / "src" / "tools" / "run.sh").stat().st_mode & 0o111
    assert not (dest / "src" / "ci.py").stat().st_mode & 0o111


def test_round_trip_of_many_files(tmp_path: Path) -> None:
    """Large enough that unpacking has to seek back through the compressed stream."""
    files = {f"site-packages/pkg/m{i:02d}.bin": os.urandom(40_000) for i in range(40)}
    obj = tmp_path / "big.swb"
    pack(obj, [Member(name, data) for name, data in files.items()])
    verify(obj)
    dest = tmp_path / "out"
    dest.mkdir()
    assert unpack(obj, dest) == sum(len(d) for d in files.values())
    for name, data in files.items():
        assert (dest / name).read_bytes() == data


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + (len(data) - HEADER_SIZE) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_flip, "hash mismatch"),
        (lambda p: p.write_bytes(p.read_bytes()[:-10]), "truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[:50]), "truncated"),
        (lambda p: p.write_bytes(p.read_bytes() + b"x"), "more than recorded"),
        (lambda p: p.write_bytes(b"PK\x03\x04" + p.read_bytes()[4:]), "bad header"),
        (lambda p: p.write_bytes(b""), "truncated"),
    ],
)
def test_damaged_objects_fail_verification(tmp_path: Path, damage: object, reason: str) -> None:
    obj = tmp_path / "b.swb"
    pack(obj, _members(tmp_path))
    damage(obj)  # type: ignore[operator]
    with pytest.raises(BundleCorrupt, match=reason):
        verify(obj)


def _hostile(tmp_path: Path, build: object) -> Path:
    """A bundle object whose (valid, correctly hashed) archive holds what ``build`` adds."""
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        build(tar)  # type: ignore[operator]
    payload = raw.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    obj = tmp_path / "hostile.swb"
    obj.write_bytes(f"SWBUNDLE1 {digest} {len(payload):020d}\n".encode() + payload)
    assert verify(obj) == digest
    return obj


def _file(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.size = 2
    tar.addfile(info, io.BytesIO(b"hi"))


def _link(tar: tarfile.TarFile, name: str, target: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda t: _file(t, "../escape.py"), "unsafe path"),
        (lambda t: _file(t, "src/../../escape.py"), "unsafe path"),
        (lambda t: _file(t, "/etc/evil"), "unsafe path"),
        (lambda t: _file(t, "elsewhere/x.py"), "unsafe path"),
        (lambda t: _link(t, "src/link", "/etc/passwd", tarfile.SYMTYPE), "link"),
        (lambda t: _link(t, "src/hard", "/etc/passwd", tarfile.LNKTYPE), "link"),
    ],
)
def test_unpack_refuses_hostile_archives_and_writes_nothing(
    tmp_path: Path, build: object, reason: str
) -> None:
    def everything(tar: tarfile.TarFile) -> None:
        _file(tar, "src/ok.py")
        build(tar)  # type: ignore[operator]

    obj = _hostile(tmp_path, everything)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(BundleCorrupt, match=reason):
        unpack(obj, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "escape.py").exists()

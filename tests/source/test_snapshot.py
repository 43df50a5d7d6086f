"""Snapshots: deterministic, content-addressed archives of a tree, stored once on a real
filesystem cache, and unpacked only when no member could escape the workspace."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from sparkwing.source import snapshot
from sparkwing.source.mirror import SourceError
from sparkwing.surfaces.cache.filesystem import FilesystemCache


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a\n")
    (root / "sub" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "sub" / "run.sh").chmod(0o755)
    os.symlink("sub/run.sh", root / "link")
    return root


def test_equal_trees_give_byte_identical_archives(tmp_path: Path) -> None:
    one, two = _tree(tmp_path / "one"), _tree(tmp_path / "two")
    os.utime(two / "a.txt", (1, 1))  # times and owners are not part of the content
    first = snapshot.pack(one, snapshot.tree_files(one), tmp_path / "1.tar.gz")
    second = snapshot.pack(two, snapshot.tree_files(two), tmp_path / "2.tar.gz")
    assert first.sha256 == second.sha256 and first.files == 3
    assert first.key == f"src/{first.sha256}"
    (two / "a.txt").write_text("changed\n")
    third = snapshot.pack(two, snapshot.tree_files(two), tmp_path / "3.tar.gz")
    assert third.sha256 != first.sha256


def test_a_checkout_sends_tracked_and_untracked_files_but_not_ignored_ones(
    tmp_path: Path,
) -> None:
    root = _tree(tmp_path / "repo")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("*.log\nbuild/\n")
    (root / "x.log").write_text("noise")
    (root / "build").mkdir()
    (root / "build" / "out").write_text("noise")
    subprocess.run(["git", "-C", str(root), "add", "a.txt"], check=True)
    assert snapshot.tree_files(root) == [".gitignore", "a.txt", "link", "sub/run.sh"]
    (root / "a.txt").unlink()  # tracked, deleted from the tree: not part of it
    assert "a.txt" not in snapshot.tree_files(root)


def test_upload_once_and_round_trip_through_the_cache(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    packed = snapshot.pack(root, snapshot.tree_files(root), tmp_path / "s.tar.gz")
    cache = FilesystemCache(tmp_path / "cache")
    assert snapshot.upload(cache, packed) is True
    assert snapshot.upload(cache, packed) is False
    got = tmp_path / "got.tar.gz"
    snapshot.download(cache, packed.key, packed.sha256, got)
    dest = tmp_path / "dest"
    assert snapshot.unpack(got, dest) == 3
    assert (dest / "a.txt").read_text() == "a\n"
    assert os.access(dest / "sub" / "run.sh", os.X_OK)
    assert os.readlink(dest / "link") == "sub/run.sh"


def test_a_damaged_or_missing_snapshot_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    packed = snapshot.pack(root, snapshot.tree_files(root), tmp_path / "s.tar.gz")
    cache = FilesystemCache(tmp_path / "cache")
    with pytest.raises(SourceError, match="is not in the cache"):
        snapshot.download(cache, packed.key, packed.sha256, tmp_path / "x")
    cache.put(packed.key, b"not it")
    with pytest.raises(SourceError, match="is damaged"):
        snapshot.download(cache, packed.key, packed.sha256, tmp_path / "x")
    with pytest.raises(SourceError, match="does not name its content"):
        snapshot.download(cache, "src/" + "0" * 64, packed.sha256, tmp_path / "x")


def _archive(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            data = b"x" if info.isreg() else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([_member("../escape")], "unsafe path"),
        ([_member("/etc/passwd")], "unsafe path"),
        ([_member("a/./b")], "unsafe path"),
        ([_member("a\nb")], "unsafe path"),
        ([_member("up", tarfile.SYMTYPE, "../../etc")], "points outside"),
        ([_member("abs", tarfile.SYMTYPE, "/etc")], "points outside"),
        # Lexically inside, but "dot" is the tree itself: dot/.. is the folder above it.
        (
            [_member("dot", tarfile.SYMTYPE, "."), _member("via", tarfile.SYMTYPE, "dot/../x")],
            "through another symlink",
        ),
        ([_member("d", tarfile.SYMTYPE, "sub"), _member("d/file")], "behind a symlink"),
        ([_member("hard", tarfile.LNKTYPE, "a")], "hard link or device"),
        ([_member("dev", tarfile.CHRTYPE)], "hard link or device"),
        ([_member("twice"), _member("twice")], "appears twice"),
    ],
)
def test_a_hostile_archive_writes_nothing(
    tmp_path: Path, members: list[tarfile.TarInfo], why: str
) -> None:
    archive = _archive(tmp_path / "bad.tar.gz", *members)
    dest = tmp_path / "dest"
    with pytest.raises(SourceError, match=why):
        snapshot.unpack(archive, dest)
    assert not dest.exists()


def test_a_chain_of_links_inside_the_tree_is_fine(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "ok.tar.gz",
        _member("v2/file"),
        _member("latest", tarfile.SYMTYPE, "v2"),
        _member("current", tarfile.SYMTYPE, "latest"),
        _member("v2/up", tarfile.SYMTYPE, "../latest"),
    )
    dest = tmp_path / "dest"
    assert snapshot.unpack(archive, dest) == 4
    assert (dest / "current" / "file").read_bytes() == b"x"
    assert (dest / "v2" / "up" / "file").read_bytes() == b"x"


def test_an_unreadable_archive_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(SourceError, match="is unreadable"):
        snapshot.unpack(bad, tmp_path / "dest")

"""Runs the cache conformance suite against FilesystemCache, plus filesystem-only guarantees."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sparkwing.errors import InvalidKeyError
from sparkwing.surfaces.cache.base import BLOB_PREFIX, Cache
from sparkwing.surfaces.cache.content import store_blob_bytes
from sparkwing.surfaces.cache.filesystem import FilesystemCache
from sparkwing.surfaces.open import open_cache
from sparkwing.surfaces.spec import SurfaceSpec

from .cache_suite import CacheConformance


class TestFilesystemCache(CacheConformance):
    @pytest.fixture
    def cache(self, tmp_path: Path) -> Cache:
        return FilesystemCache(tmp_path / "cache")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_open_cache_builds_filesystem_cache(root: Path) -> None:
    cache = open_cache(SurfaceSpec(type="filesystem", path=str(root)))
    assert isinstance(cache, FilesystemCache)
    cache.put("memo/x", b"1")
    assert (root / "memo" / "x").read_bytes() == b"1"


def test_blobs_are_sharded_on_disk(root: Path) -> None:
    cache = FilesystemCache(root)
    digest = store_blob_bytes(cache, b"sharded")
    assert (root / "artifacts" / "blobs" / digest[:2] / digest).read_bytes() == b"sharded"
    assert [i.key for i in cache.list("artifacts/")] == [BLOB_PREFIX + digest]


def test_nested_keys_under_sharded_prefixes(root: Path) -> None:
    cache = FilesystemCache(root)
    keys = ["artifacts/blobs/ab/cd", "artifacts/blobs/abc", "artifacts/blobs/a", "artifacts/m"]
    for key in keys:
        cache.put(key, key.encode())
    for key in keys:
        assert cache.get(key) == key.encode()
    assert [i.key for i in cache.list("artifacts/")] == sorted(keys)
    assert [i.key for i in cache.list("artifacts/blobs/ab")] == [
        "artifacts/blobs/ab/cd",
        "artifacts/blobs/abc",
    ]
    assert [i.key for i in cache.list("artifacts/blobs/ab/")] == ["artifacts/blobs/ab/cd"]
    assert [i.key for i in cache.list("artifacts/blobs/a")] == sorted(keys[:3])
    assert (root / "artifacts" / "blobs" / "ab" / "ab" / "cd").exists()


def test_nested_logs_folder_is_never_listed_or_deleted(root: Path) -> None:
    # The seed's laptop layout: logs under ~/.cache/sparkwing/logs, cache at ~/.cache/sparkwing.
    logs = root / "logs" / "run-1"
    logs.mkdir(parents=True)
    (logs / "build.ndjson").write_text('{"ts":"t","msg":"m"}\n')
    (root / "unrelated.txt").write_text("keep me")
    (root / "memox").mkdir()
    (root / "memox" / "file").write_text("not a cache prefix")
    cache = FilesystemCache(root)
    cache.put("memo/a", b"1")
    cache.put("bin/b", b"2")

    listed = [info.key for info in cache.list("")]
    assert listed == ["bin/b", "memo/a"]
    for info in cache.list(""):
        cache.delete(info.key)
    assert [info.key for info in cache.list("")] == []
    assert (logs / "build.ndjson").read_text() == '{"ts":"t","msg":"m"}\n'
    assert (root / "unrelated.txt").read_text() == "keep me"
    assert (root / "memox" / "file").exists()
    for key in ("logs/run-1/build.ndjson", "unrelated.txt", "memox/file"):
        with pytest.raises(InvalidKeyError):
            cache.get(key)
        with pytest.raises(InvalidKeyError):
            cache.delete(key)
    with pytest.raises(InvalidKeyError):
        list(cache.list("logs/"))


def test_leftover_temp_and_lock_files_are_invisible(root: Path) -> None:
    cache = FilesystemCache(root)
    cache.put("memo/real", b"1")
    cache.put_if_absent("memo/doc", b"d")  # leaves a lock file beside the object
    # What a crash between creating the temp file and renaming it leaves behind.
    (root / "memo" / ".sparkwing-tmp-0123456789abcdef").write_bytes(b"partial")
    digest = store_blob_bytes(cache, b"blob")
    shard = root / "artifacts" / "blobs" / digest[:2]
    (shard / ".sparkwing-tmp-feedfacefeedface").write_bytes(b"partial blob")

    assert [i.key for i in cache.list("")] == [BLOB_PREFIX + digest, "memo/doc", "memo/real"]
    assert any(n.startswith(".sparkwing-lock-") for n in os.listdir(root / "memo"))
    with pytest.raises(InvalidKeyError):
        cache.get("memo/.sparkwing-tmp-0123456789abcdef")


def test_stray_files_in_shard_area_are_ignored(root: Path) -> None:
    cache = FilesystemCache(root)
    digest = store_blob_bytes(cache, b"x")
    (root / "artifacts" / "blobs" / "README").write_text("not an object")
    (root / "artifacts" / "blobs" / "zz").mkdir()
    (root / "artifacts" / "blobs" / "zz" / "abc").write_text("wrong shard")
    assert [i.key for i in cache.list("artifacts/")] == [BLOB_PREFIX + digest]


def test_symlinks_are_not_followed_when_listing(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("outside")
    (root / "memo").mkdir(parents=True)
    (root / "memo" / "link").symlink_to(outside, target_is_directory=True)
    assert [i.key for i in FilesystemCache(root).list("")] == []


def test_reserved_keys_rejected(root: Path) -> None:
    cache = FilesystemCache(root)
    for key in ("artifacts/blobs", "artifacts/manifests", "memo/.sparkwing-lock-x"):
        with pytest.raises(InvalidKeyError):
            cache.put(key, b"x")


def test_missing_root_reads_as_empty(root: Path) -> None:
    cache = FilesystemCache(root)
    assert list(cache.list("")) == []
    assert cache.get("memo/x") is None
    assert not root.exists()  # reading never creates the root


def test_failed_put_file_keeps_old_object_and_leaves_no_temp(root: Path, tmp_path: Path) -> None:
    cache = FilesystemCache(root)
    cache.put("bin/keep", b"old")
    missing = tmp_path / "does-not-exist"
    with pytest.raises(FileNotFoundError):
        cache.put_file("bin/keep", missing)
    assert cache.get("bin/keep") == b"old"
    assert os.listdir(root / "bin") == ["keep"]


def test_fsync_mode_writes(root: Path) -> None:
    cache = FilesystemCache(root, fsync=True)
    cache.put("memo/durable", b"yes")
    assert cache.get("memo/durable") == b"yes"


def test_adopt_file_moves_the_file_in_place(root: Path, tmp_path: Path) -> None:
    cache = FilesystemCache(root)
    src = tmp_path / "upload"
    src.write_bytes(b"moved, not copied")
    inode = src.stat().st_ino
    cache.adopt_file("artifacts/blobs/abcdef", src)
    local = cache.local_path("artifacts/blobs/abcdef")
    assert local == root / "artifacts" / "blobs" / "ab" / "abcdef"
    assert local.stat().st_ino == inode and not src.exists()
    assert cache.get("artifacts/blobs/abcdef") == b"moved, not copied"


def test_adopt_file_copies_what_it_must_not_move(root: Path, tmp_path: Path) -> None:
    cache = FilesystemCache(root)
    target = tmp_path / "target"
    target.write_bytes(b"through a link")
    link = tmp_path / "link"
    link.symlink_to(target)
    cache.adopt_file("bin/from-symlink", link)
    stored = root / "bin" / "from-symlink"
    assert not stored.is_symlink() and stored.read_bytes() == b"through a link"
    assert not link.exists() and target.read_bytes() == b"through a link"

    other = tmp_path / "other-name"
    os.link(target, other)  # a second name could change a moved-in object later
    cache.adopt_file("bin/from-hardlink", target)
    stored = root / "bin" / "from-hardlink"
    assert stored.stat().st_ino != other.stat().st_ino
    other.write_bytes(b"changed later")
    assert cache.get("bin/from-hardlink") == b"through a link"

    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(OSError):
        cache.adopt_file("bin/from-folder", folder)  # never becomes an object
    assert not cache.has("bin/from-folder") and folder.is_dir()


def test_adopt_file_from_another_filesystem_copies(root: Path) -> None:
    shm = Path("/dev/shm")
    root.mkdir(parents=True)
    if not shm.is_dir() or not os.access(shm, os.W_OK) or shm.stat().st_dev == root.stat().st_dev:
        pytest.skip("needs a writable /dev/shm on another filesystem")
    src = shm / f"sparkwing-adopt-{os.getpid()}"
    src.write_bytes(b"across filesystems")
    try:
        FilesystemCache(root, fsync=True).adopt_file("memo/across", src)
    finally:
        leftover = src.exists()
        src.unlink(missing_ok=True)
    assert not leftover
    assert (root / "memo" / "across").read_bytes() == b"across filesystems"
    assert os.listdir(root / "memo") == ["across"]  # no temp file left


def test_adopt_file_with_fsync(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "durable"
    src.write_bytes(b"synced")
    FilesystemCache(root, fsync=True).adopt_file("memo/durable", src)
    assert (root / "memo" / "durable").read_bytes() == b"synced" and not src.exists()


def test_local_path_validates_the_key(root: Path) -> None:
    cache = FilesystemCache(root)
    for key in ("memo/../x", "logs/a", "memo/.sparkwing-tmp-x"):
        with pytest.raises(InvalidKeyError):
            cache.local_path(key)
    assert cache.local_path("memo/absent") == root / "memo" / "absent"


_CAS_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sparkwing.errors import PreconditionFailedError
    from sparkwing.surfaces.cache.filesystem import FilesystemCache

    cache = FilesystemCache(Path(sys.argv[1]))
    done = 0
    while done < int(sys.argv[2]):
        got = cache.get_with_etag("memo/counter")
        try:
            cache.put_if_match("memo/counter", str(int(got[0]) + 1).encode(), got[1])
            done += 1
        except PreconditionFailedError:
            pass
    """
)


def test_cas_across_processes_loses_no_update(root: Path) -> None:
    cache = FilesystemCache(root)
    cache.put_if_absent("memo/counter", b"0")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _CAS_WORKER, str(root), "40"], env=env)
        for _ in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert cache.get("memo/counter") == b"120"

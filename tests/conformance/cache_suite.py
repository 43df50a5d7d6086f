"""The Cache conformance suite: every cache backend subclasses CacheConformance unchanged.

A subclass provides a ``cache`` fixture (a fresh, empty cache). Conditional-write tests run
only where ``conditional_writes`` is True. Everything goes through the public
interface and the content-addressed helpers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import pytest

from sparkwing.errors import InvalidKeyError, PreconditionFailedError, StorageError
from sparkwing.surfaces.cache.base import BLOB_PREFIX, MANIFEST_PREFIX, Cache
from sparkwing.surfaces.cache.content import (
    ManifestEntry,
    collect_outputs,
    fetch_blob_bytes,
    fetch_blob_file,
    load_manifest,
    restore_manifest,
    store_blob_bytes,
    store_blob_file,
    store_manifest,
    upload_outputs,
)

BAD_KEYS = [
    "",
    "/memo/x",
    "memo/../bin/x",
    "memo/..",
    "memo/./x",
    "memo//x",
    "memo/x/",
    "memo/a\\b",
    "memo/a\x00b",
    "memo/a\nb",
    "memo/a\x7fb",
    "logs/run/node",  # outside the cache prefixes
    "other",
    "memox/y",
]

BIG = os.urandom(5 * 1024 * 1024 + 17)


def _keys(cache: Cache, prefix: str) -> list[str]:
    return [info.key for info in cache.list(prefix)]


class CacheConformance:
    # -- basic get / put ---------------------------------------------------------------
    def test_missing_key_reads_as_absent(self, cache: Cache, tmp_path: Path) -> None:
        assert cache.get("memo/nothing") is None
        assert not cache.has("memo/nothing")
        assert cache.stat("memo/nothing") is None
        assert cache.get_file("memo/nothing", tmp_path / "out") is False
        assert not (tmp_path / "out").exists()
        assert cache.delete("memo/nothing") is False

    def test_put_get_roundtrip(self, cache: Cache) -> None:
        cache.put("memo/a", b"hello")
        assert cache.get("memo/a") == b"hello"
        assert cache.has("memo/a")

    @pytest.mark.parametrize(
        "data",
        [b"", b"\x00", bytes(range(256)) * 4, "héllo ✓".encode(), b"\n\r\n"],
        ids=["empty", "nul", "all-bytes", "utf8", "newlines"],
    )
    def test_binary_data_roundtrip(self, cache: Cache, data: bytes) -> None:
        cache.put("bin/blob", data)
        assert cache.get("bin/blob") == data
        info = cache.stat("bin/blob")
        assert info is not None and info.size == len(data)

    def test_large_object_roundtrip(self, cache: Cache, tmp_path: Path) -> None:
        cache.put("artifacts/big", BIG)
        assert cache.get("artifacts/big") == BIG
        dest = tmp_path / "deep" / "big.bin"
        assert cache.get_file("artifacts/big", dest) is True
        assert dest.read_bytes() == BIG

    def test_put_file_get_file(self, cache: Cache, tmp_path: Path) -> None:
        src = tmp_path / "src.bin"
        src.write_bytes(BIG)
        cache.put_file("bin/bundle-1", src)
        assert cache.get("bin/bundle-1") == BIG
        dest = tmp_path / "dest.bin"
        dest.write_bytes(b"old content")
        assert cache.get_file("bin/bundle-1", dest) is True
        assert dest.read_bytes() == BIG

    def test_adopt_file_takes_the_file(self, cache: Cache, tmp_path: Path) -> None:
        src = tmp_path / "adopt.bin"
        src.write_bytes(BIG)
        cache.adopt_file("bin/adopted", src)
        assert not src.exists()  # consumed, whether moved or copied
        assert cache.get("bin/adopted") == BIG
        src.write_bytes(b"second")
        cache.adopt_file("bin/adopted", src)  # replaces, like put_file
        assert cache.get("bin/adopted") == b"second"
        info = cache.stat("bin/adopted")
        assert info is not None and info.size == len(b"second")
        assert _keys(cache, "bin/") == ["bin/adopted"]

    def test_local_path_is_the_object_or_none(self, cache: Cache) -> None:
        cache.put("memo/local", b"in place")
        local = cache.local_path("memo/local")
        assert local is None or local.read_bytes() == b"in place"

    def test_put_file_empty(self, cache: Cache, tmp_path: Path) -> None:
        src = tmp_path / "empty"
        src.write_bytes(b"")
        cache.put_file("memo/empty", src)
        assert cache.get("memo/empty") == b""
        assert cache.has("memo/empty")

    def test_overwrite(self, cache: Cache) -> None:
        cache.put("memo/k", b"first version, longer")
        cache.put("memo/k", b"second")
        assert cache.get("memo/k") == b"second"
        info = cache.stat("memo/k")
        assert info is not None and info.size == len(b"second")
        assert _keys(cache, "memo/") == ["memo/k"]

    def test_stat(self, cache: Cache) -> None:
        cache.put("artifacts/x/y", b"12345")
        info = cache.stat("artifacts/x/y")
        assert info is not None
        assert info.key == "artifacts/x/y"
        assert info.size == 5
        assert info.modified > 0

    def test_delete(self, cache: Cache) -> None:
        cache.put("memo/d", b"x")
        cache.put("memo/keep", b"y")
        assert cache.delete("memo/d") is True
        assert cache.get("memo/d") is None
        assert not cache.has("memo/d")
        assert cache.delete("memo/d") is False
        assert cache.get("memo/keep") == b"y"

    # -- listing -----------------------------------------------------------------------
    def test_list_by_prefix(self, cache: Cache) -> None:
        keys = ["memo/a/1", "memo/a/2", "memo/ab", "memo/b/1", "bin/k1", "artifacts/z"]
        for key in keys:
            cache.put(key, key.encode())
        assert sorted(_keys(cache, "memo/a/")) == ["memo/a/1", "memo/a/2"]
        assert sorted(_keys(cache, "memo/a")) == ["memo/a/1", "memo/a/2", "memo/ab"]
        assert sorted(_keys(cache, "memo/")) == ["memo/a/1", "memo/a/2", "memo/ab", "memo/b/1"]
        assert sorted(_keys(cache, "bin/")) == ["bin/k1"]
        assert sorted(_keys(cache, "")) == sorted(keys)
        assert _keys(cache, "memo/zzz") == []

    def test_list_reports_sizes(self, cache: Cache) -> None:
        cache.put("memo/s/one", b"1")
        cache.put("memo/s/three", b"333")
        sizes = {info.key: info.size for info in cache.list("memo/s/")}
        assert sizes == {"memo/s/one": 1, "memo/s/three": 3}

    def test_list_empty_cache(self, cache: Cache) -> None:
        assert _keys(cache, "") == []
        assert _keys(cache, "artifacts/blobs/") == []

    def test_list_after_delete(self, cache: Cache) -> None:
        cache.put("memo/l/1", b"1")
        cache.put("memo/l/2", b"2")
        cache.delete("memo/l/1")
        assert _keys(cache, "memo/l/") == ["memo/l/2"]

    def test_blob_keys_list_as_logical_keys(self, cache: Cache) -> None:
        digests = sorted(store_blob_bytes(cache, f"blob {i}".encode()) for i in range(5))
        assert sorted(_keys(cache, BLOB_PREFIX)) == [BLOB_PREFIX + d for d in digests]
        one = digests[0]
        assert _keys(cache, BLOB_PREFIX + one) == [BLOB_PREFIX + one]
        assert _keys(cache, BLOB_PREFIX + one[:1]) == [
            BLOB_PREFIX + d for d in digests if d.startswith(one[:1])
        ]
        assert _keys(cache, BLOB_PREFIX + one[:3]) == [
            BLOB_PREFIX + d for d in digests if d.startswith(one[:3])
        ]
        assert sorted(_keys(cache, "artifacts/")) == [BLOB_PREFIX + d for d in digests]
        stat = cache.stat(BLOB_PREFIX + one)
        assert stat is not None and stat.key == BLOB_PREFIX + one

    # -- invalid keys --------------------------------------------------------------------
    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_invalid_keys_rejected(self, cache: Cache, key: str, tmp_path: Path) -> None:
        src = tmp_path / "f"
        src.write_bytes(b"x")
        with pytest.raises(InvalidKeyError):
            cache.put(key, b"x")
        with pytest.raises(InvalidKeyError):
            cache.get(key)
        with pytest.raises(InvalidKeyError):
            cache.has(key)
        with pytest.raises(InvalidKeyError):
            cache.stat(key)
        with pytest.raises(InvalidKeyError):
            cache.delete(key)
        with pytest.raises(InvalidKeyError):
            cache.put_file(key, src)
        with pytest.raises(InvalidKeyError):
            cache.get_file(key, tmp_path / "out")
        with pytest.raises(InvalidKeyError):
            cache.adopt_file(key, src)
        assert src.read_bytes() == b"x"  # a refused key leaves the file alone

    @pytest.mark.parametrize("prefix", ["logs/", "../", "/", "memo/../x", "zzz"])
    def test_invalid_list_prefix_rejected(self, cache: Cache, prefix: str) -> None:
        with pytest.raises(InvalidKeyError):
            list(cache.list(prefix))

    # -- conditional writes ------------------------------------------------------------
    def _need_cas(self, cache: Cache) -> None:
        if not cache.conditional_writes:
            pytest.skip(f"{cache.describe()} does not enforce conditional writes")

    def test_put_if_absent(self, cache: Cache) -> None:
        self._need_cas(cache)
        etag = cache.put_if_absent("memo/lock", b"mine")
        assert isinstance(etag, str) and etag
        with pytest.raises(PreconditionFailedError):
            cache.put_if_absent("memo/lock", b"theirs")
        assert cache.get("memo/lock") == b"mine"

    def test_get_with_etag_and_put_if_match(self, cache: Cache) -> None:
        self._need_cas(cache)
        assert cache.get_with_etag("memo/doc") is None
        first = cache.put_if_absent("memo/doc", b"v1")
        got = cache.get_with_etag("memo/doc")
        assert got is not None
        assert got[0] == b"v1"
        assert got[1] == first
        second = cache.put_if_match("memo/doc", b"v2", got[1])
        assert second != first
        assert cache.get("memo/doc") == b"v2"
        with pytest.raises(PreconditionFailedError):
            cache.put_if_match("memo/doc", b"v3", first)  # stale etag
        assert cache.get("memo/doc") == b"v2"
        third = cache.put_if_match("memo/doc", b"v3", second)
        got = cache.get_with_etag("memo/doc")
        assert got == (b"v3", third)

    def test_put_if_match_on_missing_key_fails(self, cache: Cache) -> None:
        self._need_cas(cache)
        with pytest.raises(PreconditionFailedError):
            cache.put_if_match("memo/ghost", b"x", "some-etag")
        assert cache.get("memo/ghost") is None

    def test_put_if_match_after_unconditional_put_fails(self, cache: Cache) -> None:
        self._need_cas(cache)
        etag = cache.put_if_absent("memo/p", b"one")
        cache.put("memo/p", b"changed behind our back")
        with pytest.raises(PreconditionFailedError):
            cache.put_if_match("memo/p", b"two", etag)
        assert cache.get("memo/p") == b"changed behind our back"

    def test_put_if_absent_after_delete_succeeds(self, cache: Cache) -> None:
        self._need_cas(cache)
        cache.put_if_absent("memo/r", b"1")
        assert cache.delete("memo/r")
        cache.put_if_absent("memo/r", b"2")
        assert cache.get("memo/r") == b"2"

    def test_put_if_absent_race_has_one_winner(self, cache: Cache) -> None:
        self._need_cas(cache)
        barrier = threading.Barrier(8)
        winners: list[int] = []
        losers: list[int] = []
        errors: list[BaseException] = []

        def contend(i: int) -> None:
            barrier.wait()
            try:
                cache.put_if_absent("memo/race", f"runner {i}".encode())
                winners.append(i)
            except PreconditionFailedError:
                losers.append(i)
            except BaseException as exc:  # surfaced below, with the thread's error
                errors.append(exc)

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(winners) == 1
        assert len(losers) == 7
        assert cache.get("memo/race") == f"runner {winners[0]}".encode()

    def test_cas_increments_from_threads_lose_nothing(self, cache: Cache) -> None:
        self._need_cas(cache)
        cache.put_if_absent("memo/counter", b"0")

        def bump(times: int) -> None:
            done = 0
            while done < times:
                got = cache.get_with_etag("memo/counter")
                assert got is not None
                try:
                    cache.put_if_match("memo/counter", str(int(got[0]) + 1).encode(), got[1])
                    done += 1
                except PreconditionFailedError:
                    continue

        threads = [threading.Thread(target=bump, args=(15,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert cache.get("memo/counter") == b"60"

    # -- content-addressed helpers -------------------------------------------------------
    def test_blob_bytes_roundtrip(self, cache: Cache) -> None:
        data = b"some artifact bytes"
        digest = store_blob_bytes(cache, data)
        assert digest == hashlib.sha256(data).hexdigest()
        assert cache.has(BLOB_PREFIX + digest)
        assert fetch_blob_bytes(cache, digest) == data
        assert store_blob_bytes(cache, data) == digest  # idempotent

    def test_blob_file_roundtrip(self, cache: Cache, tmp_path: Path) -> None:
        src = tmp_path / "in.bin"
        src.write_bytes(BIG)
        digest = store_blob_file(cache, src)
        assert digest == hashlib.sha256(BIG).hexdigest()
        dest = tmp_path / "out" / "restored.bin"
        assert fetch_blob_file(cache, digest, dest) is True
        assert dest.read_bytes() == BIG

    def test_missing_blob_is_a_miss(self, cache: Cache, tmp_path: Path) -> None:
        digest = hashlib.sha256(b"never stored").hexdigest()
        assert fetch_blob_bytes(cache, digest) is None
        dest = tmp_path / "ws" / "never"
        assert fetch_blob_file(cache, digest, dest) is False
        assert not dest.exists()
        assert os.listdir(dest.parent) == []

    def test_store_blob_skips_existing(self, cache: Cache, tmp_path: Path) -> None:
        digest = store_blob_bytes(cache, b"payload")
        # Overwrite with other bytes: a second store must not re-upload, so the bad
        # bytes stay and are then caught by verification.
        cache.put(BLOB_PREFIX + digest, b"tampered")
        src = tmp_path / "p"
        src.write_bytes(b"payload")
        assert store_blob_file(cache, src) == digest
        assert cache.get(BLOB_PREFIX + digest) == b"tampered"

    def test_corrupt_blob_is_a_miss_with_warning(
        self, cache: Cache, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        digest = store_blob_bytes(cache, b"good bytes")
        cache.put(BLOB_PREFIX + digest, b"evil bytes")
        with caplog.at_level(logging.WARNING):
            assert fetch_blob_bytes(cache, digest) is None
        assert f"cache blob {digest} failed verification (hash mismatch)" in caplog.text
        caplog.clear()
        dest = tmp_path / "ws" / "target.bin"
        dest.parent.mkdir()
        dest.write_bytes(b"previous")
        with caplog.at_level(logging.WARNING):
            assert fetch_blob_file(cache, digest, dest) is False
        assert f"cache blob {digest} failed verification" in caplog.text
        assert dest.read_bytes() == b"previous"  # never replaced by bad bytes
        assert os.listdir(dest.parent) == ["target.bin"]  # no temp file left behind

    def test_corrupt_blob_never_creates_dest(self, cache: Cache, tmp_path: Path) -> None:
        digest = store_blob_bytes(cache, b"good")
        cache.put(BLOB_PREFIX + digest, b"bad")
        dest = tmp_path / "ws" / "new.bin"
        assert fetch_blob_file(cache, digest, dest) is False
        assert not dest.exists()
        assert os.listdir(dest.parent) == []

    @pytest.mark.parametrize("digest", ["abc", "../x", "A" * 64, "g" * 64])
    def test_bad_digest_rejected(self, cache: Cache, digest: str, tmp_path: Path) -> None:
        with pytest.raises(InvalidKeyError):
            fetch_blob_bytes(cache, digest)
        with pytest.raises(InvalidKeyError):
            fetch_blob_file(cache, digest, tmp_path / "x")

    def test_manifest_roundtrip(self, cache: Cache) -> None:
        entries = [
            ManifestEntry(path="dist/b.txt", digest="b" * 64, size=2, mode=0o644),
            ManifestEntry(path="dist/a.txt", digest="a" * 64, size=1, mode=0o755),
        ]
        digest = store_manifest(cache, entries)
        assert cache.has(MANIFEST_PREFIX + digest)
        assert hashlib.sha256(cache.get(MANIFEST_PREFIX + digest) or b"").hexdigest() == digest
        loaded = load_manifest(cache, digest)
        assert loaded == sorted(entries, key=lambda e: e.path)
        # Canonical: the same entries in another order give the same digest.
        assert store_manifest(cache, list(reversed(entries))) == digest

    def test_corrupt_manifest_is_a_miss(
        self, cache: Cache, caplog: pytest.LogCaptureFixture
    ) -> None:
        digest = store_manifest(cache, [ManifestEntry("a", "a" * 64, 1, 0o644)])
        cache.put(MANIFEST_PREFIX + digest, b'{"version":1,"entries":[]}')
        with caplog.at_level(logging.WARNING):
            assert load_manifest(cache, digest) is None
        assert "failed verification" in caplog.text
        assert load_manifest(cache, hashlib.sha256(b"absent").hexdigest()) is None

    def test_upload_and_restore_outputs(self, cache: Cache, tmp_path: Path) -> None:
        src = tmp_path / "ws"
        files = {
            "dist/app.whl": os.urandom(3000),
            "dist/sub/deep/data.bin": b"deep",
            "dist/sub/empty.txt": b"",
            "dist/run.sh": b"#!/bin/sh\necho hi\n",
            "dist/.hidden": b"dot",
            "build/other.o": b"not matched",
        }
        for rel, data in files.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(data)
        os.chmod(src / "dist/run.sh", 0o755)
        os.chmod(src / "dist/sub/deep/data.bin", 0o600)

        digest = upload_outputs(cache, src, ["dist/**"])
        assert digest is not None
        manifest = load_manifest(cache, digest)
        assert manifest is not None
        assert [e.path for e in manifest] == sorted(r for r in files if r.startswith("dist/"))

        dest = tmp_path / "restored"
        assert restore_manifest(cache, digest, dest) == 5
        for rel, data in files.items():
            if rel.startswith("dist/"):
                assert (dest / rel).read_bytes() == data
        assert not (dest / "build").exists()
        assert (dest / "dist/run.sh").stat().st_mode & 0o777 == 0o755
        assert (dest / "dist/sub/deep/data.bin").stat().st_mode & 0o777 == 0o600

    def test_restore_twice_over_read_only_files(self, cache: Cache, tmp_path: Path) -> None:
        src = tmp_path / "ws"
        (src / "out").mkdir(parents=True)
        (src / "out" / "ro.txt").write_text("read only")
        os.chmod(src / "out" / "ro.txt", 0o444)
        digest = upload_outputs(cache, src, ["out/*"])
        assert digest is not None
        dest = tmp_path / "restored"
        assert restore_manifest(cache, digest, dest) == 1
        assert restore_manifest(cache, digest, dest) == 1
        assert (dest / "out" / "ro.txt").read_text() == "read only"
        assert (dest / "out" / "ro.txt").stat().st_mode & 0o777 == 0o444
        assert os.listdir(dest / "out") == ["ro.txt"]

    def test_upload_outputs_nothing_matched(self, cache: Cache, tmp_path: Path) -> None:
        (tmp_path / "a.txt").write_text("x")
        assert upload_outputs(cache, tmp_path, ["dist/**", "*.whl"]) is None
        assert _keys(cache, "artifacts/") == []

    def test_upload_outputs_is_content_addressed(self, cache: Cache, tmp_path: Path) -> None:
        for ws in ("one", "two"):
            (tmp_path / ws / "out").mkdir(parents=True)
            (tmp_path / ws / "out" / "f.txt").write_text("same")
        first = upload_outputs(cache, tmp_path / "one", ["out/*.txt"])
        second = upload_outputs(cache, tmp_path / "two", ["out/*.txt"])
        assert first is not None and first == second
        assert len(_keys(cache, BLOB_PREFIX)) == 1

    def test_restore_missing_manifest_raises(self, cache: Cache, tmp_path: Path) -> None:
        with pytest.raises(StorageError, match="missing or corrupt"):
            restore_manifest(cache, hashlib.sha256(b"nope").hexdigest(), tmp_path)

    def test_restore_with_corrupt_blob_raises(self, cache: Cache, tmp_path: Path) -> None:
        (tmp_path / "ws").mkdir()
        (tmp_path / "ws" / "f.txt").write_text("content")
        digest = upload_outputs(cache, tmp_path / "ws", ["*.txt"])
        assert digest is not None
        blob = hashlib.sha256(b"content").hexdigest()
        cache.put(BLOB_PREFIX + blob, b"corrupted")
        with pytest.raises(StorageError, match=blob):
            restore_manifest(cache, digest, tmp_path / "out")
        assert not (tmp_path / "out" / "f.txt").exists()

    def test_restore_with_missing_blob_raises(self, cache: Cache, tmp_path: Path) -> None:
        digest = store_manifest(cache, [ManifestEntry("f.txt", "c" * 64, 1, 0o644)])
        with pytest.raises(StorageError, match="missing or corrupt"):
            restore_manifest(cache, digest, tmp_path / "out")

    @pytest.mark.parametrize("bad", ["/etc/passwd", "../escape", "a/../../b", "a//b", "", "./a"])
    def test_restore_rejects_unsafe_paths(self, cache: Cache, tmp_path: Path, bad: str) -> None:
        good = store_blob_bytes(cache, b"ok")
        digest = store_manifest(
            cache,
            [ManifestEntry("fine.txt", good, 2, 0o644), ManifestEntry(bad, good, 2, 0o644)],
        )
        with pytest.raises(StorageError, match="unsafe path"):
            restore_manifest(cache, digest, tmp_path / "out")
        assert not (tmp_path / "out" / "fine.txt").exists()  # nothing written at all
        assert not (tmp_path / "escape").exists()

    def test_collect_outputs(self, tmp_path: Path) -> None:
        for name in ["dist/a.txt", "dist/x/b.txt", "dist/x/c.log", "top.txt", "other/d.txt"]:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(name)

        def rel(globs: list[str]) -> list[str]:
            return [p.relative_to(tmp_path).as_posix() for p in collect_outputs(tmp_path, globs)]

        assert rel(["dist/**"]) == ["dist/a.txt", "dist/x/b.txt", "dist/x/c.log"]
        assert rel(["**/*.txt", "dist/**/*.txt"]) == [
            "dist/a.txt",
            "dist/x/b.txt",
            "other/d.txt",
            "top.txt",
        ]
        assert rel(["dist/x/*.log"]) == ["dist/x/c.log"]
        assert rel(["top.txt", "dist"]) == ["top.txt"]  # a bare folder is not a file
        assert collect_outputs(tmp_path, ["nothing/**"]) == []
        assert all(p.is_absolute() for p in collect_outputs(tmp_path, ["**"]))

    @pytest.mark.parametrize("pattern", ["/etc/*", "../*", "dist/../../x", ""])
    def test_collect_outputs_rejects_escaping_globs(self, tmp_path: Path, pattern: str) -> None:
        from sparkwing.errors import UsageError

        with pytest.raises(UsageError):
            collect_outputs(tmp_path, [pattern])

    def test_collect_outputs_skips_symlinks_leaving_root(self, tmp_path: Path) -> None:
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_text("do not upload")
        root = tmp_path / "ws"
        (root / "dist").mkdir(parents=True)
        (root / "dist" / "ok.txt").write_text("ok")
        (root / "dist" / "link.txt").symlink_to(outside / "secret.txt")
        (root / "dist" / "linkdir").symlink_to(outside, target_is_directory=True)
        found = [p.relative_to(root).as_posix() for p in collect_outputs(root, ["dist/**"])]
        assert found == ["dist/ok.txt"]

"""The object-store adapters against the real test servers (moto, fake-gcs-server, Azurite):
compare-and-swap, listing order, large files, key handling, error mapping, fork safety and
opening from a profile spec."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkwing.errors import ConfigError, InvalidKeyError, PreconditionFailedError, StorageError
from sparkwing.surfaces.objectstore.base import ObjectStore
from sparkwing.surfaces.objectstore.common import RetryPolicy
from sparkwing.surfaces.objectstore.open import open_object_store
from sparkwing.surfaces.spec import SurfaceSpec

from ..objectstores import (
    KINDS,
    SPEC_TYPES,
    bucket_store,
    create_bucket,
    emulator_env,
    make_store,
    new_bucket_name,
)
from ..servers import server

FAST_FAIL = RetryPolicy(max_retries=1, initial_backoff=0.01, max_backoff=0.05, timeout=2.0)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str) -> Iterator[ObjectStore]:
    with bucket_store(kind, "team/ci") as opened:
        yield opened


def keys(store: ObjectStore, prefix: str = "", start_after: str | None = None) -> list[str]:
    return [meta.key for meta in store.list(prefix, start_after=start_after)]


# -- compare-and-swap ------------------------------------------------------------------
def test_put_if_absent_creates_once(store: ObjectStore) -> None:
    meta = store.put_if_absent("coord/lock", b"mine")
    assert meta.etag
    with pytest.raises(PreconditionFailedError):
        store.put_if_absent("coord/lock", b"theirs")
    got = store.get("coord/lock")
    assert got is not None
    assert got[0] == b"mine"
    assert got[1].etag == meta.etag


def test_put_if_match_swaps_only_the_current_version(store: ObjectStore) -> None:
    first = store.put_if_absent("coord/doc", b"v1")
    second = store.put_if_match("coord/doc", b"v2", first.etag)
    assert second.etag != first.etag
    with pytest.raises(PreconditionFailedError):
        store.put_if_match("coord/doc", b"stale", first.etag)
    head = store.head("coord/doc")
    assert head is not None and head.etag == second.etag
    got = store.get("coord/doc")
    assert got is not None and got[0] == b"v2"
    with pytest.raises(PreconditionFailedError):
        store.put_if_match("coord/missing", b"x", second.etag)
    assert store.get("coord/missing") is None


def test_unconditional_put_changes_the_etag(store: ObjectStore) -> None:
    first = store.put_if_absent("coord/p", b"one")
    store.put("coord/p", b"two")
    with pytest.raises(PreconditionFailedError):
        store.put_if_match("coord/p", b"three", first.etag)
    got = store.get("coord/p")
    assert got is not None and got[0] == b"two"


# -- listing ---------------------------------------------------------------------------
def test_list_is_lexical_with_string_prefixes_and_start_after(store: ObjectStore) -> None:
    names = ["l/b", "l/a/2", "l/10", "l/1", "l/a/1", "la", "l/2", "m", "k"]
    for name in names:
        store.put(name, name.encode())
    assert keys(store) == sorted(names)
    assert keys(store, "l/") == ["l/1", "l/10", "l/2", "l/a/1", "l/a/2", "l/b"]
    assert keys(store, "l") == ["l/1", "l/10", "l/2", "l/a/1", "l/a/2", "l/b", "la"]
    assert keys(store, "l/1") == ["l/1", "l/10"]
    assert keys(store, "l/a") == ["l/a/1", "l/a/2"]
    assert keys(store, "l/", start_after="l/10") == ["l/2", "l/a/1", "l/a/2", "l/b"]
    assert keys(store, "l/", start_after="l/a") == ["l/a/1", "l/a/2", "l/b"]
    assert keys(store, "l/", start_after="l/b") == []
    assert keys(store, "", start_after="la") == ["m"]
    assert keys(store, "zz") == []
    sizes = {meta.key: meta.size for meta in store.list("l/a/")}
    assert sizes == {"l/a/1": 5, "l/a/2": 5}


def test_list_pages_past_one_response(kind: str) -> None:
    # More keys than one list response (1000) holds; empty objects in a bucket of their
    # own, left for the server to drop (deleting them one by one would double the cost).
    from concurrent.futures import ThreadPoolExecutor

    bucket = new_bucket_name()
    create_bucket(kind, bucket)
    store = make_store(kind, bucket, "p")
    names = [f"many/{i:05d}" for i in range(1003)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: store.put(name, b""), names))
    assert keys(store, "many/") == names
    assert keys(store, "many/", start_after="many/00998") == names[999:]
    store.close()


def test_prefixes_isolate_stores_on_one_bucket(kind: str) -> None:
    bucket = new_bucket_name()
    create_bucket(kind, bucket)
    one = make_store(kind, bucket, "team/one")
    two = make_store(kind, bucket, "team/one-more")
    root = make_store(kind, bucket)
    try:
        one.put("x", b"1")
        two.put("x", b"2")
        assert keys(one) == ["x"]
        assert keys(two) == ["x"]
        assert keys(root) == ["team/one-more/x", "team/one/x"]
        got = one.get("x")
        assert got is not None and got[0] == b"1"
        assert one.describe() == f"{SPEC_TYPES[kind]}://{bucket}/team/one/"
    finally:
        root.delete_many(keys(root))
        for opened in (one, two, root):
            opened.close()


# -- objects ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["a b", "ü✓日本", "p%20c", "h#x", "x+y=z&w", "q'u\"o", "br[1]{2}", "t~x^`|<>*"]
)
def test_awkward_keys_roundtrip(store: ObjectStore, name: str) -> None:
    key = f"odd/{name}/leaf"
    store.put(key, name.encode())
    got = store.get(key)
    assert got is not None and got[0] == name.encode()
    assert keys(store, "odd/") == [key]
    assert store.delete(key) is True


def test_get_range(store: ObjectStore) -> None:
    store.put("r", b"0123456789")
    assert store.get_range("r", 2, 5) == b"234"
    assert store.get_range("r", 7) == b"789"
    assert store.get_range("r", 4, 4) == b""
    assert store.get_range("r", 10) == b""
    assert store.get_range("gone", 0, 3) is None


def test_delete_reports_what_it_did(store: ObjectStore) -> None:
    store.put("d/1", b"1")
    store.put("d/2", b"2")
    store.put("d/3", b"3")
    assert store.delete("d/1") is True
    assert store.delete("d/1") is False
    store.delete_many(["d/2", "d/missing", "d/3"])
    assert keys(store, "d/") == []


@pytest.mark.parametrize("bad", ["", "/a", "a/", "a//b", "a/../b", "..", "a/./b", "a\\b", "a\x00"])
def test_invalid_keys_rejected_before_any_request(kind: str, bad: str, tmp_path: Path) -> None:
    # A store on a bucket that does not exist: a request would fail differently.
    store = make_store(kind, new_bucket_name(), retry=FAST_FAIL)
    src = tmp_path / "f"
    src.write_bytes(b"x")
    calls = [
        lambda: store.get(bad),
        lambda: store.head(bad),
        lambda: store.put(bad, b"x"),
        lambda: store.put_if_absent(bad, b"x"),
        lambda: store.put_if_match(bad, b"x", "1"),
        lambda: store.put_file(bad, src),
        lambda: store.get_file(bad, tmp_path / "out"),
        lambda: store.delete(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidKeyError):
            call()
    with pytest.raises(InvalidKeyError):
        list(store.list("a/../b"))


def test_large_file_streams_in_parts_with_bounded_memory(
    kind: str, store: ObjectStore, tmp_path: Path
) -> None:
    """A 96 MiB file goes up and comes back intact, and neither direction holds it whole:
    the child process's peak memory grows by well under the file's size."""
    src = tmp_path / "big.bin"
    with src.open("wb") as fh:
        for i in range(96):
            fh.write(os.urandom(1 << 20) if i % 16 == 0 else bytes([i]) * (1 << 20))
    store.put_file("big/in", src)
    head = store.head("big/in")
    assert head is not None and head.size == 96 << 20

    script = textwrap.dedent(
        f"""
        import resource, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from tests.objectstores import make_store
        store = make_store({kind!r}, {getattr(store, "bucket", "")!r}, "team/ci")
        store.head("big/in")
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert store.get_file("big/in", Path(sys.argv[1])) is not None
        after_get = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        store.put_file("big/out", Path(sys.argv[1]))
        after_put = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(after_get - base, after_put - base)
        """
    )
    dest = tmp_path / "copy.bin"
    proc = subprocess.run(
        [sys.executable, "-c", script, str(dest)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **emulator_env(kind)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    grew_get, grew_put = (int(v) // 1024 for v in proc.stdout.split())
    assert grew_get < 64, f"download peak grew by {grew_get} MiB"
    assert grew_put < 64, f"upload peak grew by {grew_put} MiB"
    assert dest.read_bytes() == src.read_bytes()
    out = store.head("big/out")
    assert out is not None and out.size == 96 << 20


def test_put_file_of_a_missing_source_is_the_callers_error(
    store: ObjectStore, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        store.put_file("x", tmp_path / "missing")
    assert store.head("x") is None


def test_get_file_miss_leaves_no_file(store: ObjectStore, tmp_path: Path) -> None:
    dest = tmp_path / "ws" / "out.bin"
    assert store.get_file("nothing", dest) is None
    assert not dest.exists()
    assert not dest.parent.exists() or os.listdir(dest.parent) == []


# -- errors ----------------------------------------------------------------------------
def test_missing_bucket_is_one_line_naming_the_store(kind: str, tmp_path: Path) -> None:
    bucket = new_bucket_name()
    store = make_store(kind, bucket, "p", role="cache", retry=FAST_FAIL)
    src = tmp_path / "f"
    src.write_bytes(b"x")
    calls = [
        lambda: store.get("k"),
        lambda: store.head("k"),
        lambda: store.put("k", b"x"),
        lambda: store.put_file("k", src),
        lambda: store.put_if_absent("k", b"x"),
        lambda: list(store.list("")),
        lambda: store.delete("k"),
    ]
    for call in calls:
        with pytest.raises(StorageError) as info:
            call()
        message = str(info.value)
        assert not isinstance(info.value, PreconditionFailedError)
        assert "\n" not in message
        assert message.startswith(f"cache store {SPEC_TYPES[kind]}://{bucket}/p/: cannot ")
        assert "bucket does not exist" in message
    store.close()


def test_unreachable_endpoint_is_one_line_without_secrets(kind: str) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    store = make_store(kind, "bkt", role="state", retry=FAST_FAIL, endpoint=endpoint)
    with pytest.raises(StorageError) as info:
        store.put("k", b"x")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"state store {SPEC_TYPES[kind]}://bkt/: cannot write 'k': ")
    assert "unreachable" in message or "failing" in message
    for secret in ("testing-secret", "Eby8vdM02xNOcqFlqUwJPLlm"):
        assert secret not in message
    store.close()


def test_rejected_credentials_are_access_denied_without_the_key() -> None:
    # Azurite checks SharedKey signatures (moto and fake-gcs-server accept anything).
    import base64

    from sparkwing.surfaces.objectstore.azure import EMULATOR_ACCOUNT, AzureObjectStore

    bucket = new_bucket_name()
    create_bucket("azure", bucket)
    wrong = base64.b64encode(b"not the account key, 32 bytes!!!").decode()
    store = AzureObjectStore(
        bucket,
        account_name=EMULATOR_ACCOUNT,
        account_key=wrong,
        endpoint=f"{server('azure')}/{EMULATOR_ACCOUNT}",
        role="cache",
        retry=FAST_FAIL,
    )
    with pytest.raises(StorageError) as info:
        store.put("k", b"x")
    message = str(info.value)
    assert "access denied" in message and "check the credentials" in message
    assert wrong not in message and "\n" not in message
    store.close()


# -- fork safety -----------------------------------------------------------------------
def test_stores_work_in_a_process_forked_after_use(store: ObjectStore) -> None:
    """The engine forks job processes after the runner used its stores; a child that
    uploads artifacts must neither hang nor fail (obstore's runtime does not survive fork)."""
    store.put("fork/parent", b"from parent")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            got = store.get("fork/parent")
            store.put("fork/child", b"from child")
            listed = [m.key for m in store.list("fork/")]
            ok = got is not None and got[0] == b"from parent"
            code = 0 if ok and listed == ["fork/child", "fork/parent"] else 3
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung using the store")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
    got = store.get("fork/child")
    assert got is not None and got[0] == b"from child"


# -- opening from a profile spec --------------------------------------------------------
def test_open_object_store_from_spec_and_environment(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = new_bucket_name()
    create_bucket(kind, bucket)
    for name, value in emulator_env(kind).items():
        monkeypatch.setenv(name, value)
    spec = SurfaceSpec(type=SPEC_TYPES[kind], bucket=bucket, prefix="/team/ci/")
    store = open_object_store(spec, role="cache")
    try:
        store.put("k", b"v")
        assert keys(store) == ["k"]
        assert keys(make_store(kind, bucket)) == ["team/ci/k"]
        assert store.describe() == f"{SPEC_TYPES[kind]}://{bucket}/team/ci/"
    finally:
        store.delete("k")
        store.close()


def test_open_object_store_needs_a_bucket() -> None:
    with pytest.raises(ConfigError, match="logs backend type=s3 requires bucket"):
        open_object_store(SurfaceSpec(type="s3"), role="logs")
    with pytest.raises(ConfigError):
        open_object_store(SurfaceSpec(type="filesystem", path="/tmp"), role="cache")


def test_importing_sparkwing_loads_no_cloud_client() -> None:
    code = (
        "import sys, sparkwing, sparkwing.surfaces.open, sparkwing.surfaces.objectstore.open; "
        "import sparkwing.surfaces.cache.objectstore, sparkwing.surfaces.logs.objectstore; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('obstore', 'google', 'boto3')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_azure_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    from sparkwing.surfaces.objectstore.azure import EMULATOR_ACCOUNT, EMULATOR_KEY

    bucket = new_bucket_name()
    create_bucket("azure", bucket)
    for name in ("SPARKWING_AZURE_ENDPOINT", "AZURITE_BLOB_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        f"DefaultEndpointsProtocol=http;AccountName={EMULATOR_ACCOUNT};"
        f"AccountKey={EMULATOR_KEY};BlobEndpoint={server('azure')}/{EMULATOR_ACCOUNT};",
    )
    store = open_object_store(SurfaceSpec(type="azure-blob", bucket=bucket), role="logs")
    store.put("k", b"v")
    got = store.get("k")
    assert got is not None and got[0] == b"v"
    store.delete("k")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountKey=abc==")
    with pytest.raises(ConfigError, match="no AccountName"):
        open_object_store(SurfaceSpec(type="azure-blob", bucket=bucket), role="logs")

"""Finds the bundle of ``.sparkwing/`` as it is now: the local bundle cache first, then the
shared store (``bin/<key>``), else builds it (installing its requirements) and uploads it.

Every object is verified before use; one that fails is discarded with a warning and the
bundle is fetched again or rebuilt, never executed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from sparkwing.bundle import archive, remote
from sparkwing.bundle.archive import BundleCorrupt, Member
from sparkwing.bundle.key import BundleKey, compute_key
from sparkwing.bundle.store import (
    TREE_MARKER,
    LocalStore,
    human_size,
    read_json,
    rmtree,
    tree_bytes,
    write_json,
)
from sparkwing.errors import SparkwingError, StorageError, UsageError
from sparkwing.surfaces.cache.base import Cache
from sparkwing.surfaces.spec import SurfaceSpec

Say = Callable[[str], None]
_SKIP_INSTALLED = ("__pycache__",)


def _stderr(message: str) -> None:
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)


class Bundle(NamedTuple):
    """The bundle a run executes. ``tree`` (its unpacked ``src/`` and ``site-packages/``) is
    set when it has requirements: the run then starts a fresh interpreter on it. Without
    requirements the sources run in place (they are what the key was computed from)."""

    key: str
    digest: str
    source: str  # local | remote | built
    tree: Path | None = None

    @property
    def isolated(self) -> bool:
        return self.tree is not None

    @property
    def sources_dir(self) -> Path | None:
        return self.tree / "src" if self.tree else None

    @property
    def sys_path(self) -> list[str]:
        """What goes first on the runner's ``sys.path``, after the sources folder."""
        return [str(self.tree / "site-packages")] if self.tree else []

    def record(self) -> dict[str, str]:
        return {"key": self.key, "source": self.source, "digest": self.digest}


class _Resolver:
    def __init__(
        self,
        store: LocalStore,
        bkey: BundleKey,
        sparkwing_dir: Path,
        spec: SurfaceSpec,
        say: Say,
        warn: Say,
    ) -> None:
        self.store = store
        self.bkey = bkey
        self.key = bkey.key
        self.short = bkey.key[:12]
        self.sparkwing_dir = sparkwing_dir
        self.spec = spec
        self.where = remote.location(spec)
        self.say = say
        self.warn = warn
        self._remote: Cache | None = None
        self._remote_failed = False

    # -- the shared store -------------------------------------------------------------
    def open_remote(self) -> Cache | None:
        if self._remote is None and not self._remote_failed:
            try:
                self._remote = remote.open_remote(self.spec)
            except SparkwingError as exc:
                self._remote_failed = True
                self.warn(f"warning: bundle store {self.where} unavailable ({exc})")
        return self._remote

    def upload(self, meta: dict[str, Any], *, check: bool) -> None:
        """Put the local object at ``bin/<key>`` unless already there (``check``)."""
        store = self.open_remote()
        if store is None:
            return
        rkey = remote.remote_key(self.key)
        try:
            if not (check and store.has(rkey)):
                store.put_file(rkey, self.store.object_path(self.key))
        except (SparkwingError, OSError) as exc:
            self.warn(f"warning: could not upload bundle {self.short} to {self.where}: {exc}")
            return
        meta["uploaded"] = sorted({*meta.get("uploaded", []), self.where})

    def close(self) -> None:
        if self._remote is not None:
            with contextlib.suppress(Exception):  # closing is best effort; the run goes on
                self._remote.close()
            self._remote = None

    # -- look-ups ---------------------------------------------------------------------
    def resolve(self, rebuild: bool) -> Bundle:
        if rebuild:
            return self.build()
        local_problem = None
        try:
            found = self.local()
        except BundleCorrupt as exc:
            local_problem = str(exc)
            self.store.remove(self.key)
        else:
            if found is not None:
                return found
        fetched = self.fetch()
        if local_problem:
            then = f"using the copy from {self.where}" if fetched else "rebuilding"
            self.warn(
                f"warning: bundle {self.key} from the local bundle cache failed verification "
                f"({local_problem}); {then}"
            )
        return fetched or self.build()

    def local(self) -> Bundle | None:
        obj = self.store.object_path(self.key)
        if not obj.is_file():
            return None
        digest = archive.verify(obj)
        meta = self.store.read_meta(self.key)
        before = dict(meta)
        tree = self.tree(digest, meta) if self.bkey.requirements else None
        meta.update(digest=digest, key=self.key)
        meta.setdefault("created", time.time())
        if self.where not in meta.get("uploaded", []):
            self.upload(meta, check=True)  # e.g. another pipeline's cache.binaries prefix
        if meta != before:
            self.store.write_meta(self.key, meta)
        self.store.record_use(self.key, hit=True)
        return Bundle(self.key, digest, "local", tree)

    def tree(self, digest: str, meta: dict[str, Any]) -> Path:
        """The unpacked tree of the local object, unpacking it unless already there."""
        tree = self.store.tree_path(self.key)
        with contextlib.suppress(OSError):
            if (tree / TREE_MARKER).read_text(encoding="ascii") == digest:
                return tree
        work = self.store.work_dir()
        try:
            dest = work / "tree"
            dest.mkdir()
            archive.unpack(self.store.object_path(self.key), dest)
            self.install_tree(dest, digest, meta)
        finally:
            rmtree(work)
        return tree

    def install_tree(self, dest: Path, digest: str, meta: dict[str, Any]) -> None:
        tree = self.store.tree_path(self.key)
        meta["tree_size"] = tree_bytes(dest)
        with contextlib.suppress(OSError):
            if (tree / TREE_MARKER).read_text(encoding="ascii") == digest:
                return  # the same bytes are already there (and may be in use): keep them
        (dest / TREE_MARKER).write_text(digest, encoding="ascii")
        self.store.retire_tree(self.key)
        tree.parent.mkdir(parents=True, exist_ok=True)
        os.replace(dest, tree)

    def fetch(self) -> Bundle | None:
        store = self.open_remote()
        if store is None:
            return None
        work = self.store.work_dir()
        try:
            tmp = work / "object"
            try:
                if not store.get_file(remote.remote_key(self.key), tmp):
                    return None
            except (SparkwingError, OSError) as exc:
                self.warn(f"warning: could not read bundle {self.short} from {self.where}: {exc}")
                return None
            started = time.monotonic()
            meta: dict[str, Any] = {"source": "remote", "uploaded": [self.where]}
            try:
                digest = archive.verify(tmp)
                self.store.object_path(self.key).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, self.store.object_path(self.key))
                tree = self.tree(digest, meta) if self.bkey.requirements else None
            except BundleCorrupt as exc:
                self.store.remove(self.key)
                self.warn(
                    f"warning: bundle {self.key} from {self.where} failed verification "
                    f"({exc}); rebuilding"
                )
                return None
            self.write_new_meta(meta, digest)
            if tree is not None:
                size = self.store.object_path(self.key).stat().st_size
                self.say(
                    f"bundle {self.short}: fetched from {self.where} ({human_size(size)}, "
                    f"{time.monotonic() - started:.1f}s)"
                )
            return Bundle(self.key, digest, "remote", tree)
        finally:
            rmtree(work)

    def write_new_meta(self, meta: dict[str, Any], digest: str) -> None:
        meta.update(
            key=self.key,
            digest=digest,
            created=time.time(),
            project=str(self.sparkwing_dir),
            requirements=self.bkey.requirements.describe(),
        )
        self.store.write_meta(self.key, meta)
        self.store.hits_path(self.key).unlink(missing_ok=True)
        self.store.record_use(self.key, hit=False)

    # -- building ---------------------------------------------------------------------
    def build(self) -> Bundle:
        from sparkwing.bundle import installer

        req = self.bkey.requirements
        started = time.monotonic()
        work = self.store.work_dir()
        try:
            members = self.source_members()
            tree_dir = work / "tree"
            site = tree_dir / "site-packages"
            manifest: dict[str, Any] = {
                "format": 1,
                "key": self.key,
                "components": [c.to_dict() for c in self.bkey.components],
                "requirements": {"source": req.source, "lines": list(req.lines)},
            }
            if req:
                self.say(
                    f"bundle {self.short}: installing requirements ({req.describe()}) "
                    f"with {installer.choose()[0]}"
                )
                site.mkdir(parents=True)
                manifest["installer"] = installer.install(
                    req, self.sparkwing_dir, site, self.store.log_path(self.key)
                )
                members += installed_members(site)
            members.append(Member("bundle.json", json.dumps(manifest, sort_keys=True).encode()))
            obj = work / "object"
            digest, size = archive.pack(obj, members)
            meta: dict[str, Any] = {"source": "built", "uploaded": []}
            tree = None
            if req:
                for m in members:
                    if m.name.startswith("src/") and isinstance(m.data, bytes):
                        path = tree_dir / m.name
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(m.data)
                self.install_tree(tree_dir, digest, meta)
                tree = self.store.tree_path(self.key)
            self.store.object_path(self.key).parent.mkdir(parents=True, exist_ok=True)
            os.replace(obj, self.store.object_path(self.key))
            self.upload(meta, check=False)
            self.write_new_meta(meta, digest)
        finally:
            rmtree(work)
        if req:
            shared = "shared at" if self.where in meta["uploaded"] else "not shared to"
            self.say(
                f"bundle {self.short}: built in {time.monotonic() - started:.1f}s "
                f"({human_size(size)}), {shared} {self.where}"
            )
        return Bundle(self.key, digest, "built", tree)

    def source_members(self) -> list[Member]:
        """The sources as keyed: each file is read once and must still hash as it did."""
        members = []
        for f in self.bkey.sources:
            try:
                data = f.path.read_bytes()
            except OSError as exc:
                raise UsageError(f"{f.path}: cannot read it: {exc.strerror or exc}") from None
            if hashlib.sha256(data).hexdigest() != f.sha256:
                raise UsageError(f"{f.path} changed while its bundle was being built; run again")
            members.append(Member(f"src/{f.rel}", data, f.executable))
        return members


def installed_members(site: Path) -> list[Member]:
    """Every file the installer wrote (not byte-code caches), in a stable order."""
    members = []
    for dirpath, dirnames, filenames in os.walk(site):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_INSTALLED)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.endswith((".pyc", ".pyo")) or path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(site).as_posix()
            executable = bool(path.stat().st_mode & 0o111)
            members.append(Member(f"site-packages/{rel}", path, executable))
    return members


class ProjectMemo:
    """A project's memo in the local bundle cache: file hashes, ignore results and the last
    bundle it used (what `cache explain` compares against). Saved only when it changed."""

    def __init__(self, store: LocalStore, sparkwing_dir: Path) -> None:
        self.path = store.project_path(sparkwing_dir)
        self.data: dict[str, Any] = read_json(self.path) or {}
        self._saved = json.dumps(self.data, sort_keys=True)

    @property
    def last(self) -> dict[str, Any] | None:
        last = self.data.get("last")
        return last if isinstance(last, dict) else None

    def remember(self, bkey: BundleKey, bundle: Bundle) -> None:
        if (self.last or {}).get("key") == bkey.key:
            return
        self.data["last"] = {
            "key": bkey.key,
            "source": bundle.source,
            "at": time.time(),
            "components": [c.to_dict() for c in bkey.components],
            "files": bkey.files,
        }

    def save(self) -> None:
        text = json.dumps(self.data, sort_keys=True)
        if text != self._saved:
            write_json(self.path, self.data)
            self._saved = text


def current_key(sparkwing_dir: Path, store: LocalStore) -> tuple[BundleKey, ProjectMemo]:
    """The key of ``sparkwing_dir`` as it is now, and the project's memo (saved)."""
    memo = ProjectMemo(store, sparkwing_dir)
    bkey = compute_key(sparkwing_dir, memo.data)
    memo.save()
    return bkey, memo


@contextlib.contextmanager
def open_bundle(
    sparkwing_dir: Path,
    cache_spec: SurfaceSpec,
    *,
    rebuild: bool = False,
    say: Say | None = None,
    warn: Say | None = None,
    store: LocalStore | None = None,
) -> Iterator[Bundle]:
    """The bundle of ``sparkwing_dir`` for as long as the block runs (an unpacked tree is
    protected from ``cache prune`` meanwhile). ``rebuild`` skips every cache."""
    store = store or LocalStore()
    memo = ProjectMemo(store, sparkwing_dir)
    try:
        bkey = compute_key(sparkwing_dir, memo.data)
    except OSError as exc:
        raise StorageError(f"cannot read {sparkwing_dir}: {exc}") from None
    resolver = _Resolver(
        store,
        bkey,
        sparkwing_dir,
        remote.binaries_spec(cache_spec),
        say or _stderr,
        warn or _stderr,
    )
    with contextlib.ExitStack() as stack:
        try:
            with store.locked(bkey.key, "build"), contextlib.closing(resolver):
                bundle = resolver.resolve(rebuild)
                memo.remember(bkey, bundle)
                memo.save()
                if bundle.isolated:
                    # Taken before the build lock is released: prune never slips in between.
                    stack.enter_context(store.locked(bkey.key, "use", shared=True))
        except OSError as exc:
            raise StorageError(f"local bundle cache {store.root}: {exc}") from None
        yield bundle

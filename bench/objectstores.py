"""Object-store backends measured against the raw cloud client, per emulator, in one run.

For each of s3 (moto), gcs (fake-gcs-server) and azure-blob (Azurite), interleaving
repetitions of baseline and Sparkwing:

  artifact   ObjectStoreCache.put_file + get_file of a 64 MiB file, against the raw
             client doing the same two calls (obstore put/get for s3 and azure, the
             google-cloud-storage client's upload/download for gcs).  target ratio >= 0.8
  logs       200,000 log lines appended to ObjectStoreLogs in batches of 1,000 (as the
             engine appends) and flushed, against one raw put of the same NDJSON bytes,
             already encoded.                                          target ratio >= 0.5
  runs list  requests that ``runs list --limit 50`` (list_runs(limit=50) on the object
             store state) makes with 2,000 runs stored, counted by a wrapping store.
                                                                      target <= 60 requests

Ratio = baseline time / Sparkwing time (1.0 = as fast as the raw client). Emulators are
reused from the SPARKWING_TEST_* variables (as ./scripts/test exports them), else started
here. A report, not a test: it exits 0 whether or not a target is met.

    python bench/objectstores.py [--reps 5] [--clouds s3,gcs,azure] [--runs 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._servers import emulators  # noqa: E402
from tests.doubles.counting import CountingObjectStore  # noqa: E402
from tests.objectstores import (  # noqa: E402
    S3_KEY_ID,
    S3_REGION,
    S3_SECRET,
    create_bucket,
    make_store,
    new_bucket_name,
)

from sparkwing.surfaces.cache.objectstore import ObjectStoreCache  # noqa: E402
from sparkwing.surfaces.logs.base import LogRecord  # noqa: E402
from sparkwing.surfaces.logs.filesystem import encode_records  # noqa: E402
from sparkwing.surfaces.logs.objectstore import ObjectStoreLogs  # noqa: E402

ARTIFACT_MIB = 64
LOG_LINES = 200_000
LOG_BATCH = 1_000
LIST_LIMIT = 50
TARGETS = {"artifact": 0.8, "logs": 0.5}
LIST_TARGET = 60
NAMES = {"s3": "s3 (moto)", "gcs": "gcs (fake-gcs-server)", "azure": "azure-blob (Azurite)"}


@dataclass
class Row:
    cloud: str
    measurement: str
    baseline: list[float] = field(default_factory=list)
    sparkwing: list[float] = field(default_factory=list)
    value: float | None = None  # for counts
    target: str = ""
    ok: bool | None = None

    @property
    def ratio(self) -> float | None:
        if not self.baseline or not self.sparkwing:
            return None
        return statistics.median(self.baseline) / statistics.median(self.sparkwing)


# -- raw clients -------------------------------------------------------------------------
class RawClient:
    """The cloud's own client on the same bucket, as a user without Sparkwing would call it."""

    def __init__(self, kind: str, bucket: str, endpoint: str) -> None:
        self.kind = kind
        if kind == "gcs":
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            client = storage.Client(
                project="test",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": endpoint},
            )
            self.bucket = client.bucket(bucket)
        elif kind == "s3":
            from obstore.store import S3Store

            self.store = S3Store(
                bucket,
                endpoint=endpoint,
                access_key_id=S3_KEY_ID,
                secret_access_key=S3_SECRET,
                region=S3_REGION,
                client_options={"allow_http": True},
            )
        else:
            from obstore.store import AzureStore

            from sparkwing.surfaces.objectstore.azure import EMULATOR_ACCOUNT, EMULATOR_KEY

            self.store = AzureStore(
                bucket,
                account_name=EMULATOR_ACCOUNT,
                account_key=EMULATOR_KEY,
                endpoint=f"{endpoint}/{EMULATOR_ACCOUNT}",
                client_options={"allow_http": True},
            )

    def put_file(self, key: str, src: Path) -> None:
        if self.kind == "gcs":
            self.bucket.blob(key).upload_from_filename(str(src))
        else:
            import obstore

            obstore.put(self.store, key, src)

    def get_file(self, key: str, dest: Path) -> None:
        if self.kind == "gcs":
            self.bucket.blob(key).download_to_filename(str(dest))
            return
        import obstore

        with dest.open("wb") as fh:
            for chunk in obstore.get(self.store, key):
                fh.write(chunk)

    def put(self, key: str, data: bytes) -> None:
        if self.kind == "gcs":
            self.bucket.blob(key).upload_from_string(data)
        else:
            import obstore

            obstore.put(self.store, key, data)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def log_records() -> list[LogRecord]:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    return [
        LogRecord(
            ts=(base + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z"),
            msg=f"[{i:06d}] compiling src/module_{i % 300}.py ... ok (0.{i % 1000:03d}s)",
            stream="stdout" if i % 10 else "stderr",
        )
        for i in range(LOG_LINES)
    ]


# -- measurements --------------------------------------------------------------------------
def measure_artifact(kind: str, endpoint: str, reps: int, work: Path) -> Row:
    row = Row(NAMES[kind], f"artifact put+get {ARTIFACT_MIB} MiB", target=">= 0.8")
    src = work / "artifact.bin"
    if not src.exists():
        with src.open("wb") as fh:
            for _ in range(ARTIFACT_MIB):
                fh.write(os.urandom(1 << 20))
    bucket = new_bucket_name()
    create_bucket(kind, bucket)
    raw = RawClient(kind, bucket, endpoint)
    cache = ObjectStoreCache(make_store(kind, bucket, "sw"))
    dest = work / "artifact.out"

    def baseline() -> None:
        raw.put_file("raw/artifact", src)
        raw.get_file("raw/artifact", dest)

    def sparkwing() -> None:
        cache.put_file("bin/artifact", src)
        cache.get_file("bin/artifact", dest)

    baseline()  # warm-up: connections, credentials, the first object of the bucket
    sparkwing()
    for rep in range(reps):
        pair = [(row.baseline, baseline), (row.sparkwing, sparkwing)]
        for samples, fn in pair if rep % 2 == 0 else reversed(pair):
            samples.append(timed(fn))
    assert dest.stat().st_size == ARTIFACT_MIB << 20
    cache.close()
    return row


def measure_logs(kind: str, endpoint: str, reps: int, records: list[LogRecord]) -> Row:
    row = Row(NAMES[kind], f"log upload {LOG_LINES:,} lines", target=">= 0.5")
    bucket = new_bucket_name()
    create_bucket(kind, bucket)
    raw = RawClient(kind, bucket, endpoint)
    data = encode_records(records)
    store = CountingObjectStore(make_store(kind, bucket, "sw"))
    objects: list[int] = []

    def sparkwing(run_id: str) -> None:
        logs = ObjectStoreLogs(store)
        for start in range(0, len(records), LOG_BATCH):
            logs.append(run_id, "build", records[start : start + LOG_BATCH])
        logs.close()

    raw.put("raw/warm", data)
    sparkwing("run-warm")
    for rep in range(reps):
        run_id = f"run-bench-{rep}"
        before = store.counts["put"]
        pair: list[tuple[list[float], Callable[[], object]]] = [
            (row.baseline, lambda: raw.put(f"raw/{rep}.ndjson", data)),  # noqa: B023
            (row.sparkwing, lambda: sparkwing(run_id)),  # noqa: B023
        ]
        for samples, fn in pair if rep % 2 == 0 else reversed(pair):
            samples.append(timed(fn))
        objects.append(store.counts["put"] - before)
    row.measurement += f" ({len(data) / 2**20:.1f} MiB, {statistics.median(objects):.0f} objects)"
    return row


def measure_runs_list(kind: str, runs: int) -> Row:
    row = Row(NAMES[kind], f"runs list --limit {LIST_LIMIT}: requests", target=f"<= {LIST_TARGET}")
    try:
        from sparkwing.surfaces.state.base import RunRecord
        from sparkwing.surfaces.state.objectstore import ObjectStoreState
    except ImportError:
        row.measurement += " (object-store state not available)"
        return row
    from sparkwing.ids import new_run_id

    bucket = new_bucket_name()
    create_bucket(kind, bucket)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def seed(indexes: range) -> None:
        state = ObjectStoreState(make_store(kind, bucket, "team"))
        for i in indexes:
            at = start + timedelta(seconds=i)
            stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            state.create_run(
                RunRecord(
                    run_id=new_run_id(at),
                    pipeline=("build", "test", "deploy")[i % 3],
                    status="success",
                    created_at=stamp,
                    started_at=stamp,
                    finished_at=stamp,
                )
            )
        state.close()

    workers = 8
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(seed, [range(w, runs, workers) for w in range(workers)]))
    counting = CountingObjectStore(make_store(kind, bucket, "team"))
    state = ObjectStoreState(counting)
    page = state.list_runs(limit=LIST_LIMIT)
    assert len(page.runs) == LIST_LIMIT, len(page.runs)
    ids = [run.run_id for run in page.runs]
    assert ids == sorted(ids, reverse=True)
    row.value = float(counting.total)
    row.ok = counting.total <= LIST_TARGET
    state.close()
    return row


# -- report ----------------------------------------------------------------------------------
def finish(row: Row) -> Row:
    ratio = row.ratio
    if ratio is not None:
        key = "artifact" if row.measurement.startswith("artifact") else "logs"
        row.ok = ratio >= TARGETS[key]
    return row


def table(rows: list[Row]) -> str:
    head = f"{'cloud':<24} {'measurement':<52} {'baseline':>9} {'sparkwing':>10} "
    head += f"{'ratio':>6} {'target':>8}  result"
    lines = [head, "-" * len(head)]
    for row in rows:
        if row.value is not None or row.ratio is None:
            base = spark = "-"
            ratio = f"{row.value:.0f}" if row.value is not None else "-"
        else:
            base = f"{statistics.median(row.baseline):.3f}s"
            spark = f"{statistics.median(row.sparkwing):.3f}s"
            ratio = f"{row.ratio:.2f}"
        result = {True: "PASS", False: "MISS", None: "n/a"}[row.ok]
        lines.append(
            f"{row.cloud:<24} {row.measurement:<52} {base:>9} {spark:>10} "
            f"{ratio:>6} {row.target:>8}  {result}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--clouds", default="s3,gcs,azure")
    parser.add_argument("--runs", type=int, default=2000, help="runs stored for runs list")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    kinds = [k for k in opts.clouds.split(",") if k]
    rows: list[Row] = []
    records = log_records()
    with emulators(kinds) as endpoints, tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            rows.append(finish(measure_artifact(kind, endpoints[kind], opts.reps, Path(tmp))))
            rows.append(finish(measure_logs(kind, endpoints[kind], opts.reps, records)))
            if opts.runs > 0:
                rows.append(measure_runs_list(kind, opts.runs))
    if opts.json:
        doc: dict[str, Any] = {
            "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
            "python": sys.version.split()[0],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(table(rows))


if __name__ == "__main__":
    main()

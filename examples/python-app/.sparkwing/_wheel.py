"""Build and verify a pure-Python wheel with the standard library only.

The archive is reproducible (fixed timestamps and order), so the same sources always give
the same bytes and the same sha256.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

EPOCH = (1980, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _metadata(project: dict[str, Any], requires: list[str]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project.get('requires-python', '>=3')}",
        *(f"Requires-Dist: {req}" for req in requires),
    ]
    return "\n".join(lines) + "\n"


def build(root: Path, project: dict[str, Any], requires: list[str], out_dir: Path) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` from ``root/src/<name>`` into ``out_dir``."""
    name, version = project["name"], project["version"]
    dist_info = f"{name}-{version}.dist-info"
    package = root / "src" / name
    files: dict[str, bytes] = {}
    for path in sorted(package.rglob("*.py")):
        files[path.relative_to(root / "src").as_posix()] = path.read_bytes()
    files[f"{dist_info}/METADATA"] = _metadata(project, requires).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: sparkwing-example\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    scripts = project.get("scripts", {})
    if scripts:
        entries = "".join(f"{k} = {v}\n" for k, v in sorted(scripts.items()))
        files[f"{dist_info}/entry_points.txt"] = ("[console_scripts]\n" + entries).encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for arcname, data in files.items():
        writer.writerow([arcname, _record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    files[f"{dist_info}/RECORD"] = record.getvalue().encode()

    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for arcname, data in files.items():
            info = zipfile.ZipInfo(arcname, date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return wheel


def verify(wheel: Path) -> dict[str, str]:
    """Check the archive against its RECORD; returns its METADATA headers.

    Raises ValueError naming the first problem found.
    """
    with zipfile.ZipFile(wheel) as archive:
        bad = archive.testzip()
        if bad is not None:
            raise ValueError(f"{wheel.name}: corrupt member {bad}")
        names = set(archive.namelist())
        records = [n for n in names if n.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            raise ValueError(f"{wheel.name}: expected one RECORD, found {len(records)}")
        rows = list(csv.reader(io.StringIO(archive.read(records[0]).decode())))
        listed = {row[0] for row in rows}
        if listed != names:
            raise ValueError(f"{wheel.name}: RECORD and archive disagree: {sorted(listed ^ names)}")
        for arcname, digest, size in rows:
            if arcname == records[0]:
                continue
            data = archive.read(arcname)
            if digest != _record_hash(data) or int(size) != len(data):
                raise ValueError(f"{wheel.name}: {arcname} does not match its RECORD entry")
        meta_name = records[0].replace("RECORD", "METADATA")
        headers: dict[str, str] = {}
        for line in archive.read(meta_name).decode().splitlines():
            key, _, value = line.partition(": ")
            headers.setdefault(key, value)
    expected = f"{headers.get('Name')}-{headers.get('Version')}-py3-none-any.whl"
    if wheel.name != expected:
        raise ValueError(f"{wheel.name}: file name does not match METADATA ({expected})")
    return headers

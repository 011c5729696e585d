"""Per-image benchmark records as JSON lines: appended as each finishes, read back to resume a run.

A record is keyed by (protocol, dataset, image, setting, method); the protocol
id is a hash of everything that changes the numbers other than those keys
(task, seed, crop, scoring rules), so a run with another protocol never reuses
a record. A line cut short by a killed run is ignored, not fatal. Records are
written with ``restore.jsonl.JsonLinesWriter``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from restore.errors import RestoreError

Key = tuple[str, str, str, str, str]


def protocol_id(protocol: dict) -> str:
    """A short stable hash of a protocol description."""
    return hashlib.sha256(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:12]


def key_of(record: dict) -> Key:
    return record["protocol"], record["dataset"], record["image"], record["setting"], record["method"]


def read_records(path: Path) -> dict[Key, dict]:
    """The finished records of ``path`` (empty when it does not exist), by key; the last of duplicates wins."""
    if not path.exists():
        return {}
    if not path.is_file():
        raise RestoreError(f"{path} exists and is not a file")
    records = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            records[key_of(record)] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # half a line from a killed run
    return records

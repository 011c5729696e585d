"""What a batch job did, input by input: the report ``restore.run`` returns and its JSON-lines log."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from restore.errors import RestoreError

STATUSES = ("done", "skipped", "failed")


@dataclass
class BatchReport:
    """The outcome of ``restore.run``.

    Attributes:
        records: one dict per input, as written to the log: input, output, status
            ("done", "skipped" or "failed"), sigma (0-255 units), seconds, error, model, task.
        done, skipped, failed: how many inputs ended so.
        log: the JSON-lines file the records were appended to.
    """

    records: list[dict] = field(default_factory=list)
    done: int = 0
    skipped: int = 0
    failed: int = 0
    log: Path | None = None

    def __str__(self) -> str:
        return f"{self.done} done, {self.skipped} skipped, {self.failed} failed (log: {self.log})"

    @property
    def failures(self) -> list[dict]:
        """The records of the inputs that failed."""
        return [r for r in self.records if r["status"] == "failed"]

    def add(self, record: dict) -> None:
        """Count ``record`` and keep it."""
        setattr(self, record["status"], getattr(self, record["status"]) + 1)
        self.records.append(record)


class JobLog:
    """Appends one JSON line per finished input and flushes it, so that a killed run keeps what finished.

    Args:
        path: the log file; created with its folder, appended to across runs.
        report: where every record is also counted.
    """

    def __init__(self, path: Path, report: BatchReport) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = open(path, "a", encoding="utf-8")
        except OSError as exc:
            raise RestoreError(f"{path}: cannot open the log ({exc.strerror or exc})") from None
        self.report = report

    def write(self, record: dict) -> None:
        """Log and count one input's record."""
        if record["status"] not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {record['status']!r}")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        self.report.add(record)

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> JobLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

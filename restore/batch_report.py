"""What a batch job did, input by input: the report ``restore.run`` returns and its JSON-lines log."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from restore.jsonl import JsonLinesWriter

STATUSES = ("done", "skipped", "failed")


@dataclass
class BatchReport:
    """The outcome of ``restore.run``.

    Attributes:
        records: one dict per input, as written to the log: input, output, status
            ("done", "skipped" or "failed"), sigma (0-255 units), seconds, error, model, task,
            and for "done" the settings the output was made with.
        log: the JSON-lines file the records were appended to.
        removed: temp files of interrupted runs found beside the outputs and removed.
        device: the device the job ran on ("auto" resolved, e.g. "cuda" or "cpu").
    """

    records: list[dict] = field(default_factory=list)
    log: Path | None = None
    removed: list[Path] = field(default_factory=list)
    device: str | None = None

    def __str__(self) -> str:
        return f"{self.done} done, {self.skipped} skipped, {self.failed} failed (log: {self.log})"

    def count(self, status: str) -> int:
        """How many inputs ended with ``status``."""
        return sum(r["status"] == status for r in self.records)

    @property
    def done(self) -> int:
        return self.count("done")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def failures(self) -> list[dict]:
        """The records of the inputs that failed."""
        return [r for r in self.records if r["status"] == "failed"]


class JobLog(JsonLinesWriter):
    """The batch log: each input's record appended and flushed, and kept in the report.

    Args:
        path: the log file; created with its folder, appended to across runs.
        report: where every record is also kept.
    """

    def __init__(self, path: Path, report: BatchReport) -> None:
        super().__init__(path, what="log")
        self.report = report

    def write(self, record: dict) -> None:
        """Log and keep one input's record."""
        if record["status"] not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {record['status']!r}")
        super().write(record)
        self.report.records.append(record)


class ReportOnly:
    """The journal of a job without a log file (one output file): records are only kept in the report."""

    def __init__(self, report: BatchReport) -> None:
        self.report = report

    def __enter__(self) -> "ReportOnly":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, record: dict) -> None:
        """Keep one input's record."""
        if record["status"] not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {record['status']!r}")
        self.report.records.append(record)

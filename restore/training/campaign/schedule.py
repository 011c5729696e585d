"""Which model trains next: each run's CPU time shared in proportion to priority."""
from __future__ import annotations

from restore.training.campaign.job import Job


def next_job(jobs: list[Job], spent: dict[str, float]) -> Job:
    """The job furthest below its share of this run (``spent``: CPU seconds per name so far).

    Shares count within a run, not across runs, so that a model that trained a
    lot before (or a new one joining the queue) neither starves nor hogs the
    next run; ties go to queue order, so a run starts with the first model.
    """
    if not jobs:
        raise ValueError("no campaign jobs to schedule")
    return min(jobs, key=lambda j: (spent.get(j.name, 0.0) / j.priority, jobs.index(j)))

"""``campaign run``: train the queue for a wall-clock budget, saving often, stopping cleanly on a signal."""
from __future__ import annotations

import os
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from restore.training.campaign.job import MODELS_DIR, Job
from restore.training.campaign.schedule import next_job
from restore.training.campaign.state import CampaignState, load_average, load_state, save_average, save_state
from restore.training.campaign.trainer import Trainer, cpu_clock, fresh_state


@dataclass(frozen=True)
class RunSettings:
    """How a run spends its time.

    Args:
        minutes: wall-clock budget of the whole run.
        threads: torch threads (1 while a person works on the machine).
        device: "cpu" or "cuda".
        slice_minutes: time one model trains before the schedule picks again.
        save_seconds: the longest stretch between two saves of the model in training
            (a SIGKILL loses at most this much).
        validate_seconds: CPU seconds of training between two validations of a model.
        batch_scale: batches this many times the recipe's (a GPU has the throughput for it).
    """

    minutes: float
    threads: int = 1
    device: str = "cpu"
    slice_minutes: float = 5.0
    save_seconds: float = 600.0
    validate_seconds: float = 900.0
    models_dir: Path = MODELS_DIR
    batch_scale: int = 1


class StopSignal:
    """Set by SIGTERM or SIGINT: the step loop finishes its step, saves and returns."""

    def __init__(self) -> None:
        self.received: int | None = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.received = signum

    def __bool__(self) -> bool:
        return self.received is not None


def validate_into(job: Job, trainer: Trainer) -> None:
    """Validation of the weight average (and, once per shipped file, of the shipped weights) into the state."""
    state = trainer.state
    sha = job.shipped_sha()
    if not state.shipped_validation or state.shipped_validation.get("sha256") != sha:
        state.shipped_validation = {"sha256": sha, **job.validate(job.shipped_model().to(trainer.device))}
    state.last_validation = {"steps": state.steps, "cpu_seconds": round(state.cpu_seconds), **job.validate(trainer.average.model)}
    trainer.validated_at = state.cpu_seconds


def _save(job: Job, trainer: Trainer, models_dir: Path) -> None:
    state = trainer.to_state()
    if not job.commit_average:  # first, so that a state on disk never lacks its average here
        save_average(trainer.average.model.state_dict(), state.steps, job.local_average_path(models_dir))
    save_state(state, job.state_path(models_dir))


def _load(job: Job, models_dir: Path) -> CampaignState:
    return load_state(job.state_path(models_dir)) or fresh_state(job)


def run_lock(models_dir: Path) -> Path:
    """The file that says a run is training (``release`` refuses meanwhile: the run would save over it)."""
    return Path(models_dir) / ".campaign-run.pid"


def running_pid(models_dir: Path) -> int | None:
    """The PID of a live ``campaign run`` on these states, or None."""
    try:
        pid = int(run_lock(models_dir).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def run_campaign(jobs: list[Job], settings: RunSettings, log=print) -> dict[str, int]:
    """Train ``jobs`` by priority for ``settings.minutes``; returns the steps each made."""
    other = running_pid(settings.models_dir)
    if other is not None and other != os.getpid():
        raise SystemExit(f"a campaign run (PID {other}) is already training these models; stop it first")
    lock = run_lock(settings.models_dir)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(str(os.getpid()))
    try:
        return _run(jobs, settings, log)
    finally:
        lock.unlink(missing_ok=True)


def _run(jobs: list[Job], settings: RunSettings, log) -> dict[str, int]:
    torch.set_num_threads(settings.threads)
    device = torch.device(settings.device)
    stop = StopSignal()
    deadline = time.monotonic() + settings.minutes * 60
    trainers: dict[str, Trainer] = {}
    spent: dict[str, float] = {}
    cache: dict = {}
    active = list(jobs)
    while active and not stop and time.monotonic() < deadline:
        job = next_job(active, spent)
        try:
            trainer = trainers.get(job.name)
            if trainer is None:
                state = _load(job, settings.models_dir)
                average = load_average(job.local_average_path(settings.models_dir), state.steps)
                trainer = trainers[job.name] = Trainer(job, state, device, cache, settings.batch_scale, average)
                log(f"{job.name}: resumed at step {trainer.state.steps:,} ({trainer.state.cpu_seconds / 3600:.2f} CPU-h)")
            spent[job.name] = spent.get(job.name, 0.0) + _train_slice(job, trainer, settings, stop, deadline, log)
        except Exception as e:  # one broken model must not stop the others' training
            log(f"{job.name}: dropped from this run: {type(e).__name__}: {e}")
            log(traceback.format_exc())
            active.remove(job)
            trainers.pop(job.name, None)
    if stop:
        log(f"stopped by signal {stop.received}; every model in training was saved")
    return {name: t.run["steps"] for name, t in trainers.items()}


def _train_slice(job: Job, trainer: Trainer, settings: RunSettings, stop: StopSignal, deadline: float, log) -> float:
    """Train ``job`` for one slice, saving every ``save_seconds``; returns the CPU seconds it took."""
    start_cpu = cpu_clock()
    wall = time.monotonic()
    slice_end = min(deadline, wall + settings.slice_minutes * 60)
    last_save, last_cpu, smoothed, steps0 = wall, start_cpu, None, trainer.run["steps"]
    while not stop and time.monotonic() < slice_end:
        loss = trainer.step()
        smoothed = loss if smoothed is None else 0.98 * smoothed + 0.02 * loss
        if time.monotonic() - last_save >= settings.save_seconds:
            now = cpu_clock()
            trainer.add_cpu_time(now - last_cpu)
            last_cpu = now
            _save(job, trainer, settings.models_dir)
            last_save = time.monotonic()
    now = cpu_clock()
    trainer.add_cpu_time(now - last_cpu)
    if not stop and trainer.state.cpu_seconds - trainer.validated_at >= settings.validate_seconds:
        validate_into(job, trainer)
        log(f"{job.name}: validation {trainer.state.last_validation} (shipped {trainer.state.shipped_validation})")
    _save(job, trainer, settings.models_dir)
    steps = trainer.run["steps"] - steps0
    rate = steps / max(time.monotonic() - wall, 1e-9)
    log(f"{job.name}: +{steps} steps ({rate:.2f}/s) -> {trainer.state.steps:,}, loss~{smoothed if smoothed is not None else float('nan'):.4f}")
    return cpu_clock() - start_cpu

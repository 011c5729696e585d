"""The training campaign: resumable state, time shares, SIGKILL resumption, release rule (tiny models)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from campaign_tiny import TinyJob, ship  # noqa: E402

from restore.training.campaign.job import ShippedBudget  # noqa: E402
from restore.training.campaign.release import candidate_weights, release_model  # noqa: E402
from restore.training.campaign.report import CARD_BEGIN, status_table  # noqa: E402
from restore.training.campaign.runner import RunSettings, run_campaign  # noqa: E402
from restore.training.campaign.schedule import next_job  # noqa: E402
from restore.training.campaign.state import (  # noqa: E402
    CampaignState, load_average, load_state, read_bookkeeping, save_state)
from restore.training.campaign.trainer import Trainer, fresh_state  # noqa: E402
from restore.weights import read_manifest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    weights, models = tmp_path / "weights", tmp_path / "models"
    ship(weights)
    (models / "tiny").mkdir(parents=True)
    (models / "tiny" / "README.md").write_text("# tiny card\n")
    return weights, models


def test_state_round_trip_is_one_atomic_file(tmp_path: Path) -> None:
    state = CampaignState(name="m", steps=7, cpu_seconds=1.5, base={"steps": 5}, runs=[{"steps": 2, "cpu_seconds": 1.0}],
                          tensors={"ema.w": torch.arange(6.0).view(2, 3), "rng.x": torch.zeros(3, dtype=torch.uint8)})
    path = tmp_path / "campaign" / "m.safetensors"
    save_state(state, path)
    back = load_state(path)
    assert back.steps == 7 and back.runs == state.runs and torch.equal(back.tensors["ema.w"], state.tensors["ema.w"])
    assert read_bookkeeping(path)["steps"] == 7
    assert json.loads(path.with_suffix(".json").read_text())["steps"] == 7
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.json", "m.safetensors"]  # no temp file left
    assert load_state(tmp_path / "none.safetensors") is None


def test_schedule_shares_time_by_priority() -> None:
    jobs = [TinyJob("a", priority=2.0), TinyJob("b", priority=1.0)]
    spent: dict[str, float] = {}
    for _ in range(30):
        job = next_job(jobs, spent)
        spent[job.name] = spent.get(job.name, 0.0) + 1.0
    assert spent == {"a": 20.0, "b": 10.0}
    assert next_job(jobs, {}).name == "a"  # a run starts with the queue's first model


def test_fresh_state_counts_the_shipped_budget(dirs) -> None:
    weights, _ = dirs
    job = TinyJob(weights_dir=weights)
    state = fresh_state(job)
    assert state.steps == 100 and state.cpu_seconds == 60.0 and state.base["sha256"] == job.shipped_sha()


@pytest.mark.parametrize("store_moments", [True, False])
def test_resume_continues_the_count_and_the_weights(dirs, store_moments: bool) -> None:
    weights, models = dirs
    job = TinyJob(weights_dir=weights, store_moments=store_moments)
    trainer = Trainer(job, fresh_state(job), torch.device("cpu"), {})
    for _ in range(12):
        trainer.step()
    save_state(trainer.to_state(), job.state_path(models))
    back = Trainer(job, load_state(job.state_path(models)), torch.device("cpu"), {})
    assert back.state.steps == 112 and len(back.state.runs) == 2
    for a, b in zip(trainer.average.model.parameters(), back.average.model.parameters()):
        assert torch.equal(a, b)
    assert back.resumed_moments == store_moments
    assert back.learning_rate() == (job.recipe.lr if store_moments else job.recipe.lr / job.recipe.warmup)
    # The random streams continue where they were, not from the start.
    assert torch.equal(back.sampler.generator.get_state(), trainer.sampler.generator.get_state())


def test_an_average_kept_out_of_the_state_resumes_from_its_local_file(dirs) -> None:
    """Jobs that commit only fp16 weights keep the average in an ignored file; a clone restarts it from the weights."""
    weights, models = dirs
    job = TinyJob(weights_dir=weights, store_moments=False)
    job.store_fp16, job.commit_average = True, False
    run_campaign([job], RunSettings(minutes=0.02, slice_minutes=0.02, validate_seconds=1e9, models_dir=models),
                 log=lambda m: None)
    state = load_state(job.state_path(models))
    assert not state.group("ema") and not state.group("adam")
    assert all(v.dtype == torch.float16 for v in state.group("model").values())
    average = load_average(job.local_average_path(models), state.steps)
    assert average is not None and load_average(job.local_average_path(models), state.steps + 1) is None
    here = Trainer(job, state, torch.device("cpu"), {}, average=average)
    clone = Trainer(job, load_state(job.state_path(models)), torch.device("cpu"), {})
    for k, a in here.average.model.state_dict().items():
        assert torch.equal(a, average[k])  # this machine: the average continues
    for k, a in clone.average.model.state_dict().items():
        assert torch.equal(a, state.group("model")[k].float())  # elsewhere: it restarts from the weights
    chosen = candidate_weights(job, state, models, log=lambda m: None)  # what release ships on this machine
    assert all(torch.equal(chosen[k], v) for k, v in average.items())


def test_run_trains_saves_and_validates(dirs) -> None:
    weights, models = dirs
    job = TinyJob(weights_dir=weights)
    steps = run_campaign([job], RunSettings(minutes=0.03, slice_minutes=0.01, validate_seconds=0.0, models_dir=models),
                         log=lambda m: None)
    doc = read_bookkeeping(job.state_path(models))
    assert steps["tiny"] > 0 and doc["steps"] == 100 + steps["tiny"]
    assert doc["last_validation"]["loss"] < doc["shipped_validation"]["loss"]
    assert "`tiny`" in status_table([job], models)


def test_sigkill_loses_at_most_the_save_interval(dirs) -> None:
    """A real run in a subprocess, killed with SIGKILL, resumes from its last save."""
    weights, models = dirs
    save_seconds = 0.5
    cmd = [sys.executable, str(Path(__file__).parent / "campaign_tiny.py"), str(weights), str(models), "1.0", str(save_seconds)]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    path = TinyJob(weights_dir=weights).state_path(models)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (path.is_file() and read_bookkeeping(path)["steps"] > 100):
        time.sleep(0.1)
    time.sleep(1.2)  # a few more saves, then kill mid-run
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = read_bookkeeping(path)
    assert saved["steps"] > 100, proc.stderr.read().decode()
    age = time.time() - path.stat().st_mtime
    assert age <= save_seconds + 1.0  # the last save is at most one interval (plus a step) old
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # or a half-written temp file
    job = TinyJob(weights_dir=weights)
    steps = run_campaign([job], RunSettings(minutes=0.01, slice_minutes=0.01, validate_seconds=1e9, models_dir=models),
                         log=lambda m: None)
    assert read_bookkeeping(path)["steps"] == saved["steps"] + steps["tiny"]


def test_sigterm_saves_before_exiting(dirs) -> None:
    weights, models = dirs
    cmd = [sys.executable, str(Path(__file__).parent / "campaign_tiny.py"), str(weights), str(models), "1.0", "600"]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    path = TinyJob(weights_dir=weights).state_path(models)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and b"resumed" not in proc.stdout.readline():
        pass
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"stopped by signal" in out
    assert read_bookkeeping(path)["steps"] > 100  # saved on the signal, not only every 600 s


def test_release_only_when_better(dirs) -> None:
    weights, models = dirs
    job = TinyJob(weights_dir=weights)
    untrained = fresh_state(job)
    save_state(untrained, job.state_path(models))
    assert not release_model(job, [job], models, log=lambda m: None)  # the shipped weights themselves: no gain
    before = read_manifest(weights)["files"]["tiny.safetensors"]["sha256"]
    run_campaign([job], RunSettings(minutes=0.03, slice_minutes=0.03, validate_seconds=1e9, models_dir=models),
                 log=lambda m: None)
    assert release_model(job, [job], models, log=lambda m: None)
    manifest = read_manifest(weights)
    assert manifest["files"]["tiny.safetensors"]["sha256"] != before
    assert "steps" in manifest["models"]["tiny"]["training"]
    doc = read_bookkeeping(job.state_path(models))
    assert doc["releases"] and doc["shipped_validation"]["sha256"] == job.shipped_sha()
    assert CARD_BEGIN in (models / "tiny" / "README.md").read_text()
    # Released once: the same candidate no longer beats what is now shipped.
    assert not release_model(job, [job], models, log=lambda m: None)


def test_unknown_model_is_refused() -> None:
    from restore.training.campaign.queue import campaign_jobs, select

    with pytest.raises(SystemExit, match="unknown campaign model"):
        select(campaign_jobs(), ["cae-a9999"])


def test_shipped_budgets_match_the_weights() -> None:
    """Each queued model exists in weights/, and its budget is at least what its weights' JSON records."""
    from restore.training.campaign.queue import campaign_jobs

    for job in campaign_jobs():
        meta = job.shipped_config()["training"]
        released_by_campaign = "campaign_runs" in meta  # its JSON then holds the cumulative count
        assert isinstance(job.budget, ShippedBudget)
        assert released_by_campaign or job.budget.steps >= int(meta["steps"])


def test_release_refuses_while_a_run_trains(dirs) -> None:
    from restore.training.campaign.runner import run_lock

    weights, models = dirs
    job = TinyJob(weights_dir=weights)
    save_state(fresh_state(job), job.state_path(models))
    run_lock(models).write_text(str(os.getpid()))  # a live process holds the lock
    with pytest.raises(SystemExit, match="is training"):
        release_model(job, [job], models, log=lambda m: None)
    run_lock(models).write_text("999999999")  # a dead one does not
    assert not release_model(job, [job], models, log=lambda m: None)

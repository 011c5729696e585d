"""``campaign release MODEL``: ship a model's weight average when it beats the shipped weights on validation."""
from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

from restore.training.campaign.job import MODELS_DIR, Job
from restore.training.campaign.report import card_section, write_card_section
from restore.training.campaign.runner import running_pid
from restore.training.campaign.state import load_average, load_state, save_state
from restore.training.release import release as write_release
from restore.weights import read_manifest, save_model


def _training_line(state) -> str:
    runs = len(state.runs)
    return (f"{state.cpu_seconds / 3600:.2f} CPU-h, {state.steps:,} steps (shipped recipe {state.base['steps']:,} steps, "
            f"then {runs} training-campaign run{'s' if runs != 1 else ''}; no GPU)")


def release_model(job: Job, jobs: list[Job], models_dir: Path = MODELS_DIR, log=print) -> bool:
    """Validate candidate and shipped weights now; ship the candidate only if it wins by the job's margin.

    Writes ``weights/<name>.*`` and the manifest (sha256, training line, the
    validation score; scores measured on the old weights are dropped, to be
    re-measured) and the model card's campaign section.
    Returns whether it released.
    """
    pid = running_pid(models_dir)
    if pid is not None:
        raise SystemExit(f"a campaign run (PID {pid}) is training; stop it (kill -TERM {pid}) before a release")
    path = job.state_path(models_dir)
    state = load_state(path)
    if state is None:
        raise SystemExit(f"{job.name} has no campaign state at {path}: run `campaign run` first")
    candidate = job.new_model()
    candidate.load_state_dict(candidate_weights(job, state, models_dir, log))
    cand, shipped = job.validate(candidate), job.validate(job.shipped_model())
    gain = shipped["loss"] - cand["loss"]
    log(f"{job.name}: candidate {cand}; shipped {shipped}; gain {gain:+.5f} (needs > {job.recipe.release_margin})")
    if gain <= job.recipe.release_margin:
        log(f"{job.name}: not released: the candidate does not beat the shipped weights on validation")
        return False
    old_models = read_manifest(job.weights_dir).get("models", {})
    config = job.shipped_config()["config"]
    meta = {"steps": state.steps, "cpu_seconds": round(state.cpu_seconds), "campaign_runs": len(state.runs),
            "recipe": "shipped recipe, then the training campaign (models/<card>/campaign)", "schedule": str(state.schedule)}
    with tempfile.TemporaryDirectory() as tmp:
        stem = Path(tmp) / job.name
        save_model(candidate, config, stem, meta=meta)
        card = dict(old_models.get(job.name, {}))
        card["training"] = _training_line(state)
        card["scores"] = {"BSDS500 val (32, campaign validation)": _validation_text(cand)}
        write_release(stem, job.name, card, folder=job.weights_dir, fp16=job.release_fp16)
    # Score what was written (fp16 storage included), and make it the new reference.
    stored = job.validate(job.shipped_model())
    state.shipped_validation = {"sha256": job.shipped_sha(), **stored}
    state.releases.append({"date": datetime.date.today().isoformat(), "steps": state.steps,
                           "cpu_seconds": round(state.cpu_seconds), "validation": stored, "previous": shipped})
    save_state(state, path)
    card_jobs = [j for j in jobs if j.card == job.card]
    write_card_section(models_dir / job.card / "README.md", card_section(card_jobs, models_dir))
    log(f"{job.name}: released ({stored}); re-run the benchmarks its card lists for the scores on test sets")
    return True


def candidate_weights(job: Job, state, models_dir: Path, log) -> dict:
    """The weight average: from the state, or its local file; the weights themselves when neither is here."""
    average = state.group("ema") or load_average(job.local_average_path(models_dir), state.steps)
    if average:
        return average
    log(f"{job.name}: no weight average for this state on this machine; the candidate is the weights themselves")
    return state.group("model")


def _validation_text(doc: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in doc.items() if k != "images")

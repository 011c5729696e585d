"""The campaign's command line: run, status, release, adopt.

    python -m restore.training.campaign run --minutes 170 --threads 1      # a session's background training
    python -m restore.training.campaign status
    python -m restore.training.campaign release cae-a0483
    python -m restore.training.campaign adopt cae-a0483 runs/cae-a0483      # a run of restore.training.cae joins
"""
from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from restore.training.campaign.job import DATA_ROOT, MODELS_DIR, REPO
from restore.training.campaign.queue import campaign_jobs, select
from restore.training.campaign.release import release_model
from restore.training.campaign.report import card_section, status_table, write_card_section
from restore.training.campaign.runner import RunSettings, run_campaign
from restore.training.campaign.state import load_state, save_state
from restore.training.campaign.trainer import fresh_state
from restore.weights import WEIGHTS_DIR, load_state as load_weights, read_manifest


def _log(message: str) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", flush=True)


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m restore.training.campaign", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA_ROOT, help="the shared data folder (BSDS500, Train400, CBSD68)")
    ap.add_argument("--models-dir", type=Path, default=MODELS_DIR, help="where models/<card>/campaign/ states live")
    ap.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR, help="the shipped weights")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train the queue by priority for a wall-clock budget")
    run.add_argument("--minutes", type=_positive(float), required=True, help="wall-clock budget")
    run.add_argument("--threads", type=_positive(int), default=1, help="torch threads (1 while people work here)")
    run.add_argument("--device", default="cpu", help="cpu or cuda")
    run.add_argument("--batch-scale", type=_positive(int), default=1,
                     help="batches this many times each recipe's (on a GPU: 8 or more)")
    run.add_argument("--models", nargs="*", default=None, help="train only these (default: the whole queue)")
    run.add_argument("--slice-minutes", type=_positive(float), default=5.0, help="one model's turn")
    run.add_argument("--save-seconds", type=_positive(float), default=600.0, help="longest time between saves")
    run.add_argument("--validate-seconds", type=_positive(float), default=900.0, help="training CPU seconds between validations")
    status = sub.add_parser("status", help="steps, CPU-hours and validation per model")
    status.add_argument("--cards", action="store_true", help="also write the table into each model card's campaign section")
    rel = sub.add_parser("release", help="ship a model's weight average if it beats the shipped weights")
    rel.add_argument("model")
    adopt = sub.add_parser("adopt", help="start a model's state from a run of its per-model training script")
    adopt.add_argument("model")
    adopt.add_argument("run", type=Path, help="the run's stem (its .safetensors and .json)")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    jobs = campaign_jobs(args.data, args.weights_dir)
    if args.command == "run":
        settings = RunSettings(minutes=args.minutes, threads=args.threads, device=args.device,
                               slice_minutes=args.slice_minutes, save_seconds=args.save_seconds,
                               validate_seconds=args.validate_seconds, models_dir=args.models_dir,
                               batch_scale=args.batch_scale)
        steps = run_campaign(select(jobs, args.models), settings, log=_log)
        _log("run done: " + ", ".join(f"{k} +{v:,}" for k, v in steps.items()))
        print(status_table(jobs, args.models_dir))
    elif args.command == "status":
        print(status_table(jobs, args.models_dir))
        if args.cards:
            for card in sorted({j.card for j in jobs}):
                write_card_section(args.models_dir / card / "README.md", card_section([j for j in jobs if j.card == card], args.models_dir))
    elif args.command == "release":
        job = select(jobs, [args.model])[0]
        before = read_manifest(args.weights_dir).get("models", {})
        if not release_model(job, jobs, args.models_dir, log=_log):
            raise SystemExit(1)
        _refresh_readme_table(REPO / "README.md", before, read_manifest(args.weights_dir)["models"])
    elif args.command == "adopt":
        adopt(select(jobs, [args.model])[0], args.run, args.models_dir)


def adopt(job, run: Path, models_dir: Path) -> None:
    """A model's first state from a run of ``restore.training.<model>`` that started from its shipped weights."""
    path = job.state_path(models_dir)
    if load_state(path) is not None:
        raise SystemExit(f"{job.name} already has a campaign state ({path}); adopting would lose its count")
    meta = json.loads(run.with_suffix(".json").read_text())["training"]
    state = fresh_state(job)
    # The run's file holds its weight average: the campaign's weights and average both start from it.
    state.tensors = {f"model.{k}": v for k, v in load_weights(run.with_suffix(".safetensors")).items()}
    cpu = float(meta["train_seconds"]) * int(meta.get("threads", 1))
    state.runs.append({"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       "steps": int(meta["steps"]), "cpu_seconds": cpu, "device": "cpu", "threads": meta.get("threads", 1),
                       "adopted_from": f"{run.name}: {json.dumps(meta)}"})
    state.steps += int(meta["steps"])
    state.cpu_seconds += cpu
    if job.store_fp16:
        state.tensors = {k: v.half() if v.is_floating_point() else v for k, v in state.tensors.items()}
    save_state(state, path)
    _log(f"{job.name}: adopted {run} at step {state.steps:,} ({state.cpu_seconds / 3600:.2f} CPU-h)")


def _refresh_readme_table(readme: Path, old: dict, new: dict) -> None:
    """README carries ``restore models --markdown`` verbatim (a test checks it): swap the old table for the new."""
    from restore.weights_table import markdown_table

    if not readme.is_file():
        return
    text, before = readme.read_text(encoding="utf-8"), markdown_table(old)
    if before not in text:
        _log(f"note: README's models table was already stale; paste `restore models --markdown` into {readme}")
        return
    readme.write_text(text.replace(before, markdown_table(new)), encoding="utf-8")


if __name__ == "__main__":
    main()

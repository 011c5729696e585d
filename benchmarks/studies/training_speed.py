"""Seconds per training sample before and after the step rewrite, per model, with FLOPs and GFLOP/s.

    git worktree add /tmp/restore-before a63b0c1
    python benchmarks/studies/training_speed.py --before-code /tmp/restore-before --data ../shared/data \\
        --threads 1 --out benchmarks/results/training_speed

"before" imports ``restore`` from ``--before-code`` (the commit before the rewrite; a child process with
that checkout first on PYTHONPATH) and times the loop
body its training scripts ran (fp32, crops cut in Python, Adam, EMA); "after" times
``restore.training.campaign``'s ``Trainer.step`` (the campaign's own step: crops gathered by
``PatchSampler``, the models' fast losses, fused Adam, multi-tensor EMA). Same batch, crop and model
per row. FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over one step (forward + backward).
Take it on an otherwise idle machine (stop the campaign first); the load is recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODELS = {  # name: (steps per timing, batch, crop)
    "cae-a0483": (30, 4, 128),
    "cae-a0483-var": (30, 4, 128),
    "lidia-gray-s25": (4, 4, 56),
    "lidia-color-s25": (3, 4, 56),
}


def _timed(step, steps: int, repeat: int) -> float:
    """Median seconds per step over ``repeat`` timings of ``steps`` steps, after 2 warm-up steps."""
    for _ in range(2):
        step()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - t) / steps)
    return statistics.median(times)


def _flops(step) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def legacy_step(name: str, data: Path):
    """The loop body of the per-model training scripts before the rewrite (fp32 throughout)."""
    import random

    import torch

    from restore.training.data import WeightAverage, random_batch, training_images
    from restore.weights import WEIGHTS_DIR, load_state

    rng = random.Random(0)
    _, batch, crop = MODELS[name]
    if name.startswith("cae"):
        from restore.nets.cae import CaeConfig, CompressiveAutoencoder
        from restore.training.cae import rd_loss

        images = training_images([data / "BSDS500/train", data / "BSDS500/test"], 3, crop)
        cae = CompressiveAutoencoder(CaeConfig())
        cae.load_state_dict(load_state(WEIGHTS_DIR / "cae-a0483.safetensors"))
    if name == "cae-a0483":
        model, average, opt = cae, WeightAverage(cae, 0.999), torch.optim.Adam(cae.parameters(), lr=2e-4)

        def loss_fn():
            x = random_batch(images, batch, crop, rng)
            return rd_loss(model(x), x, 0.0483)[0]
    elif name == "cae-a0483-var":
        from restore.nets.variance_decoder import VarianceDecoder, gaussian_nll

        cae.eval().requires_grad_(False)
        model = VarianceDecoder(CaeConfig())
        model.load_state_dict(load_state(WEIGHTS_DIR / "cae-a0483-var.safetensors"))
        average, opt = WeightAverage(model, 0.999), torch.optim.Adam(model.parameters(), lr=2e-4)

        def loss_fn():
            x = random_batch(images, batch, crop, rng)
            with torch.no_grad():
                z = cae.g_a(x)
                z = z + torch.empty_like(z).uniform_(-0.5, 0.5)
                mean = cae.decode(z)
            return gaussian_nll(x, mean, model(z))
    else:
        from restore.nets.lidia import Lidia, LidiaConfig
        from restore.training.lidia import log_mse_loss, to_model_units

        gray = "gray" in name
        cfg = LidiaConfig.gray() if gray else LidiaConfig.color()
        folders = [data / "Train400"] if gray else [data / "BSDS500/train", data / "BSDS500/test"]
        images = training_images(folders, cfg.channels, crop)
        model = Lidia(cfg)
        model.load_state_dict(load_state(WEIGHTS_DIR / f"{name}.safetensors"))
        average, opt = WeightAverage(model, 0.995), torch.optim.Adam(model.parameters(), lr=2e-4)

        def loss_fn():
            clean = random_batch(images, batch, crop, rng)
            noisy = clean + 25 / 255 * torch.randn_like(clean)
            y, x = to_model_units(noisy, clean)
            return log_mse_loss(model(y), x)

    def step():
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 20.0)
        opt.step()
        average.update(model)

    return step


def campaign_step(name: str, data: Path):
    """The campaign's step for ``name`` from its shipped weights."""
    import torch

    from restore.training.campaign.queue import campaign_jobs, select
    from restore.training.campaign.trainer import Trainer, fresh_state

    job = select(campaign_jobs(data), [name])[0]
    trainer = Trainer(job, fresh_state(job), torch.device("cpu"), {})
    trainer.steps_since_start = 10**6  # past the warm-up: full learning rate, as in a long run
    return trainer.step


def measure(mode: str, data: Path, threads: int, repeat: int, names: list[str]) -> list[dict]:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rows = []
    for name in names:
        steps, batch, crop = MODELS[name]
        step = (legacy_step if mode == "before" else campaign_step)(name, data)
        flops = _flops(step)
        seconds = _timed(step, steps, repeat)
        rows.append({"model": name, "mode": mode, "batch": batch, "crop": crop, "threads": threads,
                     "ms_per_step": round(1000 * seconds, 1), "samples_per_s": round(batch / seconds, 2),
                     "gflop_per_step": round(flops / 1e9, 3), "gflops": round(flops / seconds / 1e9, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _machine() -> dict:
    from restore.bench.provenance import cpu_model

    return {"cpu": cpu_model(), "load_1min_before": round(os.getloadavg()[0], 2)}


def _check_source(root: Path | None, mode: str) -> None:
    """Refuse to time the wrong code: the parent puts ``root`` first on PYTHONPATH, so ``restore`` comes from there."""
    import restore

    where = Path(restore.__file__).resolve()
    if root is None or not where.is_relative_to(root.resolve()):
        raise SystemExit(f"--mode {mode}: restore was imported from {where}, not from {root}; "
                         f"run with PYTHONPATH={root} (the parent process does)")


def write_table(rows: list[dict], out: Path, args: argparse.Namespace, machine: dict) -> None:
    before = {r["model"]: r for r in rows if r["mode"] == "before"}
    after = {r["model"]: r for r in rows if r["mode"] == "after"}
    git = ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True).stdout.strip()
    lines = [
        "# Training step speed, before and after the rewrite",
        "",
        f"Machine: {machine['cpu']}, {args.threads} thread(s); 1-min load before the run {machine['load_1min_before']} "
        f"(the training campaign stopped). {datetime.now(timezone.utc):%Y-%m-%d}, commit {commit}; before = the code of "
        f"`{args.before_label}`.",
        "",
        "Reproduce: `git worktree add /tmp/restore-before a63b0c1 && python benchmarks/studies/training_speed.py "
        f"--before-code /tmp/restore-before --data ../shared/data --threads {args.threads} --out {args.out}`",
        "",
        "| model | batch x crop | before: ms/step | samples/s | GFLOP/s | after: ms/step | samples/s | GFLOP/s | GFLOP/step "
        "| per-sample speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in MODELS:
        b, a = before.get(name), after.get(name)
        if not (a and b):
            continue
        lines.append(f"| `{name}` | {a['batch']} x {a['crop']}^2 | {b['ms_per_step']} | {b['samples_per_s']} | {b['gflops']} | "
                     f"{a['ms_per_step']} | {a['samples_per_s']} | {a['gflops']} | {a['gflop_per_step']} | "
                     f"**{b['ms_per_step'] / a['ms_per_step']:.2f}x** |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "commit": commit, "rows": rows}, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder")
    ap.add_argument("--before-code", type=Path, help="a checkout of the commit before the rewrite")
    ap.add_argument("--before-label", default="a63b0c1")
    ap.add_argument("--mode", choices=["before", "after"], help="(internal) measure one side only")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = ap.parse_args()
    if args.mode:
        _check_source(args.before_code if args.mode == "before" else REPO, args.mode)
        print("ROWS " + json.dumps(measure(args.mode, args.data.resolve(), args.threads, args.repeat, args.models)), flush=True)
        return
    if not (args.before_code and args.out):
        ap.error("--before-code and --out are needed")
    machine = _machine()
    rows = []
    for mode in ("before", "after"):
        env = {**os.environ, "PYTHONPATH": str(args.before_code if mode == "before" else REPO)}
        cmd = [sys.executable, __file__, "--mode", mode, "--data", str(args.data), "--threads", str(args.threads),
               "--repeat", str(args.repeat), "--models", *args.models]
        if args.before_code:
            cmd += ["--before-code", str(args.before_code)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        rows += json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("ROWS "))[5:])
    write_table(rows, args.out, args, machine)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()

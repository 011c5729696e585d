"""Speed of every restorer and task (issue 24): seconds per image and per megapixel, peak memory, CLI start-up.

One run measures, on one fixed set of real images, every restorer x task it
supports x image it takes, through the Python API and the command line, with
BM3D / CBM3D and OpenCV's NLM as peers, the CLI's start-up cost apart, and
(``--load``) chosen models again with another 2-thread job running. It writes
``OUT.md`` and ``OUT.json`` with the machine, its load before and after, torch's
threads, the commit and whether the training campaign was running.

The reference table (an otherwise idle machine: stop the campaign first):

    python benchmarks/speed.py --load lidia,vble --out benchmarks/results/speed

Slow rows are chosen with ``--models`` (bench specs: ``vble:samples=10``), ``--tasks``,
``--sizes``, ``--paths``, ``--repeats``; the 1024 x 1024 image runs only for rows whose
256 x 256 time predicts at most ``--large-limit`` seconds per image there.
``--quick`` (tests): tiny synthetic images, 1 repeat, no warm-up.

Every measurement runs in a fresh process, so that its peak resident memory
(``ru_maxrss`` of that child, from ``os.wait4``) is its own: the API row's
process imports the toolkit, loads the model and runs warm-up + repeats; each
CLI run is one ``restore TASK`` process.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RESTORE_DATA", REPO.parent / "shared" / "data"))
# name -> (what it is, file under the data folder, central crop side or None for the whole image)
IMAGES = {
    "gray": ("BSD68 test004.png, gray 481 x 321 (whole image)", "BSD68/test004.png", None),
    "rgb256": ("CBSD68 101085.png, RGB, central 256 x 256 crop", "CBSD68/101085.png", 256),
    "rgb1024": ("Urban100 img_006.png, RGB 1024 x 1024 (native size, whole image)", "Urban100_first20/img_006.png", None),
}
QUICK_SIZES = {"gray": (1, 40, 56), "rgb256": (3, 32, 32), "rgb1024": (3, 64, 64)}
# task -> (restore.bench.cases.Setting keywords, CLI flags, what it is)
TASKS = {
    "denoise": ({"sigma": 25.0}, ["--sigma", "25"], "Gaussian noise sigma 25 (0-255)"),
    "deblur": ({"sigma": 2.55, "kernel": "gaussian:1.6"}, ["--kernel", "gaussian:1.6", "--sigma", "2.55"],
               "Gaussian blur std 1.6 px (circular) + noise sigma 2.55"),
    "sr": ({"scale": 4}, ["--scale", "4"], "x4 from the bicubic (antialiased) downsampled image, rounded to 8 bits"),
    "inpaint": ({"missing": 0.5}, ["--mask", "{mask}"], "50% of pixels missing (same in every channel), no noise"),
}
PEERS = {"bm3d": "BM3D / CBM3D, bm3d package (restore bench's peer: profile 'np', sigma_psd = sigma/255)",
         "opencv-nlm": "cv2.fastNlMeansDenoising called directly with nlm's parameters (h = c(sigma) sigma, 5 / 21)"}
BUSY = """
import json, signal, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
a, n = torch.randn(1024, 1024), 0
print("ready", flush=True)
t0 = time.perf_counter()
while not stop:
    a @ a
    n += 1
print(json.dumps({"matmuls_per_s": n / (time.perf_counter() - t0)}), flush=True)
"""
BUSY_WHAT = "a torch 1024 x 1024 fp32 matmul loop in another process, torch.set_num_threads({threads})"


# ---------------------------------------------------------------- measuring processes

# Spawns the measured process from a small interpreter (about 10 MiB): a child's ru_maxrss starts at the RSS of
# the process it was forked from, which for this harness (torch imported) is some 500 MiB.
LAUNCH = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    json.dump({"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "rc": os.waitstatus_to_exitcode(status)}, f)
"""


def measure(cmd: list[str], env: dict, timeout: float) -> dict:
    """Run one process: its wall time, peak RSS (its own ru_maxrss), exit code, stdout and last stderr line."""
    with tempfile.TemporaryDirectory() as tmp:
        facts = Path(tmp) / "facts.json"
        launcher = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCH, str(facts), *cmd], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, cwd=REPO, text=True, start_new_session=True)
        try:
            stdout, stderr = launcher.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, 9)  # the launcher's own session: it and the measured process
            launcher.communicate()
            return {"wall_s": timeout, "peak_rss_mib": None, "rc": 124, "stdout": "", "error": f"timed out after {timeout:g} s"}
        if not facts.is_file():
            return {"wall_s": None, "peak_rss_mib": None, "rc": launcher.returncode, "stdout": stdout,
                    "error": (stderr.strip().splitlines() or ["launcher failed"])[-1][:300]}
        r = json.loads(facts.read_text())
    r.update(stdout=stdout, error=(stderr.strip().splitlines() or [""])[-1][:300] if r["rc"] else None)
    return r


def repeated(cmd: list[str], env: dict, warmup: int, repeats: int, timeout: float) -> dict:
    """Median wall time of ``repeats`` runs after ``warmup`` ones; the largest peak RSS."""
    runs = [measure(cmd, env, timeout) for _ in range(warmup + repeats)]
    failed = next((r for r in runs if r["rc"] != 0), None)
    if failed:
        return {"error": f"exit {failed['rc']}: {failed['error']}"}
    timed = runs[warmup:]
    return {"s": statistics.median(r["wall_s"] for r in timed), "runs_s": [r["wall_s"] for r in timed],
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs)}


def worker(job: dict, env: dict, timeout: float) -> dict:
    """A fresh process runs ``job`` (API, restore.run or a peer) and reports its times; add its peak RSS."""
    r = measure([sys.executable, __file__, "--worker", json.dumps(job)], env, timeout)
    if r["rc"] != 0:
        return {"error": f"exit {r['rc']}: {r['error']}"}
    line = [s for s in r["stdout"].splitlines() if s.startswith("RESULT ")][-1]
    return {**json.loads(line[7:]), "peak_rss_mib": r["peak_rss_mib"]}


def run_job(job: dict) -> dict:
    """In the worker process: load once, then warm-up + repeats of one restoration, timed."""
    import torch

    from restore.io import read_image
    from restore.operators import make_operator

    if job["threads"]:
        torch.set_num_threads(job["threads"])
    task, setting = job["task"], TASKS[job["task"]][0]
    y = read_image(job["input"]).pixels
    mask = (read_image(job["mask"]).pixels[:, :1] > 0.5).float() if job["mask"] else None
    op = make_operator(task, sigma=setting.get("sigma", 0.0) / 255, kernel=setting.get("kernel"),
                       scale=setting.get("scale"), mask=mask)
    name, options = job["name"], job["options"]
    t0 = time.perf_counter()
    if job["kind"] == "api":
        import restore

        r = restore.load(name, device=job["device"], progress=False, **options)
        y, op = y.to(job["device"]), op.to(job["device"])

        def once():
            return r.restore(y, op, generator=torch.Generator(job["device"]).manual_seed(0)).image.cpu()
    elif job["kind"] == "run":
        import restore

        out = Path(tempfile.mkdtemp()) / "out.png"
        sigma = setting.get("sigma", 0.0) / 255 if task != "inpaint" else None

        def once():
            report = restore.run(job["input"], task=task, model=name, output=out, sigma=sigma, kernel=setting.get("kernel"),
                                 scale=setting.get("scale"), mask=job["mask"], device=job["device"], seed=0,
                                 overwrite=True, progress=False, log=False, **options)
            if report.failed:
                raise RuntimeError(f"restore.run failed: {report}")
    elif name == "bm3d":
        from restore.bench.methods import build_method

        method = build_method("bm3d", "denoise", "cpu")

        def once():
            return method.run(y, op, 0)[0]
    else:  # opencv-nlm: the library nlm wraps, called directly with its parameters
        import cv2
        import numpy as np

        from restore.restorers.nlm import SEARCH_WINDOW, TEMPLATE_WINDOW, h_for_sigma

        h = h_for_sigma(setting["sigma"], y.shape[1])

        def once():
            u8 = np.ascontiguousarray((y[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy().squeeze())
            return cv2.fastNlMeansDenoising(u8, None, h, TEMPLATE_WINDOW, SEARCH_WINDOW)
    load_s = time.perf_counter() - t0
    rss_loaded = _vm("VmRSS")
    calls = []
    for _ in range(job["warmup"] + job["repeats"]):
        t = time.perf_counter()
        once()
        if job["device"].startswith("cuda"):
            torch.cuda.synchronize()
        calls.append(time.perf_counter() - t)
    times = calls[job["warmup"]:]
    # The first call also loads what restorers load lazily (weights, caches): shown apart from the median.
    return {"s": statistics.median(times), "runs_s": times, "first_s": calls[0], "load_s": load_s,
            "rss_after_load_mib": rss_loaded, "torch_threads": torch.get_num_threads()}


def _vm(key: str) -> float | None:
    """A /proc/self/status memory figure in MiB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# ---------------------------------------------------------------- inputs

def prepare_inputs(folder: Path, sizes: list[str], tasks: list[str], quick: bool) -> dict:
    """Degrade each image for each task (restore.bench.cases, seed 0) and save it as the CLI reads it: 8-bit PNG."""
    import torch

    from restore.bench.cases import Setting, degrade
    from restore.bench.crops import centre_crop
    from restore.io import read_image, write_image

    cases = {}
    for size in sizes:
        if quick:
            c, h, w = QUICK_SIZES[size]
            yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            clean = torch.stack([0.5 + 0.3 * torch.sin(xx / (3 + k) + yy / (5 + k)) for k in range(c)])[None].float()
            what = f"synthetic {w} x {h}, {c} channel(s) (--quick)"
        else:
            what, rel, crop = IMAGES[size]
            clean = read_image(DATA / rel).pixels
            clean = centre_crop(clean, crop) if crop else clean
        for task in tasks:
            case = degrade(Setting(task, **TASKS[task][0]), clean, seed=0, index=0)
            stem = folder / f"{size}-{task}"
            entry = {"input": str(write_image(f"{stem}.png", case.degraded.clamp(0, 1), overwrite=True)), "mask": None,
                     "out_shape": list(case.clean.shape[-2:]), "channels": int(clean.shape[1]), "image": what}
            if task == "inpaint":
                entry["mask"] = str(write_image(f"{stem}-mask.png", case.operator.mask, overwrite=True))
            cases[(size, task)] = entry
    return cases


# ---------------------------------------------------------------- the machine

def machine(device: str) -> dict:
    """CPU, cores, memory, versions, commit, load and the campaign's processes."""
    from restore.bench.provenance import git_commit, machine_info, now_utc

    info = machine_info(device)
    mem = next((ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")), None)
    info.update(date=now_utc(), commit=git_commit(), memory_gib=round(int(mem) / 2**20, 1) if mem else None,
                usable_cores=len(os.sched_getaffinity(0)), platform=sys.platform)
    return info


def campaign_processes() -> list[str]:
    """Other processes that look like the training campaign or other training (pid: command), from /proc."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if "restore.training" in cmd or "campaign" in cmd:
            found.append(f"{proc.name}: {cmd[:120]}")
    return sorted(found)


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# ---------------------------------------------------------------- the run

def parse_models(text: str) -> list[tuple[str, str, dict]]:
    """Bench specs -> (spec, name, options); peers by name."""
    from restore.bench.methods import parse_spec, split_specs

    out = []
    for spec in split_specs(text):
        name, options = parse_spec(spec)
        out.append((spec, name, options))
    return out


def cli_command(task: str, case: dict, name: str, options: dict, out: Path, device: str, tile: int | None) -> list[str]:
    flags = [f.replace("{mask}", case["mask"] or "") for f in TASKS[task][1]]
    extra = [x for k, v in options.items() for x in ("-O", f"{k}={v}")] + (["--tile", str(tile)] if tile is not None else [])
    restore_cli = Path(sys.executable).with_name("restore")
    head = [str(restore_cli)] if restore_cli.exists() else [sys.executable, "-m", "restore.cli"]
    return [*head, task, case["input"], "-o", str(out), "--model", name, "--seed", "0", "--device", device, "-q",
            "--overwrite", *flags, *extra]


def startup_rows(env: dict, warmup: int, repeats: int, timeout: float) -> list[dict]:
    restore_cli = Path(sys.executable).with_name("restore")
    cli = [str(restore_cli)] if restore_cli.exists() else [sys.executable, "-m", "restore.cli"]
    rows = []
    for what, cmd in (("restore --help", [*cli, "--help"]), ("restore models", [*cli, "models"]),
                      ("python -c 'import torch'", [sys.executable, "-c", "import torch"]),
                      ("python -c 'import restore.restorers' (torch + every restorer)",
                       [sys.executable, "-c", "import restore.restorers"])):
        rows.append({"what": what, **repeated(cmd, env, warmup, repeats, timeout)})
    return rows


def busy_job(threads: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", BUSY, str(threads)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)  # let it reach full speed
    return proc


def stop_busy(proc: subprocess.Popen) -> float | None:
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    try:
        return round(json.loads(out.strip().splitlines()[-1])["matmuls_per_s"], 2)
    except (ValueError, IndexError, KeyError):
        return None


def benchmark(args: argparse.Namespace) -> dict:
    from restore.catalogue import entries

    catalogue = entries()
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    meta = {"machine": machine(args.device), "load_before": load_average(), "campaign_before": campaign_processes(),
            "note": args.note, "quick": args.quick, "command": " ".join(sys.argv),
            "protocol": {"warmup": args.warmup, "repeats": args.repeats, "paths": args.paths, "threads": args.threads,
                         "large_limit_s": args.large_limit, "cli_tile": args.cli_tile, "device": args.device}}
    folder = Path(tempfile.mkdtemp(prefix="restore-speed-"))
    cases = prepare_inputs(folder, args.sizes, args.tasks, args.quick)
    result = {"meta": meta, "images": {s: cases[(s, args.tasks[0])]["image"] for s in args.sizes},
              "tasks": {t: TASKS[t][2] for t in args.tasks}, "rows": [], "loaded": [], "skipped": []}
    result["startup"] = startup_rows(env, args.warmup, max(args.repeats, 1), args.timeout)
    models = parse_models(args.models)
    for spec, name, options in models:
        for task in args.tasks:
            if name in PEERS:
                if task != "denoise" or options:
                    continue
            elif name not in catalogue:
                raise SystemExit(f"unknown model {name!r}; known: {', '.join(sorted(catalogue))}, {', '.join(PEERS)}")
            elif task not in catalogue[name].tasks:
                continue
            for size in args.sizes:
                case = cases[(size, task)]
                channels = catalogue[name].channels if name in catalogue else (1, 3)
                if channels is not None and case["channels"] not in channels:
                    continue
                row = {"model": spec, "task": task, "size": size, "out_hw": case["out_shape"],
                       "mp": case["out_shape"][0] * case["out_shape"][1] / 1e6}
                why = _too_slow(result["rows"], spec, task, size, row["mp"], args.large_limit)
                if why:
                    result["skipped"].append({**row, "why": why})
                    continue
                print(f"[speed] {spec} {task} {size}", file=sys.stderr, flush=True)
                job = {"name": name, "options": options, "task": task, "input": case["input"], "mask": case["mask"],
                       "device": args.device, "threads": args.threads, "warmup": args.warmup, "repeats": args.repeats}
                kinds = ["peer"] if name in PEERS else [p for p in args.paths if p in ("api", "run")]
                for kind in kinds:
                    row["api" if kind == "peer" else kind] = worker({**job, "kind": kind}, env, args.timeout)
                if "cli" in args.paths and name not in PEERS:
                    cmd = cli_command(task, case, name, options, folder / f"out-{size}-{task}.png", args.device, args.cli_tile)
                    row["cli"] = {**repeated(cmd, env, args.warmup, args.repeats, args.timeout), "command": _short(cmd)}
                result["rows"].append(row)
                save(result, args.out, partial=True)
    if args.load:
        result["loaded"] = under_load(args, env, cases, result)
    meta["load_after"], meta["campaign_after"] = load_average(), campaign_processes()
    return result


def save(result: dict, out: Path, partial: bool = False) -> None:
    """OUT.json and OUT.md; ``partial``: after each row, so that an interrupted run keeps what it measured."""
    result["meta"]["partial"] = partial
    if partial:
        result["meta"].setdefault("load_after", load_average())
        result["meta"].setdefault("campaign_after", [])
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".json", json.dumps(result, indent=1) + "\n"), (".md", markdown(result))):
        tmp = out.with_suffix(suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(out.with_suffix(suffix))
    if partial:
        del result["meta"]["load_after"], result["meta"]["campaign_after"]


def under_load(args: argparse.Namespace, env: dict, cases: dict, result: dict) -> list[dict]:
    """The API rows of ``--load`` models again, with a 2-thread busy job running beside them."""
    busy = busy_job(args.load_threads, env)
    time.sleep(3)
    alone = stop_busy(busy)
    out = result["loaded"]
    for spec in (s for s, _, _ in parse_models(args.load)):
        for row in (r for r in result["rows"] if r["model"] == spec and "s" in r.get("api", {})):
            print(f"[speed] under load: {spec} {row['task']} {row['size']}", file=sys.stderr, flush=True)
            name, options = parse_models(spec)[0][1:]
            case = cases[(row["size"], row["task"])]
            job = {"name": name, "options": options, "task": row["task"], "input": case["input"], "mask": case["mask"],
                   "device": args.device, "threads": args.threads, "warmup": args.warmup, "repeats": args.repeats,
                   "kind": "api"}
            busy = busy_job(args.load_threads, env)
            loaded = worker(job, env, args.timeout)
            out.append({"model": spec, "task": row["task"], "size": row["size"], "mp": row["mp"], "idle": row["api"],
                        "loaded": loaded, "busy_alone_matmuls_per_s": alone, "busy_matmuls_per_s": stop_busy(busy),
                        "busy_job": BUSY_WHAT.format(threads=args.load_threads)})
            save(result, args.out, partial=True)
    return out


def _too_slow(rows: list[dict], spec: str, task: str, size: str, mp: float, limit: float) -> str | None:
    """Why the 1024 x 1024 image is skipped for this row: its 256 x 256 time predicts more than ``limit`` s there."""
    if size != "rgb1024":
        return None
    small = next((r for r in rows if r["model"] == spec and r["task"] == task and r["size"] == "rgb256"), None)
    if small is None or "s" not in small.get("api", {}):
        return None
    predicted = small["api"]["s"] / small["mp"] * mp
    if predicted > limit:
        return f"predicted {predicted:.0f} s per image from the 256 x 256 row > --large-limit {limit:g} s"
    return None


def _short(cmd: list[str]) -> str:
    return " ".join(Path(c).name if os.sep in c else c for c in cmd)


# ---------------------------------------------------------------- the report

def _f(v: float | None, digits: int = 3) -> str:
    if v is None:
        return ""
    return f"{v:.{digits}g}" if abs(v) < 10 ** digits else f"{v:.0f}"


def _cell(m: dict | None, key: str = "s", per_mp: float | None = None) -> str:
    if not m:
        return ""
    if "error" in m:
        return "failed"
    v = m.get(key)
    return _f(v / per_mp if per_mp and v is not None else v)


def contended(result: dict) -> str | None:
    """Why this run is not a reference table, or None."""
    meta = result["meta"]
    reasons = []
    if meta.get("partial"):
        reasons.append("partial (the run is still going or was interrupted)")
    if meta["quick"]:
        reasons.append("--quick (synthetic images)")
    cores = meta["machine"].get("usable_cores") or meta["machine"]["cores"]
    if max(meta["load_before"][0], meta["load_after"][0]) > 0.5 * cores:
        reasons.append(f"load average {meta['load_before'][0]} before / {meta['load_after'][0]} after on {cores} cores")
    if meta["campaign_before"] or meta["campaign_after"]:
        reasons.append("training processes were running")
    return "; ".join(reasons) or None


def markdown(result: dict) -> str:
    meta, m = result["meta"], result["meta"]["machine"]
    p = meta["protocol"]
    lines = ["# Speed of the restorers (issue 24)", ""]
    why = contended(result)
    if why:
        lines += [f"**Not a reference table: {why}.**", ""]
    threads = f" (--threads {p['threads']})" if p["threads"] else ""
    training = f" ({'; '.join(meta['campaign_before'])[:200]})" if meta["campaign_before"] else ""
    lines += [
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['memory_gib']} GiB; torch {m['torch']} "
        f"with {m['torch_threads']} threads{threads}, "
        f"OpenCV {m['opencv']}, bm3d {m['bm3d']}, Python {m['python']}; device {p['device']}.",
        f"Date {m['date']}, commit {m['commit']}. Load average (1/5/15 min) before {meta['load_before']}, "
        f"after {meta['load_after']}. Training processes before: {len(meta['campaign_before'])}, after: "
        f"{len(meta['campaign_after'])}{training}."
        + (f" Note: {meta['note']}." if meta["note"] else ""),
        "", f"Command: `{meta['command']}`", "", "## Protocol", "",
        *[f"- image `{k}`: {v}" for k, v in result["images"].items()],
        *[f"- {k}: {v}" for k, v in result["tasks"].items()],
        "- degraded with `restore.bench.cases.degrade` (seed 0, image index 0) and saved as 8-bit PNG; the API and "
        "the CLI restore that same file (inpaint: its mask PNG).",
        f"- **API**: `restore.load(name).restore(y, op)` on the whole image (no tiling), seeded generator; median of "
        f"{p['repeats']} after {p['warmup']} warm-up, in a fresh process that first imports and loads "
        "(`load s`: `restore.load`; `1st call s`: the first restoration, which also loads what a restorer loads lazily, "
        "e.g. its weights). "
        "**run**: `restore.run(file, output=...)` per call (loads the model each call, tiles as the CLI does). "
        f"**CLI**: wall time of `restore TASK in.png -o out.png --model NAME ... -q` (defaults: tile "
        f"{p['cli_tile'] if p['cli_tile'] is not None else 512}, fp32), median of {p['repeats']} after {p['warmup']} "
        "warm-up, each a fresh process: start-up, model load, I/O and restoration.",
        "- seconds per megapixel use the output's pixels (SR: the x4 image).",
        "- peak RSS: `ru_maxrss` of that process (`os.wait4`); API: the whole worker (imports, model, runs); "
        "`RSS loaded`: its resident memory after import and load, before the first restoration.",
        "", "## CLI start-up (apart)", "", "| command | s (median) | peak RSS MiB |", "|---|---|---|"]
    lines += [f"| `{r['what']}` | {_cell(r)} | {_cell(r, 'peak_rss_mib')} |" for r in result["startup"]]
    lines += ["", "## Seconds per image and per megapixel", "",
              "| model | task | image | MP | API s | API s/MP | load s | 1st call s | RSS loaded MiB | API peak RSS MiB "
              "| run s | CLI s | CLI s/MP | CLI peak RSS MiB |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        api, run, cli = r.get("api"), r.get("run"), r.get("cli")
        cells = [r["model"], r["task"], r["size"], f"{r['mp']:.3f}", _cell(api), _cell(api, "s", r["mp"]),
                 _cell(api, "load_s"), _cell(api, "first_s"), _cell(api, "rss_after_load_mib"), _cell(api, "peak_rss_mib"),
                 _cell(run), _cell(cli), _cell(cli, "s", r["mp"]), _cell(cli, "peak_rss_mib")]
        lines.append("| " + " | ".join(cells) + " |")
    failures = [f"- {r['model']} {r['task']} {r['size']} {k}: {r[k]['error']}" for r in result["rows"]
                for k in ("api", "run", "cli") if isinstance(r.get(k), dict) and "error" in r[k]]
    if failures:
        lines += ["", "Failed:", "", *failures]
    if result["skipped"]:
        lines += ["", "Skipped:", "", *[f"- {r['model']} {r['task']} {r['size']}: {r['why']}" for r in result["skipped"]]]
    lines += ["", "## For the README's model table: API seconds per megapixel on `rgb256`", "",
              "| model | " + " | ".join(result["tasks"]) + " |", "|---|" + "---|" * len(result["tasks"])]
    for model in dict.fromkeys(r["model"] for r in result["rows"]):
        cells = [next((_cell(r.get("api"), "s", r["mp"]) for r in result["rows"] if r["model"] == model and r["task"] == t
                       and r["size"] == "rgb256"), "") for t in result["tasks"]]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    if result["loaded"]:
        first = result["loaded"][0]
        lines += ["", "## With another 2-thread job running", "",
                  f"Beside each API row runs {first['busy_job']} (alone it does {first['busy_alone_matmuls_per_s']} matmuls/s).",
                  "", "| model | task | image | s without the job | s with it | slowdown | busy job matmuls/s with it |",
                  "|---|---|---|---|---|---|---|"]
        for r in result["loaded"]:
            idle, loaded = r["idle"].get("s"), r["loaded"].get("s")
            ratio = f"x{loaded / idle:.2f}" if idle and loaded else ""
            lines.append(f"| {r['model']} | {r['task']} | {r['size']} | {_cell(r['idle'])} | {_cell(r['loaded'])} | {ratio} "
                         f"| {_f(r['busy_matmuls_per_s'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--models", default=None, help="bench specs, comma-separated (default: every restorer, bm3d, opencv-nlm)")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated (default: all)")
    ap.add_argument("--sizes", default=",".join(IMAGES), help="gray, rgb256, rgb1024 (default: all)")
    ap.add_argument("--paths", default="api,cli", help="api, run, cli (default: api,cli)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--large-limit", type=float, default=30.0,
                    help="run rgb1024 only where rgb256 predicts at most this many API s per image (default 30)")
    ap.add_argument("--load", default="", help="models to measure again beside a busy job, e.g. lidia,vble")
    ap.add_argument("--load-threads", type=int, default=2, help="threads of the busy job (default 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (OMP_NUM_THREADS); default torch's")
    ap.add_argument("--cli-tile", type=int, default=None, help="--tile for the CLI (default: the CLI's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per process")
    ap.add_argument("--note", default="", help="recorded as is, e.g. 'campaign stopped'")
    ap.add_argument("--quick", action="store_true", help="tiny synthetic images, 1 repeat, no warm-up (tests)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "speed", help="OUT.md and OUT.json")
    args = ap.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(run_job(json.loads(args.worker))), flush=True)
        return
    if args.quick:
        args.repeats, args.warmup = 1, 0
    if args.models is None:
        from restore.catalogue import entries

        args.models = ",".join([*sorted(entries()), *PEERS])
    args.tasks, args.sizes, args.paths = (a.split(",") for a in (args.tasks, args.sizes, args.paths))
    bad = [x for x in args.tasks if x not in TASKS] + [x for x in args.sizes if x not in IMAGES] + \
        [x for x in args.paths if x not in ("api", "run", "cli")]
    if bad:
        ap.error(f"unknown task, size or path: {', '.join(bad)}")
    result = benchmark(args)
    save(result, args.out)
    print(markdown(result))


if __name__ == "__main__":
    main()

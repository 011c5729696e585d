"""Where LIDIA's time and memory go, before and after a change, beside BM3D on the same images.

    git archive 6f0cf4c restore | (mkdir -p /tmp/lidia_base && tar -x -C /tmp/lidia_base)
    python benchmarks/studies/lidia_speed.py --baseline /tmp/lidia_base --repeat 3 \\
        --out benchmarks/results/lidia_speed

Every measurement runs in a fresh child process (peak RSS is the child's own),
the baseline tree (``--baseline``, put first on PYTHONPATH) and this checkout
interleaved, ``--repeat`` times, with BM3D on the same noisy image in between;
medians are reported with the load average seen. The API rows run with each
of ``--threads`` torch threads (the bm3d package uses the CPUs it finds: its
process time is about twice its wall time on 2 CPUs); the CLI rows run
``restore denoise`` as a user would (torch's default threads) under
/usr/bin/time. The breakdown (one thread)
instruments this checkout's streamed forward; the baseline's is its search
vs the rest, as the former version of this study measured it. FLOPs are
counted with torch.utils.flop_counter on the network's products.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
WEIGHTS = Path(__file__).resolve().parents[2] / "weights"  # the baseline tree has none beside its restore/
# name -> (file, rows, cols): a crop from the top left (None: the whole image).
CASES = {
    "gray-512x384": ("Set12/08.png", 384, 512),
    "gray-bsd68-test001": ("BSD68/test001.png", None, None),
    "color-cbsd68-101085": ("CBSD68/101085.png", None, None),
}
EQUALITY = ["BSD68/test002.png", "BSD68/test003.png", "BSD68/test004.png"]


def noisy(case: str, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    from restore.io import read_image
    from restore.operators import Denoise

    if case.startswith("tiled-"):  # a larger gray image: Set12/08.png repeated
        side = int(case.split("-")[1])
        x = read_image(DATA / "Set12/08.png").pixels.repeat(1, 1, 4, 4)[..., :side, :side]
    else:
        file, rows, cols = CASES.get(case, (case, None, None))
        x = read_image(DATA / file).pixels[..., :rows, :cols]
    return x, Denoise(sigma / 255).measure(x, torch.Generator().manual_seed(0))


# ---- children ------------------------------------------------------------------------------------


def child(args: argparse.Namespace) -> dict:
    """One measurement in this process; what the parent records."""
    import resource

    torch.set_num_threads(args.threads)
    x, y = noisy(args.case, args.sigma)
    row: dict = {"load_before": os.getloadavg()[0]}
    if args.child == "bm3d":
        import bm3d

        img = y[0].permute(1, 2, 0).double().numpy()
        t, c = time.perf_counter(), time.process_time()
        bm3d.bm3d(img[..., 0], sigma_psd=args.sigma / 255) if img.shape[2] == 1 else bm3d.bm3d_rgb(img, args.sigma / 255)
        row |= {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}
    else:
        import restore
        from restore.operators import Denoise

        den, op = restore.load("lidia"), Denoise(args.sigma / 255)
        den.restore(y[..., :64, :64], op)  # weights loaded, first-call costs paid
        t, c = time.perf_counter(), time.process_time()
        out = den.restore(y, op).image
        row |= {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}
        if args.save:
            torch.save(out, args.save)
        if args.child == "breakdown":
            row |= breakdown(den, y, args.sigma)
    row |= {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "load_after": os.getloadavg()[0]}
    return row


def breakdown(den, y: torch.Tensor, sigma: float) -> dict:
    """Seconds per stage (process time, one thread) and FLOPs of the network's products."""
    from torch.utils.flop_counter import FlopCounterMode

    from restore.nets import lidia as lidia_net

    torch.set_num_threads(1)  # FLOP counting and the timers see the calling thread only
    net = den._inference_net(den.pick_model("gray" if y.shape[1] == 1 else "color", sigma)[0])
    ym = (y * 2 - 1) - (y * 2 - 1).mean(dim=(2, 3), keepdim=True)
    clock, spent = time.process_time, {}

    def timed(label, fn):
        def wrapper(*a, **kw):
            t = clock()
            result = fn(*a, **kw)
            spent[label] = spent.get(label, 0.0) + clock() - t
            return result
        return wrapper

    try:
        from restore.nets import lidia_stream
    except ImportError:  # a tree without the streamed forward: its search vs the rest, as measured before
        with torch.inference_mode():
            t = clock()
            net._scales(ym)
            search = clock() - t
            t = clock()
            net(ym, chunk=den.chunk)
            return {"stages": {"search (2 scales)": search, "network": clock() - t - search}}
    names = {"neighbour_weights": "neighbour-weight MLP", "pass1": "pass 1 (features, estimates, folds)",
             "pass2": "pass 2 (features, aggregation, joint, out, folds)"}
    saved = lidia_stream.map_chunks, lidia_stream._apply, lidia_stream._project, lidia_net.Lidia._scales
    k = net.cfg.k
    lidia_stream.map_chunks = lambda fn, *a, **kw: (timed(names[fn.__name__], saved[0]) if fn.__name__ in names
                                                    else saved[0])(fn, *a, **kw)
    lidia_stream._apply = lambda layer, x, *a, **kw: (timed("of which joint layers", saved[1]) if x.shape[0] == 4 * k
                                                      else saved[1])(layer, x, *a, **kw)
    lidia_stream._project = timed("projected tables", saved[2])
    lidia_net.Lidia._scales = timed("search (2 scales)", saved[3])
    try:
        with torch.inference_mode():
            t = clock()
            net(ym, chunk=den.chunk)
            total = clock() - t
    finally:
        lidia_stream.map_chunks, lidia_stream._apply, lidia_stream._project, lidia_net.Lidia._scales = saved
    joint = spent.pop("of which joint layers")
    stages = spent | {"rest (fold averages, output)": total - sum(spent.values()), "of which joint layers": joint}
    with torch.inference_mode(), FlopCounterMode(display=False) as flops:
        net(ym, chunk=den.chunk)
    positions = ym.shape[0] * (ym.shape[2] + net.span) * (ym.shape[3] + net.span)
    v = net.cfg.width
    return {"stages": stages, "total_net_s": total, "gflop": flops.get_total_flops() / 1e9,
            "flop_by_op": {str(op): n for op, n in flops.get_flop_counts()["Global"].items()},
            "joint_gflop": 2 * 4 * k * (4 * k * v + v * v) * positions / 1e9}


# ---- parent ---------------------------------------------------------------------------------------


def tree_env(tree: str | None) -> dict:
    return dict(os.environ, PYTHONPATH=tree, RESTORE_WEIGHTS=str(WEIGHTS)) if tree else dict(os.environ)


def run_child(kind: str, case: str, args: argparse.Namespace, tree: str | None, save: str | None = None,
              threads: int = 1) -> dict:
    env = tree_env(tree)
    cmd = [sys.executable, __file__, "--child", kind, "--case", case, "--sigma", str(args.sigma),
           "--threads", str(threads)] + (["--save", save] if save else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(case: str, args: argparse.Namespace, tree: str | None, folder: Path) -> dict:
    """``restore denoise`` on the case's noisy image (8-bit PNG) under /usr/bin/time -v."""
    from restore.io import write_image

    src = folder / f"{case}.png"
    if not src.exists():
        write_image(src, noisy(case, args.sigma)[1].clamp(0, 1))
    env = tree_env(tree)
    cli = [sys.executable, "-c", "import sys; from restore.cli import main; sys.argv[0] = 'restore'; main()"]
    cmd = ["/usr/bin/time", "-v"] + cli + ["denoise", str(src), "-o", str(folder / f"out-{case}.png"), "--sigma",
                                           str(args.sigma), "--overwrite", "-q"]
    load = os.getloadavg()[0]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr).groups()
    seconds = (int(wall[0] or 0) * 60 + int(wall[1])) * 60 + float(wall[2]) if wall[0] else int(wall[1]) * 60 + float(wall[2])
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) / 1024
    return {"wall_s": seconds, "peak_rss_mb": rss, "load_before": load}


def psnr(a: torch.Tensor, x: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a.clamp(0, 1) - x) ** 2).mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=str, help="a tree holding the former restore/ package (see above)")
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/lidia_speed"))
    ap.add_argument("--child", choices=["restore", "breakdown", "bm3d"], help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.threads = args.threads[0]
        print(json.dumps(child(args)))
        return
    trees = {"before": args.baseline, "after": None} if args.baseline else {"after": None}
    report: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "threads": args.threads,
                    "sigma": args.sigma, "torch": torch.__version__, "cpus": os.cpu_count(), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for case in CASES:
            runs: dict = {f"{name}@{t}": [] for name in trees for t in args.threads} | {"bm3d": []}
            cli: dict = {name: [] for name in trees}
            for _ in range(args.repeat):  # interleaved: the machine's load hits every row alike
                for name, tree in trees.items():
                    for t in args.threads:
                        runs[f"{name}@{t}"].append(run_child("restore", case, args, tree,
                                                             str(folder / f"{name}-{case}.pt"), threads=t))
                    cli[name].append(run_cli(case, args, tree, folder))
                runs["bm3d"].append(run_child("bm3d", case, args, None))
            report["cases"][case] = {"runs": runs, "cli": cli, "breakdown": {
                name: run_child("breakdown", case, args, tree) for name, tree in trees.items()}}
            x = noisy(case, args.sigma)[0]
            report["cases"][case]["psnr"] = {name: psnr(torch.load(folder / f"{name}-{case}.pt"), x) for name in trees}
            if "before" in trees:
                diff = torch.load(folder / f"before-{case}.pt") - torch.load(folder / f"after-{case}.pt")
                report["cases"][case]["max_abs_diff"] = float(diff.abs().max())
        report["equality"] = {}
        for file in EQUALITY if "before" in trees else []:
            outs = {}
            for name, tree in trees.items():
                run_child("restore", file, args, tree, str(folder / f"{name}-eq.pt"))
                outs[name] = torch.load(folder / f"{name}-eq.pt")
            x = noisy(file, args.sigma)[0]
            report["equality"][file] = {"psnr_before": psnr(outs["before"], x), "psnr_after": psnr(outs["after"], x),
                                        "max_abs_diff": float((outs["before"] - outs["after"]).abs().max())}
        report["memory"] = {f"tiled-{side}": {name: run_child("restore", f"tiled-{side}", args, tree)["peak_rss_mb"]
                                              for name, tree in trees.items()} for side in (624, 1024)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report, list(trees)))
    print(args.out.with_suffix(".md").read_text())


def markdown(report: dict, trees: list[str]) -> str:
    med = lambda rows, key: statistics.median(r[key] for r in rows)  # noqa: E731
    lines = ["# LIDIA speed and memory (issue 24, item 4)", "",
             f"{report['date']}, torch {report['torch']}, {report['cpus']} CPUs shared with other work, "
             f"sigma {report['sigma']:g}. "
             "Medians of interleaved runs, each in a fresh process; `load` is the 1-minute load average seen.", "",
             "## restore.load('lidia').restore(y, Denoise(sigma)) and BM3D", "",
             "| image | torch threads | " + " | ".join(f"{t} CPU s | {t} wall s" for t in trees)
             + " | speedup (wall) | BM3D CPU s | BM3D wall s | " + " | ".join(f"{t} peak RSS MB" for t in trees)
             + " | PSNR " + " / ".join(trees) + " | max abs diff | load |",
             "|" + "---|" * (2 * len(trees) + 4 + len(trees) + 4)]
    for case, r in report["cases"].items():
        runs = r["runs"]
        for n in report["threads"]:
            cells = [f"{med(runs[f'{t}@{n}'], 'cpu_s'):.2f} | {med(runs[f'{t}@{n}'], 'wall_s'):.2f}" for t in trees]
            speed = (med(runs[f"before@{n}"], "wall_s") / med(runs[f"after@{n}"], "wall_s")) if "before" in trees else 1
            cells += [f"{speed:.2f}x", f"{med(runs['bm3d'], 'cpu_s'):.2f} | {med(runs['bm3d'], 'wall_s'):.2f}"]
            cells += [f"{med(runs[f'{t}@{n}'], 'peak_rss_mb'):.0f}" for t in trees]
            loads = [x["load_before"] for key in runs for x in runs[key]]
            cells += [" / ".join(f"{r['psnr'][t]:.4f}" for t in trees), f"{r.get('max_abs_diff', 0):.1e}",
                      f"{min(loads):.1f}-{max(loads):.1f}"]
            lines.append(f"| {case} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "## restore denoise (CLI, default threads), wall seconds and peak RSS", "",
              "| image | " + " | ".join(f"{t} wall s | {t} peak RSS MB" for t in trees) + " | BM3D wall s (API) |",
              "|" + "---|" * (2 * len(trees) + 2)]
    for case, r in report["cases"].items():
        cells = [f"{med(r['cli'][t], 'wall_s'):.2f} | {med(r['cli'][t], 'peak_rss_mb'):.0f}" for t in trees]
        lines.append(f"| {case} | " + " | ".join(cells) + f" | {med(r['runs']['bm3d'], 'wall_s'):.2f} |")
    lines += ["", "## Where the time goes (process seconds, one run, 1 thread)", ""]
    for case, r in report["cases"].items():
        for t in trees:
            b = r["breakdown"][t]
            stages = ", ".join(f"{k} {v:.2f}" for k, v in b["stages"].items())
            extra = ""
            if "gflop" in b:
                net_s = b["total_net_s"] - b["stages"]["search (2 scales)"]
                extra = (f"; network products {b['gflop']:.0f} GFLOP in {net_s:.2f} s after the search: "
                         f"{b['gflop'] / net_s:.0f} GFLOP/s; joint layers {b['joint_gflop']:.0f} GFLOP at "
                         f"{b['joint_gflop'] / max(b['stages']['of which joint layers'], 1e-9):.0f} GFLOP/s")
            lines.append(f"- {case}, {t}: {stages}{extra}")
    if report.get("equality"):
        lines += ["", "## Equality on more BSD68 images", "", "| image | PSNR before | PSNR after | max abs diff |",
                  "|---|---|---|---|"]
        lines += [f"| {f} | {e['psnr_before']:.4f} | {e['psnr_after']:.4f} | {e['max_abs_diff']:.1e} |"
                  for f, e in report["equality"].items()]
    lines += ["", "## Peak RSS of the API call on larger gray images (MB, whole process)", "",
              "| image | " + " | ".join(trees) + " |", "|" + "---|" * (len(trees) + 1)]
    lines += [f"| {case} | " + " | ".join(f"{m[t]:.0f}" for t in trees) + " |" for case, m in report["memory"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

"""benchmarks/speed.py (issue 24): the harness runs end to end and writes its tables; no timing is asserted."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "speed.py"


def _speed():
    spec = importlib.util.spec_from_file_location("speed_harness", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(md: str, header: str) -> list[list[str]]:
    """The rows (cells) of the Markdown table that follows ``header``."""
    lines = md.split(header, 1)[1].strip().splitlines()
    rows = []
    for line in lines:
        if not line.startswith("|"):
            if rows:
                break
            continue
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def _result(quick: bool = True) -> dict:
    run = {"s": 0.5, "runs_s": [0.5], "load_s": 0.1, "first_s": 0.9, "rss_after_load_mib": 500.0, "peak_rss_mib": 600.0}
    cli = {"s": 3.0, "runs_s": [3.0], "peak_rss_mib": 650.0, "command": "restore denoise ..."}
    machine = {"cpu": "CPU", "cores": 2, "usable_cores": 2, "memory_gib": 8, "torch": "2", "torch_threads": 2,
               "opencv": "4", "bm3d": "4", "python": "3.11", "date": "today", "commit": "abc"}
    return {
        "meta": {"machine": machine, "load_before": [0.1, 0.1, 0.1], "load_after": [0.2, 0.1, 0.1], "campaign_before": [],
                 "campaign_after": [], "note": "", "quick": quick, "command": "speed.py",
                 "protocol": {"warmup": 1, "repeats": 3, "paths": ["api", "cli"], "threads": None, "large_limit_s": 30,
                              "cli_tile": None, "device": "cpu"}},
        "images": {"rgb256": "a crop"}, "tasks": {"denoise": "sigma 25", "sr": "x4"},
        "startup": [{"what": "restore --help", "s": 0.1, "runs_s": [0.1], "peak_rss_mib": 20.0}],
        "rows": [{"model": "nlm", "task": "denoise", "size": "rgb256", "out_hw": [256, 256], "mp": 0.065536, "api": run,
                  "cli": cli},
                 {"model": "bm3d", "task": "denoise", "size": "rgb256", "out_hw": [256, 256], "mp": 0.065536, "api": run}],
        "skipped": [{"model": "vble", "task": "denoise", "size": "rgb1024", "why": "predicted 900 s"}],
        "loaded": [{"model": "nlm", "task": "denoise", "size": "rgb256", "mp": 0.065536, "idle": run,
                    "loaded": {**run, "s": 1.0}, "busy_alone_matmuls_per_s": 50.0, "busy_matmuls_per_s": 30.0,
                    "busy_job": "a busy job"}],
    }


def test_the_report_has_its_tables_and_says_when_it_is_not_a_reference():
    speed = _speed()
    md = speed.markdown(_result())
    assert md.startswith("# Speed of the restorers") and "Not a reference table: --quick" in md
    main = _table(md, "## Seconds per image and per megapixel")
    assert len(main) == 2 + 2 and all(len(r) == len(main[0]) == 14 for r in main)
    assert main[2][:3] == ["nlm", "denoise", "rgb256"] and main[2][5] == f"{0.5 / 0.065536:.3g}"
    assert main[3][11] == ""  # a peer has no CLI row
    assert _table(md, "## CLI start-up")[2][0] == "`restore --help`"
    assert _table(md, "## With another 2-thread job running")[2][5] == "x2.00"
    assert "vble denoise rgb1024: predicted 900 s" in md
    assert "Not a reference table" not in speed.markdown(_result(quick=False))


def test_the_large_image_runs_only_where_the_small_one_predicts_it_is_fast_enough():
    speed = _speed()
    rows = [{"model": "m", "task": "denoise", "size": "rgb256", "mp": 0.0625, "api": {"s": 1.0}}]
    assert speed._too_slow(rows, "m", "denoise", "rgb1024", 1.0, limit=30) is None  # 16 s predicted
    assert "predicted 16 s" in speed._too_slow(rows, "m", "denoise", "rgb1024", 1.0, limit=10)
    assert speed._too_slow(rows, "m", "denoise", "gray", 1.0, limit=1) is None


@pytest.mark.slow
def test_quick_run_writes_markdown_and_json(tmp_path):
    out = tmp_path / "speed"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--models", "nlm,bicubic", "--tasks", "denoise,sr",
                           "--sizes", "gray,rgb256", "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["model"], r["task"], r["size"]): r for r in result["rows"]}
    assert sorted(rows) == [("bicubic", "sr", "gray"), ("bicubic", "sr", "rgb256"), ("nlm", "denoise", "gray"),
                            ("nlm", "denoise", "rgb256")]
    for row in rows.values():
        for path in ("api", "cli"):
            assert row[path]["s"] > 0 and row[path]["peak_rss_mib"] > 0, row
    assert rows[("bicubic", "sr", "rgb256")]["out_hw"] == [32, 32]  # the output's size: x4 of the 8 x 8 input
    assert [r["what"].split()[0] for r in result["startup"]] == ["restore", "restore", "python", "python"]
    assert all("error" not in r for r in result["startup"])
    assert result["meta"]["machine"]["commit"] and result["meta"]["load_before"]
    md = out.with_suffix(".md").read_text()
    assert "Not a reference table" in md and len(_table(md, "## Seconds per image and per megapixel")) == 2 + 4

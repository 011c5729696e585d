"""The one-off studies in benchmarks/studies/: each starts (--help), imports only the library, and is what the docs name.

Every study is a script run from the repository root as ``python benchmarks/studies/NAME.py``;
it imports ``restore`` (the installed package) and nothing from another benchmark script.
The docs (README, model cards, bench_tables.sh, the studies) name only scripts that exist.
Also ``restore.bench.crops``, the centre crop the studies share.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from restore.bench.crops import centre_crop, read_centre_crop
from restore.errors import RestoreError
from restore.io import write_image

REPO = Path(__file__).resolve().parents[1]
STUDIES = sorted(p for p in (REPO / "benchmarks" / "studies").glob("*.py") if not p.name.startswith("_"))
BENCHMARK_SCRIPTS = {p.stem for p in (REPO / "benchmarks").rglob("*.py")}
# Where the project tells a reader which script to run.
DOCS = [REPO / "README.md", *sorted((REPO / "models").glob("*/README.md")), REPO / "benchmarks" / "bench_tables.sh", *STUDIES]


def test_there_are_studies() -> None:
    assert len(STUDIES) >= 10, STUDIES


# Runs each study file as ``python benchmarks/studies/NAME.py --help`` would (its folder first on
# sys.path, __name__ == "__main__"), all in one child process so that torch is imported once.
HELP_RUNNER = """
import contextlib, io, json, runpy, sys, traceback
results = {}
for path in sys.argv[1:]:
    out = io.StringIO()
    sys.argv, sys.path[0] = [path, "--help"], path.rsplit("/", 1)[0]
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(path, run_name="__main__")
        code = "returned without exiting"
    except SystemExit as e:
        code = e.code or 0
    except BaseException:
        code = traceback.format_exc(limit=-3)
    results[path] = {"code": code, "stdout": out.getvalue()}
print("RESULTS " + json.dumps(results))
"""


@pytest.fixture(scope="module")
def help_results() -> dict:
    """Per study: the exit code of ``--help`` (or the traceback of a failed import) and what it printed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    paths = [str(p.relative_to(REPO)) for p in STUDIES]
    proc = subprocess.run([sys.executable, "-c", HELP_RUNNER, *paths], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULTS ")), None)
    assert line is not None, proc.stderr[-3000:]
    return json.loads(line[len("RESULTS "):])


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: p.stem)
def test_study_help_runs(study: Path, help_results: dict) -> None:
    """``--help`` exits 0 with a usage line: the imports resolve and the arguments parse."""
    result = help_results[str(study.relative_to(REPO))]
    assert result["code"] == 0, result["code"]
    assert "usage:" in result["stdout"]


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: p.stem)
def test_study_imports_only_the_library(study: Path) -> None:
    """No sys.path edits and no import of another benchmark script: shared helpers live in restore.bench."""
    source = study.read_text()
    assert "sys.path" not in source, f"{study.name} edits sys.path"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top not in BENCHMARK_SCRIPTS and top != "benchmarks", f"{study.name} imports {name}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_named_benchmark_scripts_exist(doc: Path) -> None:
    """Every ``benchmarks/....py`` a card, the README or a study names (as in 'Reproduce:' lines) exists.

    A script named as "the former benchmarks/X.py" (what made a committed table) is history, not a command.
    """
    named = set(re.findall(r"(?<!former )(?<!former `)(?<!former ``)benchmarks/[a-z0-9_/]+\.py", doc.read_text()))
    missing = sorted(path for path in named if not (REPO / path).is_file())
    assert not missing, f"{doc.relative_to(REPO)} names scripts that do not exist: {missing}"


def test_centre_crop_takes_the_middle() -> None:
    x = torch.arange(30.0).view(1, 1, 5, 6)
    out = centre_crop(x, 2)
    assert out.tolist() == [[[[8.0, 9.0], [14.0, 15.0]]]]  # rows 1-2 of 5 (the odd pixel left below), columns 2-3 of 6
    assert out.data_ptr() == x[..., 1:3, 2:4].data_ptr()  # a view, as slicing gives
    assert centre_crop(x, 5).shape == (1, 1, 5, 5)
    assert centre_crop(torch.zeros(3, 8, 9), 4).shape == (3, 4, 4)


@pytest.mark.parametrize("size", [0, -3, 2.0, True, None])
def test_centre_crop_refuses_a_bad_size(size) -> None:
    with pytest.raises(RestoreError, match="crop size must be a positive int"):
        centre_crop(torch.zeros(1, 1, 8, 8), size)


def test_centre_crop_refuses_a_small_image() -> None:
    with pytest.raises(RestoreError, match=r"image 6 x 5 is smaller than the 8 x 8 crop"):
        centre_crop(torch.zeros(1, 3, 5, 6), 8)
    with pytest.raises(RestoreError, match=r"shape \(\.\.\., H, W\)"):
        centre_crop(torch.zeros(7), 2)


def test_read_centre_crop_names_the_file(tmp_path: Path) -> None:
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    write_image(tmp_path / "scene.png", x)
    out = read_centre_crop(tmp_path / "scene.png", 8)
    assert out.shape == (1, 3, 8, 8)
    assert torch.allclose(out, (x[..., 2:10, 1:9] * 255).round() / 255, atol=1e-6)  # 8-bit PNG
    with pytest.raises(RestoreError, match=r"scene\.png: image 10 x 12 is smaller than the 16 x 16 crop"):
        read_centre_crop(tmp_path / "scene.png", 16)

"""Adding a restorer is adding its file: a toy one, dropped into a copy of the package, works everywhere.

The copy differs from ``restore/`` by that one file; the library, ``restore.run``,
the CLI's task command with ``-O``, ``restore models NAME`` and ``restore bench``
all pick it up without another edit. This is the recipe CONTRIBUTING.md gives.
"""
from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

TOY = '''"""A toy denoiser: shrinks the measurement towards its mean (CONTRIBUTING.md's example)."""
from __future__ import annotations

from dataclasses import dataclass

from restore.operators.denoise import Denoise
from restore.options import option
from restore.restorers.base import Restoration, Restorer, register


@dataclass(frozen=True)
class ToyOptions:
    strength: float = option(0.5, "how far each pixel moves towards the image mean", low=0, high=1)


@register("toy")
class ToyRestorer(Restorer):
    """Moves every pixel towards the image mean by ``strength``."""

    name = "toy"
    operators = (Denoise,)
    channels = (1, 3)
    description = "toy: shrink towards the mean"
    Options = ToyOptions

    def _restore(self, y, operator, *, generator):
        mean = y.mean(dim=(2, 3), keepdim=True)
        return Restoration(image=y + self.options.strength * (mean - y))
'''

SCRIPT = '''
import numpy as np, restore
from restore.errors import RestoreError
toy = restore.load("toy", strength="0.25")
assert toy.options.strength == 0.25 and "denoise" in toy.tasks and "toy" in restore.names_for_task("denoise")
try:
    restore.load("toy", strenght=1)
except RestoreError as e:
    assert "its options: strength" in str(e)
else:
    raise SystemExit("an unknown option passed")
image = np.full((32, 32), 100, np.uint8)
report = restore.run([image], task="denoise", model="toy", sigma=10 / 255, out_dir="out")
assert report.done == 1, report
print("library ok")
'''


def _run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_toy_restorer_added_as_one_file_works_everywhere(tmp_path):
    import cv2

    package = tmp_path / "site" / "restore"
    shutil.copytree(ROOT / "restore", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "restorers" / "toy.py").write_text(TOY)
    added = _added_files(ROOT / "restore", package)
    assert added == ["restorers/toy.py"], added

    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "RESTORE_WEIGHTS": str(ROOT / "weights"),
           "OMP_NUM_THREADS": "1"}
    lib = _run([sys.executable, "-c", SCRIPT], tmp_path, env)
    assert lib.returncode == 0 and "library ok" in lib.stdout, lib.stderr

    cv2.imwrite(str(tmp_path / "in.png"), np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8))
    cli = [sys.executable, "-m", "restore.cli"]
    run = _run([*cli, "denoise", "in.png", "-o", "out.png", "--model", "toy", "-O", "strength=1", "--sigma", "10"],
               tmp_path, env)
    assert run.returncode == 0, run.stderr
    restored = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert restored.std() < 1  # strength 1: every pixel at the mean
    page = _run([*cli, "models", "toy"], tmp_path, env)
    assert page.returncode == 0 and "strength" in page.stdout, page.stderr

    (tmp_path / "data").mkdir()
    shutil.copy(tmp_path / "in.png", tmp_path / "data" / "a.png")
    bench = _run([*cli, "bench", "--task", "denoise", "--dataset", "data", "--sigma", "25", "--models",
                  "toy:strength=0.5", "-o", "bench", "-q"], tmp_path, env)
    assert bench.returncode == 0, bench.stderr
    assert any("toy" in p.read_text() for p in (tmp_path / "bench").glob("*.jsonl"))


def _added_files(original: Path, copy: Path) -> list[str]:
    """Files in ``copy`` that ``original`` lacks (changed files would fail the comparison below)."""
    added: list[str] = []

    def walk(cmp: filecmp.dircmp, prefix: str) -> None:
        assert not cmp.diff_files, cmp.diff_files
        added.extend(prefix + name for name in cmp.right_only if name != "__pycache__")
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(original, copy, ignore=["__pycache__"]), "")
    return sorted(added)

"""Every command and snippet of README.md, run on small stand-in images, so that the README cannot go stale (issue 13).

The fenced ```bash blocks give command lines and the ```python blocks snippets;
other blocks (layout listings, tables) are not code. Each line or snippet is one
test, named by its README line, run in README order in one session-scoped
sandbox (cwd ``tmp/work``, with ``../photos_noisy`` etc. beside it) that holds a
small stand-in for every file the README names. ``restore`` commands run in
process through Typer's CliRunner; lines the harness cannot run are skipped by
an explicit rule below that says why, and a line no rule covers fails, so a new
kind of README command forces a decision here.
"""
from __future__ import annotations

import ast
import builtins
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tokenize
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_SCRIPT = ROOT / ".ci" / "run"

# Stand-in sizes: small enough that the slowest README lines (VBLE with 100 samples,
# RED-Diff with 100 steps, deep-OT calibration) stay a few seconds on a 2-core CPU.
SIDE = 64
TUNE_IMAGES, TUNE_SIDE = 16, 112  # 16 x ceil(112/16)^2 = 784 >= 768 latent patches a 96-dim covariance needs


# ---------------------------------------------------------------- README parsing


@dataclass(frozen=True)
class Snippet:
    """One README test: a command line of a bash block, or a whole python block."""

    line: int  # README line of the command, or of the block's first code line
    kind: str  # "bash" | "python"
    text: str  # the command without comments, or the block's code

    @property
    def test_id(self) -> str:
        words = self.text.split()[:4] if self.kind == "bash" else [self.kind, *self.text.split()[:2]]
        return f"L{self.line}-" + "-".join(re.sub(r"[^\w.:/=-]", "", w)[:24] for w in words)


def fenced_blocks(markdown: str) -> list[tuple[str, int, list[str]]]:
    """(language, README line of the first code line, lines) for each fenced block."""
    blocks, lang, start, body = [], None, 0, []
    for number, line in enumerate(markdown.splitlines(), 1):
        fence = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
        if lang is None and fence:
            lang, start, body = fence.group(2).lower(), number + 1, []
        elif lang is not None and fence and not fence.group(2):
            blocks.append((lang, start, body))
            lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def strip_shell_comment(line: str) -> str:
    """The line without its ``# ...`` comment; a ``#`` inside quotes or a word (``a#b``) is not one, as in bash."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def strip_python_comments(code: str) -> str:
    """``code`` with its comments blanked (same lines), so rules never match text in a comment."""
    lines = code.splitlines(keepends=True)
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col].rstrip() + "\n"
    return "".join(lines)


def readme_snippets(markdown: str) -> list[Snippet]:
    """Every command line of the bash blocks and every python block, in README order."""
    snippets = []
    for lang, start, body in fenced_blocks(markdown):
        if lang in ("bash", "sh", "shell", "console"):
            pending, first = "", 0
            for number, raw in enumerate(body, start):
                line = strip_shell_comment(raw).strip()
                if line.endswith("\\"):  # a continued command is one line
                    pending, first = pending + line[:-1].rstrip() + " ", first or number
                    continue
                line, first, pending = (pending + line).strip(), first or number, ""
                if line:
                    snippets.append(Snippet(first, "bash", line))
                first = 0
        elif lang in ("python", "py"):
            code = strip_python_comments("\n".join(body) + "\n")
            if code.strip():
                snippets.append(Snippet(start, "python", code))
    return snippets


def chain(line: str) -> list[str]:
    """The commands of a ``a && b && c`` line, in order."""
    return [part.strip() for part in re.split(r"\s&&\s", line) if part.strip()]


SNIPPETS = readme_snippets(README.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- what runs and what is skipped


def _no_cuda() -> bool:
    return not torch.cuda.is_available()


def _always() -> bool:
    return True


@dataclass(frozen=True)
class SkipRule:
    """A README line matching ``pattern`` is skipped when ``applies()``, for ``reason``."""

    pattern: str
    applies: Callable[[], bool]
    reason: str


# Checked against each bash command of a line (a match skips the whole line) and each python snippet.
SKIP_RULES = [
    SkipRule(r"^(python3?\s+-m\s+)?pytest\b", _always, "runs the test suite itself (recursion); CI runs it"),
    SkipRule(r"--device[\s=]+cuda|device\s*=\s*[\"']cuda", _no_cuda, "needs a CUDA GPU"),
    SkipRule(r"--scheduler[\s=]+tcp://", _always, "needs a running Dask scheduler"),
    SkipRule(r"restore\.training\.campaign\s+(run|release|adopt)\b", _always,
             "trains for hours or rewrites the shipped weights; tests/test_campaign.py runs both on a tiny model"),
]
# Dropped from a && chain, the rest of which runs: installing the project is what CI itself does first.
DROPPED_PARTS = [r"^(python3?\s+-m\s+)?pip3?\s+install\b"]


def skip_reason(snippet: Snippet) -> str | None:
    """Why this README line is not run here, or None."""
    parts = chain(snippet.text) if snippet.kind == "bash" else [snippet.text]
    for rule in SKIP_RULES:
        if any(re.search(rule.pattern, part, re.MULTILINE) for part in parts) and rule.applies():
            return rule.reason
    return None


def runnable_parts(line: str) -> list[str]:
    """The commands of a line that run here: the chain without its install steps."""
    return [part for part in chain(line) if not any(re.match(p, part) for p in DROPPED_PARTS)]


# ---------------------------------------------------------------- the sandbox


def _crop(image: np.ndarray, side: int, top: int = 0, left: int = 0) -> torch.Tensor:
    """A side x side crop (from the centre, shifted by top/left) as 1 x C x H x W in [0, 1]."""
    h, w = image.shape[:2]
    r, c = (h - side) // 2 + top, (w - side) // 2 + left
    x = torch.from_numpy(image[r:r + side, c:c + side].astype(np.float32) / 255.0)
    return x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]


def _scenes() -> list[np.ndarray]:
    from skimage import data

    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]


def _noisy(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    from restore.operators import Denoise

    return Denoise(sigma=sigma / 255).measure(x, generator=torch.Generator().manual_seed(seed)).clamp(0, 1)


def _write_geotiff(path: Path, bands: int, side: int, seed: int) -> None:
    """A small 12-bit-in-uint16 GeoTIFF with a CRS, a transform, nodata and band descriptions."""
    import rasterio
    from rasterio.transform import from_origin
    from skimage import data

    gray = _crop(data.astronaut(), side)[0].numpy()
    rgb = np.concatenate([gray, gray[1:2]])[:bands]  # a NIR-like 4th band from green
    rng = np.random.default_rng(seed)
    pixels = np.clip(rgb * 4095 + rng.normal(0, 40, rgb.shape), 1, 4095).astype(np.uint16)
    profile = {"driver": "GTiff", "width": side, "height": side, "count": bands, "dtype": "uint16", "nodata": 0,
               "crs": "EPSG:32631", "transform": from_origin(500000, 4800000, 0.5, 0.5)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels)
        for band, name in enumerate(("red", "green", "blue", "nir")[:bands], 1):
            dst.set_band_description(band, name)


def build_sandbox(root: Path) -> Path:
    """Stand-ins for every file the README names; returns the working directory ``root/work``."""
    from skimage import data

    from restore.io import write_image
    from restore.operators import Inpaint, random_mask

    work = root / "work"
    work.mkdir()
    camera = _crop(data.camera(), SIDE)
    images = {
        "clean.png": camera,
        "noisy.png": _noisy(camera, 25, 0),
        "noisy_color.png": _noisy(_crop(data.astronaut(), SIDE), 25, 0),  # the deep-OT tuner works on RGB
        "similar_clean.png": _crop(data.camera(), SIDE, top=-120, left=-40),
        "photo.png": _crop(data.astronaut(), SIDE),
        "small.png": camera[..., ::4, ::4],
        "blurry.png": camera,
    }
    mask = random_mask(SIDE, SIDE, 0.5, generator=torch.Generator().manual_seed(0)).float()
    images["mask.png"] = mask  # 1 (white) = observed
    images["damaged.png"] = Inpaint(mask).forward(camera)
    for name, x in images.items():
        write_image(work / name, x)
    for i, scene in enumerate(_scenes()[:2]):
        (work / "photos").mkdir(exist_ok=True)
        write_image(work / "photos" / f"photo{i}.png", _crop(scene, 48))
    (work / "photos" / "trip").mkdir()  # a sub-folder, for 'photos/**/*.png'
    write_image(work / "photos" / "trip" / "photo2.png", _crop(_scenes()[2], 48))
    _write_geotiff(work / "scene.tif", 3, 96, seed=0)
    _write_geotiff(work / "pleiades_like.tif", 4, SIDE, seed=1)
    # Deep-OT calibration folders: different crops of a few scenes, the noisy ones restored, the clean ones natural.
    for folder in ("photos_noisy", "photos_clean"):
        (root / folder).mkdir()
    for k in range(TUNE_IMAGES):
        scene = _scenes()[k % 5]
        offset = 40 * (k // 5) - 60
        clean = _crop(scene, TUNE_SIDE, top=offset, left=-offset)
        write_image(root / "photos_noisy" / f"{k:02d}.png", _noisy(clean, 25, k))
        write_image(root / "photos_clean" / f"{k:02d}.png", _crop(scene, TUNE_SIDE, top=-offset, left=offset))
    for dataset, offset in (("CBSD68", 0), ("Set14", 50)):
        (root / "data" / dataset).mkdir(parents=True)
        for i, scene in enumerate(_scenes()[:2]):
            write_image(root / "data" / dataset / f"{i:03d}.png", _crop(scene, SIDE, top=offset, left=offset))
    # benchmarks/ scripts write their results beside themselves: the sandbox has its own copy.
    shutil.copytree(ROOT / "benchmarks", work / "benchmarks", ignore=shutil.ignore_patterns("results", "__pycache__"))
    (root / "examples").mkdir()  # small crops of the bundled examples, made on first use
    return work


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Path:
    """The README's working directory with its stand-in files (shared by all tests, which run in README order)."""
    return build_sandbox(tmp_path_factory.mktemp("readme"))


@pytest.fixture()
def in_sandbox(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = the sandbox; ``example:NAME`` reads a small crop of the bundled image; environment restored after."""
    from restore.commands import files

    bundled = files.example_path

    def small_example(name: str) -> Path:
        from restore.io import read_image, write_image

        path = sandbox.parent / "examples" / f"{name}.png"
        if not path.is_file():
            full = read_image(bundled(name)).pixels
            h, w = full.shape[-2:]
            top, left = (h - SIDE) // 2, (w - SIDE) // 2
            write_image(path, full[..., top:top + SIDE, left:left + SIDE])
        return path

    monkeypatch.setattr(files, "example_path", small_example)
    monkeypatch.chdir(sandbox)
    environ = dict(os.environ)  # a Dask LocalCluster sets worker variables in this process
    yield sandbox
    os.environ.clear()
    os.environ.update(environ)


# ---------------------------------------------------------------- running one command


OUTPUT_OPTIONS = ("-o", "--output", "--std-map", "--mask-out")


def command_outputs(args: list[str]) -> list[Path]:
    """The files or folders a ``restore`` command writes (its -o, --std-map, --mask-out and sample files)."""
    from restore.batch_outputs import sample_paths

    outputs, samples = [], 0
    for flag, value in zip(args, args[1:]):
        if flag in OUTPUT_OPTIONS:
            outputs.append(Path(value))
        elif flag == "--save-samples":
            samples = int(value)
    if samples and outputs:
        outputs += sample_paths(outputs[0], samples)
    return outputs


def fresh_outputs(args: list[str], sandbox: Path) -> list[Path]:
    """Remove what the command is about to write, unless it says --overwrite; returns its outputs.

    The README offers alternatives that write the same file (``-o big.png`` with vble,
    rddm, onestep-sr): left in place, every alternative after the first would only
    print "skipped" and prove nothing about its own options.
    """
    outputs = command_outputs(args)
    if "--overwrite" in args:
        return outputs
    for path in outputs:
        full = path.resolve()
        if sandbox.parent not in full.parents:
            raise AssertionError(f"README command writes outside its working folder: {path}")
        if full.is_dir():
            shutil.rmtree(full)
        elif full.exists():
            full.unlink()
    return outputs


def shell_words(command: str, cwd: Path) -> list[str]:
    """The command's words as bash gives them (quotes removed, unquoted globs expanded in ``cwd``)."""
    bash = shutil.which("bash")
    if bash is None:
        return shlex.split(command)
    done = subprocess.run([bash, "-c", f"printf '%s\\0' {command}"], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.split("\0")[:-1]


def run_restore(words: list[str], sandbox: Path, where: str) -> None:
    """``restore ...`` in process; asserts exit code 0 and that each output was written."""
    from restore import cli

    args = getattr(cli, "spread_values", lambda argv: argv)(words[1:])
    outputs = fresh_outputs(args, sandbox)
    result = CliRunner().invoke(cli.app, args, catch_exceptions=True)
    detail = f"{where}\n$ {shlex.join(words)}\nexit code {result.exit_code}\n{result.output}"
    if result.exc_info and not isinstance(result.exception, SystemExit):
        detail += "".join(traceback.format_exception(*result.exc_info))
    assert result.exit_code == 0, detail
    for path in outputs:
        assert path.exists() and (path.is_file() or any(path.iterdir())), f"{where}: {path} was not written\n{detail}"


def run_script(words: list[str], sandbox: Path, where: str) -> None:
    """``python SCRIPT ...`` in a subprocess (this interpreter), cwd = the sandbox."""
    done = subprocess.run([sys.executable, *words[1:]], cwd=sandbox, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{where}\n$ {shlex.join(words)}\n{done.stdout}\n{done.stderr}"


# How each kind of README command runs (first word -> runner); a command no runner takes fails the test.
RUNNERS: dict[str, Callable[[list[str], Path, str], None]] = {
    "restore": run_restore,
    "python": run_script,
    "python3": run_script,
}


# ---------------------------------------------------------------- python snippets


PYTHON_NAMESPACE: dict[str, object] = {}
SKIPPED_NAMES: dict[str, int] = {}  # names defined by snippets that were skipped -> their README line


def free_names(code: str) -> set[str]:
    """Names ``code`` reads before its own top-level statements bind them: what it needs from earlier snippets."""
    bound, needed = set(), set()
    for stmt in ast.parse(code).body:
        loads = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        needed |= {name for name in loads - bound if name not in vars(builtins)}
        bound |= bound_names(stmt)
    return needed


def bound_names(code: str | ast.AST) -> set[str]:
    """Names ``code`` assigns or imports."""
    tree = ast.parse(code) if isinstance(code, str) else code
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def run_python(snippet: Snippet) -> None:
    """Exec the snippet in the namespace the earlier snippets left (README order), line numbers as in README."""
    needed = free_names(snippet.text)
    missing = sorted(n for n in needed if n not in PYTHON_NAMESPACE and n in SKIPPED_NAMES)
    if missing:
        SKIPPED_NAMES.update(dict.fromkeys(bound_names(snippet.text), snippet.line))
        pytest.skip(f"uses {', '.join(missing)} from the skipped snippet at README line {SKIPPED_NAMES[missing[0]]}")
    if "y" in needed and "y" not in PYTHON_NAMESPACE:  # an observation the README defines in another section
        PYTHON_NAMESPACE["y"] = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    code = compile("\n" * (snippet.line - 1) + snippet.text, str(README), "exec")
    exec(code, PYTHON_NAMESPACE)  # noqa: S102 - running the README's own code is the point


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.test_id for s in SNIPPETS])
def test_readme_snippet(snippet: Snippet, in_sandbox: Path) -> None:
    """The README line runs on the stand-ins: exit code 0 and its outputs written, or a python snippet that does not raise."""
    where = f"README.md line {snippet.line}"
    reason = skip_reason(snippet)
    if reason is not None:
        if snippet.kind == "python":
            SKIPPED_NAMES.update(dict.fromkeys(bound_names(snippet.text), snippet.line))
        pytest.skip(f"{where}: {reason}")
    if snippet.kind == "python":
        run_python(snippet)
        return
    for command in runnable_parts(snippet.text):
        words = shell_words(command, in_sandbox)
        runner = RUNNERS.get(words[0])
        assert runner is not None, (f"{where}: no rule runs or skips `{words[0]}` commands; "
                                    f"add one to RUNNERS or SKIP_RULES in {Path(__file__).name}")
        runner(words, in_sandbox, where)


def test_readme_has_code() -> None:
    """The harness found the README's commands (a parsing regression would silently test nothing)."""
    kinds = {s.kind for s in SNIPPETS}
    assert {"bash", "python"} <= kinds, f"README.md code blocks found: {kinds or 'none'}"
    assert sum(s.text.startswith("restore ") for s in SNIPPETS) >= 5


def test_readme_opens_with_the_main_job_then_the_tests() -> None:
    """First bash line: install, then `restore denoise ... --model lidia` on a bundled example; second: CI's test command."""
    bash = [s for s in SNIPPETS if s.kind == "bash"]
    assert len(bash) >= 2
    first, second = chain(bash[0].text), bash[1].text
    assert re.match(DROPPED_PARTS[0], first[0]) and "-e" in first[0].split() and "'.[test]'" in first[0], first[0]
    assert any("example:" in part for part in first[1:]), f"no bundled example (example:NAME) in {bash[0].text}"
    denoise = shlex.split(first[-1])
    assert denoise[:2] == ["restore", "denoise"] and denoise[denoise.index("--model") + 1] == "lidia", first[-1]
    ci_last = [ln.strip() for ln in CI_SCRIPT.read_text().splitlines() if ln.strip() and not ln.startswith("#")][-1]
    assert second == ci_last, f"README's test command `{second}` differs from .ci/run's `{ci_last}`"


def test_parsing_rules() -> None:
    """Comments, continuations, chains, installs and non-code blocks are handled as the module says."""
    markdown = "\n".join([
        "```bash",
        "# a comment line",
        "pip install -e '.[test]' && restore models   # trailing",
        "restore denoise 'a#b.png' -o x.png \\",
        "    --model lidia",
        "python -m pytest -q",
        "```",
        "```",
        "restore/   not code",
        "```",
        "```python",
        "x = 1  # one",
        "```",
    ])
    snippets = readme_snippets(markdown)
    assert [(s.line, s.kind) for s in snippets] == [(3, "bash"), (4, "bash"), (6, "bash"), (12, "python")]
    assert runnable_parts(snippets[0].text) == ["restore models"]
    assert snippets[1].text == "restore denoise 'a#b.png' -o x.png --model lidia"
    assert skip_reason(snippets[2]) is not None and skip_reason(snippets[0]) is None
    assert snippets[3].text.strip() == "x = 1"
    assert free_names("y2 = f(y)\nz = y2") == {"f", "y"}


def test_readme_models_table_is_what_restore_models_prints() -> None:
    """The README's weights table is `restore models --markdown`, so a new weight or score cannot be left out."""
    from restore.weights_table import markdown_table
    from restore.weights import read_manifest

    table = markdown_table(read_manifest()["models"])
    assert table in README.read_text(encoding="utf-8"), "README's models table is stale: paste `restore models --markdown`"

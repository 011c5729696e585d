"""The command line's information: --version, shell completion, `restore models` (plain, JSON, one model's page)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from restore.cli import app

runner = CliRunner()
SCREEN_LINES, SCREEN_COLUMNS = 50, 100
REPO = Path(__file__).resolve().parents[1]
VERDICTS = {"safe", "small loss", "unsafe", "untested", "no effect"}


def invoke(*args: str):
    return runner.invoke(app, list(args), terminal_width=SCREEN_COLUMNS)


def run_restore(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The console script's entry point in a fresh process (what a shell runs)."""
    code = "import sys; from restore.cli import main; sys.argv = ['restore', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_version_is_the_installed_distributions_and_loads_no_torch():
    script = ("import sys; from restore.cli import main; sys.argv = ['restore', '--version']\n"
              "try:\n    main()\nexcept SystemExit as e:\n    print('exit', e.code, 'torch', 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = proc.stdout.strip().splitlines()
    assert lines == [f"restore {metadata.version('restore')}", "exit 0 torch False"], proc.stderr


def test_help_offers_version_and_completion():
    text = invoke("--help").output
    for flag in ("--version", "--install-completion", "--show-completion"):
        assert flag in text
    assert len(text.splitlines()) <= SCREEN_LINES


def test_completion_script_and_completions_of_commands_and_flags():
    script = run_restore("--show-completion", "bash")
    assert script.returncode == 0 and "_RESTORE_COMPLETE" in script.stdout, script.stderr
    commands = run_restore(env={"_RESTORE_COMPLETE": "complete_bash", "COMP_WORDS": "restore com", "COMP_CWORD": "1"})
    assert commands.stdout.split() == ["compare"], commands.stderr
    flags = run_restore(env={"_RESTORE_COMPLETE": "complete_bash", "COMP_WORDS": "restore denoise --mo",
                             "COMP_CWORD": "2"})
    assert flags.stdout.split() == ["--model"], flags.stderr


def screen_lines(text: str) -> int:
    """Lines ``text`` takes on a SCREEN_COLUMNS-wide terminal (long lines wrap)."""
    return sum(max(1, math.ceil(len(line) / SCREEN_COLUMNS)) for line in text.splitlines())


def registered_names() -> list[str]:
    from restore.restorers import available

    return sorted(available())


@pytest.mark.parametrize("args", [["denoise", "--help"], ["compare", "--help"], ["models", "--help"], ["models"],
                                  *[["models", name] for name in registered_names()]])
def test_pages_fit_one_screen(args):
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert screen_lines(result.output) <= SCREEN_LINES, result.output


def test_listing_with_sizes_and_parameters_loads_no_torch():
    # Made current here, so that this holds while a restorer file is added and not yet catalogued.
    script = ("import sys, contextlib, io; import restore.catalogue as c; c.MODULES = c.modules_on_disk(); "
              "from restore.commands.list_models import print_models\n"
              "with contextlib.redirect_stdout(io.StringIO()) as out:\n    print_models()\n"
              "print('torch' in sys.modules, [line.split()[:5] for line in out.getvalue().splitlines() "
              "if 'lidia-gray-s25' in line])")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False [['lidia-gray-s25', 'lidia', '172.9', 'kB', '40.7']]", proc.stderr


@pytest.mark.parametrize("weights", ["lidia-gray-s25", "rddm-sr4", "cae-a0483"])
def test_sizes_and_parameter_counts_are_the_files(weights):
    from safetensors.torch import load_file

    from restore.catalogue import weights_dir
    from restore.weight_facts import weight_facts

    path = weights_dir() / f"{weights}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} is not shipped in this install")
    facts = weight_facts(weights)
    tensors = load_file(str(path))
    assert facts.parameters == sum(v.numel() for v in tensors.values() if v.is_floating_point())
    assert facts.bytes == path.stat().st_size
    header_names = {"float16": "F16", "bfloat16": "BF16", "float32": "F32", "int64": "I64"}
    assert set(facts.dtypes) == {header_names[str(v.dtype).removeprefix("torch.")] for v in tensors.values()}


def test_json_has_every_restorers_facts():
    from restore.tasks import TASK_TABLE

    result = invoke("models", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["default_models"] == {name: task.default_model for name, task in TASK_TABLE.items()}
    assert sorted(doc["restorers"]) == registered_names()
    for name, facts in doc["restorers"].items():
        for key in ("tasks", "channels", "halo", "tile_multiple", "stochastic", "half_precision", "options",
                    "weights", "default_for"):
            assert key in facts, (name, key)
        assert {p: v["verdict"] in VERDICTS for p, v in facts["half_precision"].items()} == {"fp16": True,
                                                                                             "bf16": True}, name
        assert all(TASK_TABLE[task].default_model == name for task in facts["default_for"])
    lidia = doc["restorers"]["lidia"]
    assert lidia["halo"] == 56 and {"name": "tile", "type": "int", "default": 512} in [
        {k: o[k] for k in ("name", "type", "default")} for o in lidia["options"]]
    assert invoke("models", "lidia", "--json").output == json.dumps(lidia, indent=2) + "\n"


def test_every_score_names_a_table_that_exists():
    doc = json.loads(invoke("models", "--json").output)
    cards = [w for facts in doc["restorers"].values() for w in facts["weights"]]
    assert cards and all(w["parameters"] for w in cards)
    for w in cards:
        for score in w["scores"]:
            assert score["table"] and (REPO / score["table"]).is_file(), (w["name"], score)


def test_bad_models_requests_are_one_line():
    for args in (["models", "no-such-model"], ["models", "--markdown", "--json"], ["models", "lidia", "--markdown"]):
        result = invoke(*args)
        assert result.exit_code == 1 and result.output.startswith("error: "), (args, result.output)
        assert len(result.output.strip().splitlines()) == 1

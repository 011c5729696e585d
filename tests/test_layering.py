"""The layering of DESIGN.md, checked on the source: file sizes, import cycles, import-linter contracts, light net imports.

A check that fails today because of code being reworked elsewhere is marked
``xfail(strict=True)`` with the import chain that breaks it: once the chain is
gone the test passes, strict turns that into a failure, and the mark must go.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # import_graph sits beside this file

from import_graph import Import, cycles, load_chain, package_imports  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "restore"
MAX_LINES = 400
CONTRACT_IDS = ("nets", "operators", "cli", "root", "inference")
# What ``import restore.nets.lidia`` must not load: a net stays cheap to import and free of the app around it.
# A name covers its package's modules and its sibling files (restore.raster: raster_files.py, raster_merger.py...).
HEAVY_FOR_A_NET = ("restore.cli", "restore.commands", "restore.tuners", "restore.pipeline", "restore.raster", "restore.scaleout")

# Checks that fail on the committed code, each with what breaks it (work in progress in other files). Remove a
# mark once its chain is gone: strict makes the passing test fail until then.
BROKEN_CONTRACTS: dict[str, str] = {}  # contract id -> the import chain that breaks it (none today)


def _chains(found: list[list[Import]]) -> str:
    return "\n".join("  " + " ; ".join(str(imp) for imp in chain) for chain in found)


def test_no_file_under_restore_is_over_400_lines() -> None:
    lengths = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in sorted(PACKAGE.rglob("*.py"))}
    over = [f"{path.relative_to(ROOT)} ({n} lines)" for path, n in lengths.items() if n > MAX_LINES]
    assert not over, f"files over {MAX_LINES} lines: split them by concept: " + ", ".join(over)


def test_no_import_cycle_at_load_time() -> None:
    """Module-level imports: the ones that run when a module is first imported."""
    found = cycles([imp for imp in package_imports(PACKAGE) if not imp.deferred])
    assert not found, "import cycles among restore's modules:\n" + _chains(found)


def test_no_import_cycle_even_through_imports_inside_functions() -> None:
    """Imports inside functions count too.

    Moving an import into a function stops a cycle from failing at load time but
    does not remove it: the two modules still need each other, cannot be read or
    tested apart, and the one imported late still runs against a half-built
    package if it is called early. import-linter counts them for the layering as well.
    """
    found = cycles(package_imports(PACKAGE))
    assert not found, "import cycles among restore's modules:\n" + _chains(found)


def test_the_layering_contracts_are_all_configured() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    assert config["root_package"] == "restore"
    assert sorted(c["id"] for c in config["contracts"]) == sorted(CONTRACT_IDS)


def _contract(contract_id: str):
    if contract_id not in BROKEN_CONTRACTS:
        return contract_id
    return pytest.param(contract_id, marks=pytest.mark.xfail(strict=True, reason=BROKEN_CONTRACTS[contract_id]))


@pytest.mark.parametrize("contract_id", [_contract(c) for c in CONTRACT_IDS])
def test_import_linter_contract_holds(contract_id: str) -> None:
    command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
               "--contract", contract_id, "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")]
    result = subprocess.run(command, cwd=ROOT, env=_env_importing_this_checkout(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[:8000] + result.stderr[-2000:]


def test_importing_the_lidia_net_loads_no_cli_tuner_pipeline_or_raster_module() -> None:
    script = "import sys, restore.nets.lidia; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=_env_importing_this_checkout(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = [m for m in result.stdout.split() if any(_belongs(m, h) for h in HEAVY_FOR_A_NET)]
    assert not loaded, "import restore.nets.lidia loads " + ", ".join(loaded) + "; through:\n" + _how_loaded(loaded)


def _how_loaded(loaded: list[str]) -> str:
    """One shortest load-time chain per area of ``HEAVY_FOR_A_NET`` that was loaded."""
    imports = package_imports(PACKAGE)
    lines = []
    for heavy in HEAVY_FOR_A_NET:
        chains = [load_chain(imports, "restore.nets.lidia", m) for m in loaded if _belongs(m, heavy)]
        chains = [c for c in chains if c]
        if chains:
            lines.append("  " + " ; ".join(str(imp) for imp in min(chains, key=len)))
    return "\n".join(lines) or "  (no chain of module-level imports: a call at load time imports it)"


def _belongs(module: str, area: str) -> bool:
    return module == area or module.startswith((area + ".", area + "_"))


def _env_importing_this_checkout() -> dict[str, str]:
    """This checkout first on the path, whatever is installed; one thread, as everywhere in the tests."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env

"""Declared restorer options: every registered restorer refuses what it does not declare, the same way everywhere."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

import restore
from restore.errors import RestoreError
from restore.options import NoOptions, build_options, declared, option, parse_assignments

MODELS = sorted(restore.available())


@pytest.mark.parametrize("model", MODELS)
def test_an_unknown_option_raises_and_lists_the_valid_ones(model):
    with pytest.raises(RestoreError) as raised:
        restore.load(model, nosuch=1)
    names = [f.name for f in dataclasses.fields(restore.available()[model].Options)]
    assert "'nosuch'" in str(raised.value) and all(n in str(raised.value) for n in names)


@pytest.mark.parametrize("model", MODELS)
def test_every_option_is_declared_frozen_with_help_and_its_default_builds(model):
    cls = restore.available()[model]
    assert dataclasses.is_dataclass(cls.Options) and cls.Options.__dataclass_params__.frozen
    options = restore.load(model).options
    assert isinstance(options, cls.Options)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(options, "x", 1)
    assert all(info.help for info in declared(cls.Options))


@pytest.mark.parametrize("model", MODELS)
def test_an_ill_typed_option_raises(model):
    for info in declared(restore.available()[model].Options):
        if info.from_text and info.kind.split(" ")[0] in ("int", "float", "bool"):
            with pytest.raises(RestoreError, match=f"option '{info.name}' of model '{model}' must be"):
                restore.load(model, **{info.name: "not-a-number"})


def test_typos_that_used_to_pass_silently_now_raise():
    with pytest.raises(RestoreError, match="has no option 'stpes'; its options: steps"):
        restore.load("rddm", stpes=5)
    with pytest.raises(RestoreError, match="between 1 and 1000"):
        restore.load("rddm", steps=0)
    with pytest.raises(RestoreError, match="cannot keep 3 samples out of 2"):
        restore.load("vble", samples=2, keep_samples=3)


def test_text_values_are_typed_by_the_declaration():
    assert restore.load("rddm", steps="5").steps == 5
    assert restore.load("vble", lam="0.5", weights_dir=str(Path("weights"))).options.lam == 0.5
    assert restore.load("reddiff", lam="none").options.lam is None
    with pytest.raises(RestoreError, match="pass it from Python"):
        restore.load("lidia", adapt_ref="ref.png")


@dataclass(frozen=True)
class _Toy:
    flag: bool = option(False, "a switch")
    count: int = option(3, "a count", low=1, high=9)
    mode: str = option("a", "a mode", choices=("a", "b"))
    rate: float | None = option(None, "a rate", above=0)


@pytest.mark.parametrize("given, message", [
    ({"count": 0}, "between 1 and 9"), ({"count": 2.5}, "must be an integer"), ({"count": True}, "must be an integer"),
    ({"mode": "c"}, "one of a, b"), ({"rate": 0}, "> 0"), ({"rate": float("nan")}, "must be a number"),
    ({"flag": "maybe"}, "true/false"), ({"nope": 1}, "has no option 'nope'; its options: flag, count, mode, rate"),
])
def test_option_checks(given, message):
    with pytest.raises(RestoreError, match=message):
        build_options(_Toy, given, "toy")


def test_option_values_from_text_and_python():
    built = build_options(_Toy, {"flag": "yes", "count": "4", "rate": "0.5"}, "toy")
    assert (built.flag, built.count, built.rate) == (True, 4, 0.5)
    assert build_options(_Toy, {"rate": 2}, "toy").rate == 2.0 and isinstance(build_options(_Toy, {"rate": 2}, "toy").rate, float)
    assert build_options(NoOptions, {}, "none") == NoOptions()


def test_assignments_parse_once_for_cli_and_bench():
    assert parse_assignments(["steps=5", " lam = 0.2 "]) == {"steps": "5", "lam": "0.2"}
    for bad in (["steps"], ["=5"]):
        with pytest.raises(RestoreError, match="KEY=VALUE"):
            parse_assignments(bad)
    with pytest.raises(RestoreError, match="given twice"):
        parse_assignments(["a=1", "a=2"])


def test_restore_models_name_prints_the_declared_options():
    from typer.testing import CliRunner

    from restore.cli import app

    result = CliRunner().invoke(app, ["models", "rddm"])
    assert result.exit_code == 0
    assert "steps" in result.output and "weights_dir" in result.output and "default None" in result.output
    assert CliRunner().invoke(app, ["models", "nosuch"]).exit_code == 1

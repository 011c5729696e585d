"""Everything known about a restorer without running it: what ``restore models NAME`` and ``--json`` report.

Its declaration (tasks, channels, halo, tile multiple, stochastic, reduced
precision safety, declared options with defaults), the tasks it is the
default model of, and its shipped weights: size, parameter count and storage
type from the files' headers, and measured scores with the result table each
comes from (the manifest card's ``score_tables``). Reading the declaration
imports the registry (torch); nothing is built or loaded.
"""
from __future__ import annotations

from pathlib import Path

from restore.catalogue import read_manifest
from restore.options import declared
from restore.restorers import available, registered
from restore.tasks import TASK_TABLE
from restore.weight_facts import weight_facts

PRECISIONS = ("fp16", "bf16")


def all_model_facts() -> dict:
    """``{"default_models": {task: model}, "restorers": {name: model_facts(name)}}`` for every registered restorer."""
    return {"default_models": {name: task.default_model for name, task in TASK_TABLE.items()},
            "restorers": {name: model_facts(name) for name in sorted(available())}}


def model_facts(name: str) -> dict:
    """One restorer's facts as plain JSON values (an unknown name raises ``RestoreError`` listing the known)."""
    cls = registered(name)
    return {
        "name": name,
        "description": cls.description,
        "tasks": list(cls.tasks),
        "default_for": [task for task, row in TASK_TABLE.items() if row.default_model == name],
        "channels": None if cls.channels is None else list(cls.channels),
        "halo": _plain(cls.halo),
        "tile_multiple": _plain(cls.tile_multiple),
        "stochastic": bool(cls.stochastic),
        "outputs": list(getattr(cls, "outputs", ("image",))),
        "half_precision": {p: precision_verdict(cls.half_precision.get(p, "untested: not measured"))
                           for p in PRECISIONS},
        "options": [{"name": o.name, "type": o.kind, "default": _plain(o.default), "help": o.help,
                     "from_text": o.from_text} for o in declared(cls.Options)],
        "weights": [weights_card(w, card) for w, card in sorted(read_manifest().get("models", {}).items())
                    if card.get("restorer") == name],
    }


def weights_card(name: str, card: dict) -> dict:
    """A manifest card with its file's facts and each score's source table."""
    facts = weight_facts(name)
    tables = card.get("score_tables", {})
    return {
        "name": name, "summary": card.get("summary", ""), "data": card.get("data"), "training": card.get("training"),
        "file": facts.file, "bytes": facts.bytes, "parameters": facts.parameters, "stored_as": list(facts.dtypes),
        "scores": [{"set": label, "value": value, "table": tables.get(label)}
                   for label, value in card.get("scores", {}).items()],
    }


def precision_verdict(text: str) -> dict:
    """``"safe: -0.001 dB (table)"`` -> ``{"verdict": "safe", "evidence": "-0.001 dB (table)"}``."""
    verdict, _, evidence = text.partition(":")
    return {"verdict": verdict.strip(), "evidence": evidence.strip()}


def _plain(value: object) -> object:
    """A JSON value: numbers, text, booleans and None as they are; paths as text; anything else by its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value) if isinstance(value, Path) else repr(value)

"""Declared restorer options: one frozen, typed dataclass per restorer, built and checked in one place.

A restorer declares its options as a frozen dataclass whose fields come from
:func:`option` (default, one-line help, range or choices). ``build_options``
turns keyword values (Python) or ``KEY=VALUE`` text (the CLI's ``-O``, the
bench's ``model:key=value``) into that dataclass, and refuses an unknown name,
a value of the wrong type or out of range with a ``RestoreError`` that lists
the valid options. Cross-field rules live in the dataclass's ``__post_init__``.
"""
from __future__ import annotations

import dataclasses
import numbers
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restore.errors import RestoreError

# Types a value can be given for as text (command line, bench specs).
TEXT_TYPES = (bool, int, float, str, Path)
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
NONE_WORDS = ("none", "null", "default")


def option(default: Any, help: str, *, low: float | None = None, high: float | None = None,
           above: float | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """A declared option: its default, one-line help, and the range (``low``/``high`` inclusive,
    ``above`` exclusive) or ``choices`` its value must be in (None passes every check)."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "above": above,
                                            "choices": choices})


@dataclass(frozen=True)
class NoOptions:
    """The options of a restorer that takes none."""


@dataclass(frozen=True)
class OptionInfo:
    """One declared option as ``restore models NAME`` shows it."""

    name: str
    kind: str  # "int", "float | None", ...
    default: Any
    help: str
    from_text: bool  # whether it can be given as KEY=VALUE text


def declared(options_type: type) -> list[OptionInfo]:
    """The options ``options_type`` declares, in declaration order."""
    hints = typing.get_type_hints(options_type)
    infos = []
    for f in dataclasses.fields(options_type):
        base, optional = _unwrap(hints[f.name])
        kind = getattr(base, "__name__", str(base)) + (" | None" if optional else "")
        infos.append(OptionInfo(f.name, kind, f.default, _describe(f), base in TEXT_TYPES))
    return infos


def build_options(options_type: type, given: Mapping[str, object], owner: str) -> Any:
    """The ``options_type`` instance for ``given`` (values or their text), every value checked.

    Raises:
        RestoreError: an unknown option (the valid ones listed), a value of the wrong
            type or outside its range, or a cross-field rule of ``__post_init__``.
    """
    fields = {f.name: f for f in dataclasses.fields(options_type)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        valid = ", ".join(fields) if fields else "none"
        raise RestoreError(f"model '{owner}' has no option {', '.join(map(repr, unknown))}; its options: {valid}")
    hints = typing.get_type_hints(options_type)
    values = {name: _checked(fields[name], hints[name], value, owner) for name, value in given.items()}
    return options_type(**values)


def parse_assignments(items: Iterable[str], where: str = "") -> dict[str, str]:
    """``["steps=5", "lam=0.2"]`` -> ``{"steps": "5", "lam": "0.2"}`` (values stay text: the declaration types them)."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise RestoreError(f"model option '{item}'{where} is not KEY=VALUE")
        if key in out:
            raise RestoreError(f"model option '{key}' given twice{where}")
        out[key] = value.strip()
    return out


def as_dict(options: Any) -> dict[str, Any]:
    """The options that differ from their defaults (what a run's settings record)."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
            if getattr(options, f.name) != f.default}


# ---------------------------------------------------------------------- checking one value


def _checked(f: dataclasses.Field, hint: Any, value: object, owner: str) -> object:
    base, optional = _unwrap(hint)
    where = f"option '{f.name}' of model '{owner}'"
    if isinstance(value, str) and base is not str:
        value = _from_text(value, base, optional, where)
    if value is None:
        if not optional:
            raise RestoreError(f"{where} must be {_type_name(base)}, got None")
        return None
    value = _typed(value, base, where)
    _check_range(f, value, where)
    return value


def _from_text(text: str, base: type, optional: bool, where: str) -> object:
    word = text.strip().lower()
    if optional and word in NONE_WORDS:
        return None
    try:
        if base is bool:
            if word in TRUE_WORDS or word in FALSE_WORDS:
                return word in TRUE_WORDS
            raise ValueError
        if base is int:
            return int(word)
        if base is float:
            return float(word)
        if base is Path:
            return Path(text)
    except ValueError:
        raise RestoreError(f"{where} must be {_type_name(base)}, got '{text}'") from None
    raise RestoreError(f"{where} takes a {_type_name(base)}, which cannot be given as text: pass it from Python")


def _typed(value: object, base: type, where: str) -> object:
    """``value`` as the declared type (an int for a float, a str for a Path), or an error."""
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        value = int(value) if ok else value
    elif base is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base is Path:
        ok = isinstance(value, (str, os.PathLike))
        value = Path(value) if ok else value
    else:
        ok = isinstance(value, base)
    if not ok:
        raise RestoreError(f"{where} must be {_type_name(base)}, got {type(value).__name__} {value!r}"[:200])
    return value


def _check_range(f: dataclasses.Field, value: object, where: str) -> None:
    meta = f.metadata
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise RestoreError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
    low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return
    if value != value:  # NaN passes every comparison below
        raise RestoreError(f"{where} must be a number, got nan")
    if above is not None and not value > above:
        raise RestoreError(f"{where} must be > {above:g}, got {value:g}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise RestoreError(f"{where} must be {_range_text(low, high)}, got {value:g}")


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def _describe(f: dataclasses.Field) -> str:
    meta = f.metadata
    extra = []
    if meta.get("choices"):
        extra.append(" | ".join(meta["choices"]))
    if meta.get("above") is not None:
        extra.append(f"> {meta['above']:g}")
    if meta.get("low") is not None or meta.get("high") is not None:
        extra.append(_range_text(meta.get("low"), meta.get("high")))
    return meta.get("help", "") + (f" ({'; '.join(extra)})" if extra else "")


def _unwrap(hint: Any) -> tuple[type, bool]:
    """(base type, whether None is allowed) of ``X`` or ``X | None``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else object), True
    return hint, False


def _type_name(base: type) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "text", Path: "a path"}.get(
        base, getattr(base, "__name__", str(base)))

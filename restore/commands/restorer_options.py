"""Restorer-specific CLI options (--samples, --lam, ...): passed on only to restorers that take them."""
from __future__ import annotations

import inspect

from restore.errors import RestoreError
from restore.restorers import available

# CLI flag -> the restorer's constructor argument.
FLAGS = {
    "--samples": "samples",
    "--save-samples": "keep_samples",
    "--lam": "lam",
    "--iterations": "iterations",
    "--lr": "lr",
    "--gamma": "gamma",
    "--steps": "steps",
}


def restorer_kwargs(model: str, given: dict[str, object]) -> dict[str, object]:
    """Constructor arguments for ``model`` from the flags that were given (value not None).

    A flag the model does not take is an error rather than silently ignored.
    """
    params = inspect.signature(available()[model].__init__).parameters
    kwargs = {}
    for flag, value in given.items():
        if value is None:
            continue
        name = FLAGS[flag]
        if name not in params:
            takers = sorted(m for m, cls in available().items() if name in inspect.signature(cls.__init__).parameters)
            raise RestoreError(f"model '{model}' does not take {flag} (models that do: {', '.join(takers) or 'none'})")
        kwargs[name] = value
    return kwargs


def gives(model: str, output: str) -> bool:
    """Whether ``model`` produces ``output`` ("std" or "samples") besides the image."""
    return output in getattr(available()[model], "outputs", ("image",))

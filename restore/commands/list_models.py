"""``restore models``: restorers, their tasks, shipped weights and measured scores."""
from __future__ import annotations

import typer

from restore.errors import RestoreError
from restore.restorers import available
from restore.weights import read_manifest


def print_models() -> None:
    """Print one block per restorer, then the shipped weights with their scores."""
    for name, cls in sorted(available().items()):
        typer.echo(f"{name:12s} tasks: {', '.join(cls.tasks):28s} {cls.description}")
    try:
        models = read_manifest().get("models", {})
    except RestoreError as e:
        typer.echo(f"\nshipped weights: unavailable ({e})")
        return
    typer.echo("\nshipped weights (measured scores; see models/<model>/README.md):")
    for wname, card in sorted(models.items()):
        scores = ", ".join(f"{k} {v}" for k, v in card.get("scores", {}).items()) or "not measured"
        typer.echo(f"  {wname:22s} {card.get('restorer', '?'):8s} {card.get('summary', '')}  [{scores}]")

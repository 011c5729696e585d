"""``restore models``: restorers, their tasks, shipped weights with their data, training budget and measured scores."""
from __future__ import annotations

import typer

from restore.errors import RestoreError
from restore.restorers import available
from restore.weights import read_manifest


def _scores(card: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in card.get("scores", {}).items()) or "not measured"


def print_models(markdown: bool = False) -> None:
    """Print one line per restorer, then the shipped weights; ``markdown``: the weights as a Markdown table."""
    try:
        models = read_manifest().get("models", {})
    except RestoreError as e:
        if markdown:
            raise
        models, missing = {}, str(e)
    else:
        missing = None
    if markdown:
        typer.echo(markdown_table(models))
        return
    for name, cls in sorted(available().items()):
        typer.echo(f"{name:12s} tasks: {', '.join(cls.tasks):28s} {cls.description}")
    if missing is not None:
        typer.echo(f"\nshipped weights: unavailable ({missing})")
        return
    typer.echo("\nshipped weights (data; training; measured scores; cards in models/<model>/README.md):")
    for wname, card in sorted(models.items()):
        typer.echo(f"  {wname:22s} {card.get('restorer', '?'):10s} {card.get('summary', '')}")
        typer.echo(f"  {'':22s} {'':10s} data: {card.get('data', '?')}; training: {card.get('training', '?')}")
        typer.echo(f"  {'':22s} {'':10s} measured: {_scores(card)}")


def markdown_table(models: dict) -> str:
    """The shipped weights as the Markdown table README.md carries (a test keeps the two equal)."""
    lines = ["| weights | model | what | data | training | measured |", "|---|---|---|---|---|---|"]
    for name, card in sorted(models.items()):
        cells = [f"`{name}`", card.get("restorer", "?"), card.get("summary", ""), card.get("data", "?"),
                 card.get("training", "?"), _scores(card)]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)

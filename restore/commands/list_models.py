"""``restore models``: restorers, their tasks, shipped weights with their data, training budget and measured scores.

The listing reads ``restore.catalogue`` and imports no torch (it starts in a
fraction of a second); one restorer's page imports the registry for its options.
"""
from __future__ import annotations

import typer

from restore.catalogue import entries, read_manifest
from restore.errors import RestoreError
from restore.weights_table import markdown_table, scores_text as _scores


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
    for name, entry in sorted(entries().items()):
        typer.echo(f"{name:12s} tasks: {', '.join(entry.tasks):28s} {entry.description}")
    if missing is not None:
        typer.echo(f"\nshipped weights: unavailable ({missing})")
        return
    typer.echo("\nshipped weights (data; training; measured scores; cards in models/<model>/README.md):")
    for wname, card in sorted(models.items()):
        typer.echo(f"  {wname:22s} {card.get('restorer', '?'):10s} {card.get('summary', '')}")
        typer.echo(f"  {'':22s} {'':10s} data: {card.get('data', '?')}; training: {card.get('training', '?')}")
        typer.echo(f"  {'':22s} {'':10s} measured: {_scores(card)}")


def print_model(name: str) -> None:
    """One restorer's page: what it does, its declared options with defaults, its shipped weights and scores."""
    from restore.options import declared
    from restore.restorers import registered

    cls = registered(name)
    typer.echo(f"{name}: {cls.description}")
    channels = "any" if cls.channels is None else " or ".join(map(str, cls.channels))
    typer.echo(f"  tasks: {', '.join(cls.tasks)}; channels: {channels}; halo: {cls.halo} px; "
               f"tile multiple: {cls.tile_multiple}; stochastic: {'yes' if cls.stochastic else 'no'}; "
               f"outputs: {', '.join(getattr(cls, 'outputs', ('image',)))}")
    options = declared(cls.Options)
    typer.echo("\noptions (-O KEY=VALUE on the command line, keywords of restore.load):" if options else "\noptions: none")
    for o in options:
        note = "" if o.from_text else " [Python only]"
        typer.echo(f"  {o.name:14s} {o.kind:22s} default {o.default!r:10s} {o.help}{note}")
    weights = {w: card for w, card in read_manifest().get("models", {}).items() if card.get("restorer") == name}
    if weights:
        typer.echo("\nshipped weights (cards in models/<model>/README.md):")
    for wname, card in sorted(weights.items()):
        typer.echo(f"  {wname:22s} {card.get('summary', '')}")
        typer.echo(f"  {'':22s} measured: {_scores(card)}")

"""``restore models``: restorers, shipped weights with sizes and scores; one restorer's page; all of it as JSON.

The listing reads ``restore.catalogue`` and the weights files' headers and
imports no torch (it starts in a fraction of a second); one restorer's page
and ``--json`` import the registry for the declarations (``restore.model_facts``).
Plain pages are cut to ``WIDTH`` columns so that each fits one screen.
"""
from __future__ import annotations

import json
import textwrap

import typer

from restore.catalogue import entries, read_manifest
from restore.errors import RestoreError
from restore.weight_facts import human_size, weight_facts
from restore.weights_table import markdown_table, scores_text as _scores

WIDTH = 100  # columns of the screen the plain pages are laid out for


def print_models(markdown: bool = False, as_json: bool = False) -> None:
    """One line per restorer, two per shipped weights; ``markdown``: README's table; ``as_json``: everything."""
    if markdown and as_json:
        raise RestoreError("--markdown and --json: choose one")
    if as_json:
        from restore.model_facts import all_model_facts

        typer.echo(json.dumps(all_model_facts(), indent=2))
        return
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
    typer.echo(f"{'restorer':11s} {'tasks':28s} what")
    for name, entry in sorted(entries().items()):
        typer.echo(_fit(f"{name:11s} {', '.join(entry.tasks):28s} {entry.description}"))
    if missing is not None:
        typer.echo(f"\nshipped weights: unavailable ({missing})")
        return
    typer.echo("\nshipped weights, measured scores (`restore models NAME`: options, data, training, score tables):")
    typer.echo(f"  {'weights':16s} {'restorer':10s} {'size':>8s} {'params':>7s}  what")
    for wname, card in sorted(models.items()):
        facts = weight_facts(wname)
        typer.echo(_fit(f"  {wname:16s} {card.get('restorer', '?'):10s} {human_size(facts.bytes):>8s} "
                        f"{human_size(facts.parameters, ''):>7s}  {card.get('summary', '')}"))
        typer.echo(_fit(f"  {'':16s} {_scores(card)}"))


def print_model(name: str, as_json: bool = False) -> None:
    """One restorer's page: declaration, precision safety, declared options, shipped weights and scores."""
    from restore.model_facts import model_facts

    facts = model_facts(name)
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    typer.echo(_fit(f"{name}: {facts['description']}"))
    channels = "any" if facts["channels"] is None else " or ".join(map(str, facts["channels"]))
    default = f" (the default for: {', '.join(facts['default_for'])})" if facts["default_for"] else ""
    typer.echo(_fit(f"  tasks: {', '.join(facts['tasks'])}{default}; channels: {channels}; "
                    f"outputs: {', '.join(facts['outputs'])}"))
    typer.echo(f"  halo: {facts['halo']} px; tile multiple: {facts['tile_multiple']}; "
               f"stochastic: {'yes' if facts['stochastic'] else 'no'}")
    for precision, safety in facts["half_precision"].items():
        _wrapped(f"  --precision {precision}: {safety['verdict']}: {safety['evidence']}", indent=6)
    options = facts["options"]
    typer.echo("\noptions (-O KEY=VALUE on the command line, keywords of restore.load):" if options else "\noptions: none")
    for o in options:
        note = "" if o["from_text"] else " [Python only]"
        _wrapped(f"  {o['name']} ({o['type']}, default {o['default']!r}): {o['help']}{note}", indent=6)
    if facts["weights"]:
        typer.echo("\nshipped weights (cards: models/<model>/README.md):")
    for w in facts["weights"]:
        stored = f" {'/'.join(w['stored_as'])}" if w["stored_as"] else ""
        typer.echo(_fit(f"  {w['name']}: {human_size(w['bytes'])}{stored}, "
                        f"{human_size(w['parameters'], '')} parameters; {w['summary']}"))
        typer.echo(_fit(f"    data: {w['data'] or '?'}; training: {w['training'] or '?'}"))
        for score in w["scores"]:
            source = f"  [{score['table']}]" if score["table"] else ""
            typer.echo(_fit(f"    {score['set']}: {score['value']}{source}"))
        if not w["scores"]:
            typer.echo("    not measured")


def _fit(line: str) -> str:
    """``line`` cut to the screen's width (the page or ``--json`` has the rest)."""
    return line if len(line) <= WIDTH else line[:WIDTH - 3] + "..."


def _wrapped(text: str, indent: int) -> None:
    typer.echo(textwrap.fill(text, WIDTH, subsequent_indent=" " * indent, break_on_hyphens=False))

"""The shipped weights as README.md's Markdown table (``restore models --markdown``; the campaign refreshes it)."""
from __future__ import annotations


def scores_text(card: dict) -> str:
    """A manifest card's measured scores on one line."""
    return ", ".join(f"{k} {v}" for k, v in card.get("scores", {}).items()) or "not measured"


def markdown_table(models: dict) -> str:
    """The shipped weights as the Markdown table README.md carries (a test keeps the two equal)."""
    lines = ["| weights | model | what | data | training | measured |", "|---|---|---|---|---|---|"]
    for name, card in sorted(models.items()):
        cells = [f"`{name}`", card.get("restorer", "?"), card.get("summary", ""), card.get("data", "?"),
                 card.get("training", "?"), scores_text(card)]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)

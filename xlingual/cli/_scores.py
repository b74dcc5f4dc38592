"""The score table ``xl train`` and ``xl evaluate`` print: one convention for both commands."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _entity_types(scores: dict) -> list[str]:
    """The types the scores hold: PER/LOC/ORG/MISC first (always, for the canonical schema), then any other, sorted."""
    from xlingual.data.labels import table_types

    return table_types(name for modes in scores.values() if isinstance(modes, dict) for s in modes.values() if isinstance(s, dict)
                       for name in s.get("per_type_f1", {}))


def print_scores(title: str, scores: dict) -> None:
    """One table of P/R/F1 (and F1 per entity type) per split and scoring mode, as ``xl train`` and ``xl evaluate`` print it."""
    types = _entity_types(scores)
    table = Table(title=title)
    for column in ("split", "mode", "P", "R", "F1", *[f"F1 {t}" for t in types]):
        table.add_column(column, justify="right" if column not in ("split", "mode") else "left")
    for split, modes in scores.items():
        if not isinstance(modes, dict) or "conlleval" not in modes:
            continue
        for mode, s in modes.items():
            per_type = [f"{s['per_type_f1'].get(t, 0.0):.2f}" for t in types]
            table.add_row(split, mode, f"{s['precision']:.2f}", f"{s['recall']:.2f}", f"{s['f1']:.2f}", *per_type)
    Console().print(table)

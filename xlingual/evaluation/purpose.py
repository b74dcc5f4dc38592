"""What a run was made for, when not for research: recorded by the run itself, so every report of it says so.

A run made by ``xl demo`` (tiny models on the package's made-up sample)
carries ``"purpose": "demo"`` in its ``metrics.json``. Any report that holds
such a run leaves the paper's numbers out and heads its tables with the
purpose's note, whoever writes the report (``xl demo`` or a later
``xl report``): the marking travels with the runs, not with the command.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PURPOSE_KEY = "purpose"
"""The ``metrics.json`` key that names a run's purpose (absent for research runs)."""
DEMO = "demo"

DEMO_LABEL = "demo (tiny models, made-up sample)"
DEMO_NOTE = ("DEMO NUMBERS: tiny models trained on the package's made-up sample and scored on its few test posts. "
             "They show the pipeline learns; they are not a reproduction of the paper, so its numbers are left out.")


@dataclass(frozen=True)
class Marking:
    """How a report marks runs of one purpose: a note heading it, a label for our numbers, and never the paper's."""

    note: str
    label: str


MARKINGS: dict[str, Marking] = {DEMO: Marking(DEMO_NOTE, DEMO_LABEL)}


def marking(purposes: Iterable[str]) -> Marking | None:
    """The marking of a report over runs with these purposes (None: research runs only).

    A purpose this version does not know still keeps the paper's numbers out,
    with a note that names it.
    """
    found = [MARKINGS.get(p) or Marking(f"Runs made for {p}: not a reproduction of the paper, so its numbers are left out.", p)
             for p in sorted(set(purposes))]
    if not found:
        return None
    return Marking(" ".join(m.note for m in found), " + ".join(m.label for m in found))


__all__ = ["DEMO", "DEMO_LABEL", "DEMO_NOTE", "MARKINGS", "PURPOSE_KEY", "Marking", "marking"]

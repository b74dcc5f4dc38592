"""Stopping a training run at a chosen step, as Ctrl-C would, and comparing a resumed run's history with an uninterrupted one's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Interrupt(KeyboardInterrupt):
    """What a loop hook raises to stop a run the way an interrupt does."""


def stop_at(step: int, stage: str | None = None) -> Callable[[Any], None]:
    """A loop hook that interrupts the run at ``global_step == step`` (of ``stage`` when one is named)."""
    def hook(loop: Any) -> None:
        if loop.global_step == step and (stage is None or loop.stage == stage):
            raise Interrupt()
    return hook


def timeless(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stage's history without its wall-clock seconds, the one part two equal runs do not share."""
    return [{key: value for key, value in entry.items() if key != "seconds"} for entry in history]

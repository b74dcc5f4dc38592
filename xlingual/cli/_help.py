"""How ``--help`` shows options: flags without a type placeholder, help texts and defaults whole at any width.

Typer's rich help draws options as a table whose help column cuts a word
longer than the column with an ellipsis: at 80 columns a default such as
``Helsinki-NLP/opus-mt-SRC-TGT`` read ``Helsinki-NLP/opus-mt-S…``, a value no
one can copy. Folding breaks such a word over lines instead. And a flag
(``--json``) takes no value, so the ``<bool>`` typer puts in its type column
promised an argument it does not take.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

HELP_OPTION_NAMES = ["-h", "--help"]


def wants_help(args: list[str]) -> bool:
    """Whether a command line asks for help (then the help renderer is set up; nothing else pays for it)."""
    return not args or any(arg in HELP_OPTION_NAMES for arg in args)


def takes_no_value(param: Any) -> bool:
    """A flag (``--json``, ``--no-cache``) or a counter (``-vv``): given by name alone."""
    return bool(getattr(param, "is_flag", False) or getattr(param, "count", False))


def hide_flag_placeholders(command: Any, help_option_names: Iterable[str] = HELP_OPTION_NAMES) -> None:
    """Give every flag of ``command`` and its sub-commands an empty placeholder (its ``--help`` included).

    The help option is made here (click makes it once per command and keeps
    it), so it is the one ``--help`` later shows.
    """
    names = list(help_option_names)
    ctx = command.context_class(command, help_option_names=names) if names else None
    help_option = command.get_help_option(ctx) if ctx is not None else None
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "param_type_name", None) == "option" and takes_no_value(param) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        hide_flag_placeholders(sub, names)


class _Folded:
    """A renderable drawn with ``overflow="fold"``: a word wider than its cell breaks over lines, never ends in an ellipsis."""

    def __init__(self, renderable: Any) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield from console.render(self.renderable, options.update(overflow="fold"))

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        return Measurement.get(console, options, self.renderable)


def fold_option_help() -> None:
    """Make typer's option tables fold long words in the help column (defaults included); called before help is drawn.

    Imported only then: the rich help code costs tens of milliseconds that a
    command which computes need not pay.
    """
    from typer import rich_utils

    original = rich_utils._get_parameter_help
    if getattr(original, "folds_long_words", False):
        return

    def folded(*args: Any, **kwargs: Any) -> Any:
        cell = original(*args, **kwargs)  # rich Columns of the help text, the default, "required": each drawn in its own grid cell
        if hasattr(cell, "renderables"):
            cell.renderables = [_Folded(item) for item in cell.renderables]
        return _Folded(cell)

    folded.folds_long_words = True  # type: ignore[attr-defined]
    rich_utils._get_parameter_help = folded


__all__ = ["HELP_OPTION_NAMES", "fold_option_help", "hide_flag_placeholders", "takes_no_value", "wants_help"]

"""Old option spellings that keep working without appearing in ``--help``.

Every command names its output ``--output`` (``-o``). Commands that once
said ``--out`` or ``--to`` still accept those spellings, so scripts written
for them run unchanged, but help shows one vocabulary. Click has no hidden
second name for an option; the command rewrites an old spelling into the
current one before it parses, so one option (one value, one error message
naming ``--output``) serves both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from typer.core import TyperCommand

END_OF_OPTIONS = "--"


def respell(args: Sequence[str], aliases: Mapping[str, str]) -> list[str]:
    """``args`` with each old option name (``--out X``, ``--out=X``) written as its current one; nothing after ``--`` changes."""
    result: list[str] = []
    for index, arg in enumerate(args):
        if arg == END_OF_OPTIONS:
            return result + list(args[index:])
        name, equals, value = arg.partition("=")
        result.append(f"{aliases[name]}{equals}{value}" if name in aliases else arg)
    return result


def with_aliases(aliases: Mapping[str, str]) -> type[TyperCommand]:
    """A command class (``app.command(cls=...)``) that accepts each old spelling in ``aliases`` as the option it maps to."""
    known = dict(aliases)

    class AliasedCommand(TyperCommand):
        old_spellings: dict[str, str] = known

        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            return super().parse_args(ctx, respell(args, self.old_spellings))

    return AliasedCommand


OUT_IS_OUTPUT = with_aliases({"--out": "--output"})
"""For the commands whose output option was ``--out`` (``xl features extract``, ``xl embeddings train|align``)."""

__all__ = ["OUT_IS_OUTPUT", "respell", "with_aliases"]

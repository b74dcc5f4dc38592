"""Typer options built from a library options dataclass (see :mod:`xlingual.option_fields`).

``@options_of(TrainOptions)`` on a command whose signature has
``options: TrainOptions`` replaces that parameter by one typer option per
flagged field (nested option classes included, such as ``AlignOptions.adversarial``),
in the order the class declares them, and calls the command with the class
built from the values given. The defaults shown by ``--help`` are the
class's own, so they cannot drift from what the library runs with.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from xlingual.option_fields import Flag, flag_of

Command = TypeVar("Command", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class FlaggedField:
    """One flagged field, with the path of field names that leads to it from the top class."""

    path: tuple[str, ...]
    annotation: Any
    default: Any
    flag: Flag

    @property
    def parameter(self) -> str:
        return "_".join(self.path)


def flagged_fields(options_class: type) -> list[FlaggedField]:
    """Every flagged field of ``options_class`` and of the option classes nested in it, in declaration order."""
    hints = typing.get_type_hints(options_class)
    found: list[FlaggedField] = []
    for declared in dataclasses.fields(options_class):
        annotation = hints[declared.name]
        if dataclasses.is_dataclass(annotation):
            found += [dataclasses.replace(inner, path=(declared.name, *inner.path)) for inner in flagged_fields(annotation)]
        elif (flag := flag_of(declared)) is not None:
            found.append(FlaggedField((declared.name,), annotation, declared.default, flag))
    return found


def build(options_class: type, values: dict[tuple[str, ...], Any]) -> Any:
    """``options_class`` with the given values by field path; every other field keeps its default."""
    hints = typing.get_type_hints(options_class)
    arguments: dict[str, Any] = {}
    for declared in dataclasses.fields(options_class):
        if dataclasses.is_dataclass(hints[declared.name]):
            nested = {path[1:]: value for path, value in values.items() if path[0] == declared.name}
            arguments[declared.name] = build(hints[declared.name], nested)
        elif (declared.name,) in values:
            arguments[declared.name] = values[(declared.name,)]
    return options_class(**arguments)


def options_of(options_class: type, parameter: str = "options") -> Callable[[Command], Command]:
    """Offer ``options_class``'s flagged fields as options of the decorated command, which receives the built class as ``parameter``."""
    fields = flagged_fields(options_class)

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        if parameter not in signature.parameters:
            raise TypeError(f"{command.__name__} has no parameter '{parameter}' to fill from {options_class.__name__}")
        generated = [inspect.Parameter(field.parameter, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=field.annotation,
                                       default=typer.Option(field.default, field.flag.name, help=field.flag.help)) for field in fields]
        parameters: list[inspect.Parameter] = []
        for name, declared in signature.parameters.items():
            parameters += generated if name == parameter else [declared]

        @functools.wraps(command)
        def run(**given: Any) -> Any:
            values = {field.path: given.pop(field.parameter) for field in fields}
            return command(**given, **{parameter: build(options_class, values)})

        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": signature.return_annotation}
        return typing.cast(Command, run)

    return decorate

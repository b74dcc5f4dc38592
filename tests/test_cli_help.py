"""Every command's ``--help`` shows the bracketed placeholders its source help text was written with.

The placeholders are read from the Typer app's registrations (docstrings and
``typer.Option``/``typer.Argument`` help), not from the built click commands,
so the test does not depend on how the app protects them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Annotated, get_args, get_origin

import pytest
import typer
from typer.models import ParameterInfo
from typer.testing import CliRunner

from xlingual.cli import app

PLACEHOLDER = re.compile(r"<[^<>\s]+>|\[[^\[\]\n]+\]")


def _callback_texts(callback) -> list[str]:
    """The docstring and every option's help, whether given as the default or in an ``Annotated`` shared option."""
    texts = [inspect.getdoc(callback) or ""]
    for parameter in inspect.signature(callback, eval_str=True).parameters.values():
        infos = [parameter.default, *get_args(parameter.annotation)[1:]] if get_origin(parameter.annotation) is Annotated else [parameter.default]
        texts += [info.help for info in infos if isinstance(info, ParameterInfo) and info.help]
    return texts


def source_help(typer_app: typer.Typer, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """(command path, help texts as written in the source) for the app, each group and each command."""
    texts = [typer_app.info.help] if isinstance(typer_app.info.help, str) else []
    if typer_app.registered_callback is not None:
        texts += _callback_texts(typer_app.registered_callback.callback)
    yield path, texts
    for command in typer_app.registered_commands:
        name = command.name or command.callback.__name__.replace("_", "-")
        yield (*path, name), [command.help or ""] + _callback_texts(command.callback)
    for group in typer_app.registered_groups:
        sub = group.typer_instance
        yield from source_help(sub, (*path, group.name or sub.info.name))


COMMANDS = dict(source_help(app))


def test_the_walk_finds_every_command() -> None:
    assert {("demo",), ("train",), ("embeddings", "train"), ("data", "validate"), ("features", "extract")} <= set(COMMANDS)
    assert len(COMMANDS) >= 18


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: " ".join(p) or "xl")
def test_help_shows_every_bracketed_placeholder(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "1000", "TERMINAL_WIDTH": "1000"}, terminal_width=1000)
    assert result.exit_code == 0, result.output
    rendered = " ".join(result.output.split())
    placeholders = {m for text in COMMANDS[path] for m in PLACEHOLDER.findall(" ".join(text.split()))}
    missing = sorted(p for p in placeholders if p not in rendered)
    assert not missing, f"xl {' '.join(path)} --help loses {missing}"


def test_the_reported_case() -> None:
    result = CliRunner().invoke(app, ["embeddings", "train", "--help"], env={"COLUMNS": "1000"}, terminal_width=1000)
    assert "default: <data-dir>/embeddings/fasttext.<lang>.vec" in result.output


@pytest.mark.parametrize("path", sorted(p for p in COMMANDS if len(p) >= 1 and p not in {("data",), ("embeddings",), ("features",)}), ids=" ".join)
def test_a_wrong_option_is_one_error_line_and_exit_2(path: tuple[str, ...]) -> None:
    """Usage errors read like every other xl error: one ``error:`` line naming the option, exit status 2."""
    result = CliRunner().invoke(app, [*path, "--no-such-option"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: ") and "--no-such-option" in result.output, result.output

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

from pathlib import Path

import pytest
import typer
import typer.main
from hypothesis import given
from hypothesis import strategies as st
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


# -- one vocabulary, shown whole ----------------------------------------------------------------------------------

NARROW = {"COLUMNS": "80"}


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Help drawn 80 columns wide (typer reads TERMINAL_WIDTH once, when its help module is first imported)."""
    from typer import rich_utils

    monkeypatch.setattr(rich_utils, "MAX_WIDTH", 80)


def _click_command(path: tuple[str, ...]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _squeezed(text: str) -> str:
    """The rendered help without box lines and white space: a value folded over lines reads whole again."""
    return re.sub(r"[\s│╭╮╰╯─]+", "", text)


def _shown_default(param) -> str | None:
    """The text of an option's default as help shows it, where it is a plain value (None: nothing to look for)."""
    default = param.default
    if isinstance(default, bool) or default is None or isinstance(default, (list, tuple)) or not param.show_default:
        return None
    return str(getattr(default, "value", default))


@pytest.mark.parametrize("path", sorted(p for p in COMMANDS if p), ids=" ".join)
def test_help_at_80_columns_shows_every_default_whole_and_no_placeholder_for_flags(path: tuple[str, ...], narrow: None) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env=NARROW, terminal_width=80)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    written = sum(text.count("…") for text in COMMANDS[path])
    assert result.output.count("…") == written, f"xl {' '.join(path)} --help cuts a word:\n{result.output}"
    assert "<bool>" not in result.output
    squeezed = _squeezed(result.output)
    for param in _click_command(path).params:
        shown = _shown_default(param)
        if shown:
            assert _squeezed(f"[default: {shown}]") in squeezed, f"{param.name}: default {shown!r} not shown whole"
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            line = next(line for line in result.output.splitlines() if re.search(rf"{re.escape(param.opts[0])}(?![\w-])", line))
            after = [word for word in line.split(param.opts[0], 1)[1].strip("│ ").split() if not word.startswith("-")]
            assert not after or not after[0].startswith("<"), f"{param.opts[0]} shows a type: {line}"


def test_the_reported_cut_default_reads_whole(narrow: None) -> None:
    result = CliRunner().invoke(app, ["translate", "--help"], env=NARROW, terminal_width=80)
    squeezed = _squeezed(result.output)
    assert "Default:Helsinki-NLP/opus-mt-SRC-TGT." in squeezed and "DATA_DIR/translated/DATASET.SRC-TGT.MODEL/" in squeezed
    json_line = next(line for line in result.output.splitlines() if "--json" in line)
    assert "<" not in json_line and "Print" in json_line


OLD_SPELLINGS = {("features", "extract"): "--out", ("embeddings", "train"): "--out", ("embeddings", "align"): "--out",
                 ("data", "download"): "--to"}


@pytest.mark.parametrize("path", sorted(OLD_SPELLINGS), ids=" ".join)
def test_old_output_spellings_are_hidden_aliases_of_output(path: tuple[str, ...]) -> None:
    command = _click_command(path)
    old = OLD_SPELLINGS[path]
    names = {name for param in command.params for name in (*param.opts, *param.secondary_opts)}
    assert "--output" in names and "-o" in names and old not in names
    assert command.old_spellings == {old: "--output"}
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "1000"}, terminal_width=1000)
    assert not re.search(rf"{old}\b", result.output.split("Examples")[0]), result.output
    assert "--output" in result.output


def test_an_old_spelling_reaches_the_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error

    from xlingual.data import download

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline")))
    for args in (["--to", str(tmp_path / "a")], [f"--to={tmp_path / 'a'}"], ["--output", str(tmp_path / "a")], ["-o", str(tmp_path / "a")]):
        result = CliRunner().invoke(app, ["data", "download", "twitter2015", *args])
        assert result.exit_code == 2 and "cannot download" in result.output and "No such option" not in result.output, result.output


def test_an_aliased_command_takes_the_old_spelling_as_the_new_one() -> None:
    from xlingual.cli._aliases import with_aliases

    toy = typer.Typer()
    seen: list[str | None] = []

    @toy.command("go", cls=with_aliases({"--out": "--output"}))
    def go(output: str = typer.Option(None, "--output", "-o"), rest: list[str] = typer.Argument(None)) -> None:
        seen.append(output)
        seen.extend(rest or [])

    @toy.command("other")
    def other() -> None:  # two commands, so "go" is a sub-command
        pass

    for args, expected in ((["--out", "x"], ["x"]), (["--out=y"], ["y"]), (["-o", "z"], ["z"]), (["--output", "w", "--", "--out"], ["w", "--out"])):
        seen.clear()
        result = CliRunner().invoke(toy, ["go", *args])
        assert result.exit_code == 0 and seen == expected, (args, result.output)


@given(st.lists(st.sampled_from(["--out", "--out=v", "--output", "--", "x", "--outx", "-o", "--to", "=", "--out="]), max_size=12))
def test_respell_changes_old_names_only_and_nothing_after_the_end_of_options(args: list[str]) -> None:
    from xlingual.cli._aliases import respell

    result = respell(args, {"--out": "--output"})
    assert len(result) == len(args)
    end = args.index("--") if "--" in args else len(args)
    assert result[end:] == args[end:]
    for before, after in zip(args[:end], result[:end]):
        assert after == (before.replace("--out", "--output", 1) if before.partition("=")[0] == "--out" else before)


def test_a_wrong_element_of_a_list_is_named_with_the_choices() -> None:
    result = CliRunner().invoke(app, ["experiment", "--direction", "en-zh", "--models", "acn,umtt", "--dry-run"])
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.count("\n") == 0 and "'umtt'" in line and "did you mean 'umt'" in line and "'acn'" not in line
    assert all(name in line for name in ("acn", "umt", "2mner")), line

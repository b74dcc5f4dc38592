"""Docs that stay true: every ``xl …`` command README.md and docs/*.md show names a command and options that exist.

Each command (in fenced code blocks, continuation lines joined, and in inline
code) is split with shlex and walked down the CLI's click tree
(``typer.main.get_command(app)``): each subcommand must exist, and every
``--option``/``-o`` must be one of the command it is given to (or of a group
above it, where group options go). Arguments and option values are not
checked; prose with an unmatched quote is read up to the quote. ``<placeholder>``, ``...`` and ``…`` stand for words the reader fills
in: a placeholder where a subcommand belongs leaves that command unchecked, and
``a/b`` where a subcommand belongs checks both. A few other figures the docs
state are pinned here too.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from xlingual.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = "PLACEHOLDER"
CONTROL = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "(", ")"}


@dataclass(frozen=True)
class Shown:
    """One ``xl`` command as a doc shows it: where, and its words after ``xl``."""

    where: str
    text: str
    words: tuple[str, ...]


def _words(text: str) -> list[list[str]] | None:
    """The shell words of each command in ``text`` (split at pipes, ``&&``, ``;`` and redirections); None if shlex cannot read it."""
    text = re.sub(r"<[^<>\n]*>", PLACEHOLDER, text)  # <run folder>, <model>: one word the reader fills in
    lexer = shlex.shlex(text, posix=True, punctuation_chars="|&;<>()")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    commands, current = [], []
    for token in tokens:
        if token in CONTROL:
            commands.append(current)
            current = []
        else:
            current.append(token)
    return [*commands, current]


def _xl_words(words: list[str]) -> tuple[str, ...] | None:
    """The words after ``xl`` (or ``python -m xlingual``, ``-m xlingual.cli``) when ``words`` run the CLI, after any ``VAR=value``."""
    i = 0
    while i < len(words) and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[i]):
        i += 1
    if i < len(words) and words[i] == "xl":
        return tuple(words[i + 1:])
    for j in range(len(words) - 1):
        if words[j] == "-m" and words[j + 1] in ("xlingual", "xlingual.cli"):
            return tuple(words[j + 2:])
    return None


def shown_commands(text: str, name: str) -> tuple[list[Shown], list[str]]:
    """Every ``xl`` command of a Markdown text, and the places whose text shlex could not split."""
    found: list[Shown] = []
    unreadable: list[str] = []

    def add(snippet: str, line: int) -> None:
        commands = _words(snippet)
        if commands is None:  # an unmatched quote, as in prose (`xl embeddings   MUSE-style (ACN's vectors)`): the words before it
            commands = _words(re.split(r"['\"]", snippet, maxsplit=1)[0])
        if commands is None:
            if re.search(r"(^|\s)xl\s", snippet):
                unreadable.append(f"{name}:{line}: {snippet}")
            return
        for words in commands:
            xl = _xl_words(words)
            if xl is not None:
                found.append(Shown(f"{name}:{line}", snippet.strip(), xl))

    lines = text.splitlines()
    in_block, pending, start = False, "", 0
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if in_block:
            body = re.sub(r"^\s*\$ ", "", line)
            if not pending:
                start = number
            if body.rstrip().endswith("\\"):
                pending += body.rstrip()[:-1] + " "
                continue
            add(pending + body, start)
            pending = ""
        else:
            for match in re.finditer(r"`(xl(?: [^`]*)?)`", line):
                add(match.group(1), number)
    return found, unreadable


def _is_group(command: Any) -> bool:
    """A command with subcommands (typer ships its own click, so this goes by shape, not by class)."""
    return isinstance(getattr(command, "commands", None), dict)


def _is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _placeholder(word: str) -> bool:
    return PLACEHOLDER in word or "..." in word or "…" in word


def _option_names(command: Any) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        if _is_option(param):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def _known_option(word: str, options: set[str], counted: set[str]) -> bool:
    name = word.split("=", 1)[0]
    if name in options:
        return True
    # -vv: a count flag given twice
    return bool(re.fullmatch(r"-([A-Za-z])\1+", word)) and f"-{word[1]}" in counted


def check_command(root: Any, words: tuple[str, ...]) -> list[str]:
    """What is wrong with ``xl WORDS``: an unknown subcommand or an option its command lacks (empty: nothing)."""
    problems: list[str] = []
    path: list[Any] = [root]
    rest = list(words)
    while _is_group(path[-1]) and rest:
        group = path[-1]
        word = rest[0]
        if word.startswith("-"):
            if not _known_option(word, _all_options(path), _counted(path)):
                problems.append(f"{' '.join(c.name or 'xl' for c in path)}: no option {word.split('=', 1)[0]}")
            rest.pop(0)
            continue
        if _placeholder(word):
            return problems  # the reader fills in the command: its options cannot be checked
        names = word.split("/") if "/" in word else [word]
        commands = [group.commands.get(n) for n in names]
        if any(c is None for c in commands):
            if "/" not in word:
                problems.append(f"{' '.join(c.name or 'xl' for c in path)}: no command {word}")
            return problems  # an argument or prose (`xl train / xl experiment`): nothing more to check
        rest.pop(0)
        if len(commands) > 1:
            for command in commands:
                problems += check_command_from([*path, command], rest)
            return problems
        path.append(commands[0])
    return problems + check_command_from(path, rest)


def _all_options(path: list[Any]) -> set[str]:
    return set().union(*(_option_names(c) for c in path))


def _counted(path: list[Any]) -> set[str]:
    return {opt for c in path for p in c.params if _is_option(p) and getattr(p, "count", False) for opt in p.opts}


def check_command_from(path: list[Any], rest: list[str]) -> list[str]:
    """The options among ``rest`` that neither the command at the end of ``path`` nor a group above it has."""
    if _is_group(path[-1]) and rest and not rest[0].startswith("-"):
        return check_command(path[-1], tuple(rest)) if len(path) == 1 else _descend(path, rest)
    options, counted = _all_options(path), _counted(path)
    name = " ".join(c.name or "xl" for c in path)
    return [f"{name}: no option {word.split('=', 1)[0]}" for word in rest
            if word.startswith("-") and word != "-" and not re.fullmatch(r"-\d[\d.eE-]*", word) and not _placeholder(word)
            and not _known_option(word, options, counted)]


def _descend(path: list[Any], rest: list[str]) -> list[str]:
    problems = check_command(path[-1], tuple(rest))
    prefix = " ".join(c.name or "xl" for c in path[:-1])
    return [f"{prefix} {p}" for p in problems]


@pytest.fixture(scope="module")
def cli() -> Any:
    return typer.main.get_command(app)


def test_every_xl_command_in_the_docs_names_a_command_and_options_that_exist(cli):
    problems, unreadable, count = [], [], 0
    for doc in DOCS:
        shown, bad = shown_commands(doc.read_text(encoding="utf-8"), str(doc.relative_to(ROOT)))
        unreadable += bad
        count += len(shown)
        problems += [f"{s.where}: `xl {' '.join(s.words)}`: {p}" for s in shown for p in check_command(cli, s.words)]
    assert count > 100, f"only {count} xl commands found in {len(DOCS)} files: the extraction is broken"
    assert not unreadable, "shlex cannot split:\n" + "\n".join(unreadable)
    assert not problems, f"{len(problems)} command(s) in the docs that the CLI does not have:\n" + "\n".join(problems)


@pytest.mark.parametrize("markdown,problem", [
    ("Run `xl train --config src_tgt --cofnig x`.", "train: no option --cofnig"),
    ("```bash\nxl experiment --direction en-zh \\\n    --seed 3\n```", "experiment: no option --seed"),
    ("```\n$ OMP_NUM_THREADS=1 xl trian --config src\n```", "xl: no command trian"),
    ("`xl data stats --dataset cmner --jsn`", "xl data stats: no option --jsn"),
    ("```\nxl features extract --backbone vgg16 && xl report runs --htm\n```", "report: no option --htm"),
    ("```\naccelerate launch -m xlingual.cli train --config x --resum\n```", "train: no option --resum"),
    ("`xl data list/validate --datasetz f`", "xl data list: no option --datasetz"),
])
def test_a_renamed_option_or_command_is_caught(cli, markdown, problem):
    shown, unreadable = shown_commands(markdown, "x.md")
    assert not unreadable and len(shown) >= 1
    problems = [p for s in shown for p in check_command(cli, s.words)]
    assert any(p.endswith(problem) for p in problems), problems


@pytest.mark.parametrize("markdown", [
    "`xl experiment ... --dry-run`", "`xl <command> --help`", "`xl train --config src_tgt --set lr=3e-5 -h`", "`xl -vv demo`",
    "```\nxl report runs/ --output report   # Tables 2-4: Markdown, LaTeX\n```", "`xl`", "`xl data list/validate`",
    "`xl predict RUN --input posts.txt`", "`xl train … --set model.hiden=1 --dry-run`",
])
def test_placeholders_arguments_and_comments_are_not_problems(cli, markdown):
    shown, unreadable = shown_commands(markdown, "x.md")
    assert not unreadable and shown
    assert [p for s in shown for p in check_command(cli, s.words)] == []


# -- other figures the docs state ------------------------------------------------------

def test_the_readme_counts_the_packaged_configs_as_they_are():
    from xlingual.train.config import MODEL_TYPES, DIRECTIONS, SETTINGS, packaged_config_names

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    claimed = re.search(r"resolved into the (\d+) configs \((\d+) models × (\d+) directions × (\d+) settings", readme)
    assert claimed is not None
    assert tuple(map(int, claimed.groups())) == (len(packaged_config_names()), len(MODEL_TYPES), len(DIRECTIONS), len(SETTINGS))


def test_help_names_every_model_and_setting():
    from xlingual.train.config import MODEL_TYPES, SETTINGS

    top = CliRunner().invoke(app, ["--help"], terminal_width=200).output
    assert "ACN, UMT and 2M-NER" in top
    for command in (["train", "--help"], ["experiment", "--help"]):
        text = " ".join(CliRunner().invoke(app, command, terminal_width=200).output.replace("│", " ").split())
        for name in (*MODEL_TYPES, *SETTINGS):
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"xl {command[0]} --help lacks {name}"


def test_twitter2017_misc_round_trips_only_with_the_recorded_spelling(tmp_path):
    """README: read_samples -> write_samples writes the format's OTHER; the spelling parse_file records writes MISC back."""
    from xlingual.data.formats import parse_file, read_samples, write_samples

    original = "IMGID:1\nApple\tB-MISC\nWatch\tI-MISC\nin\tO\nParis\tB-LOC\n\nIMGID:2\nhi\tO\n"
    source = tmp_path / "t17.txt"
    source.write_text(original, encoding="utf-8")
    write_samples(tmp_path / "plain.txt", read_samples(source), "twitter")
    assert (tmp_path / "plain.txt").read_text(encoding="utf-8") == original.replace("MISC", "OTHER")
    write_samples(tmp_path / "kept.txt", read_samples(source), "twitter", spelling=parse_file(source).type_spellings)
    assert (tmp_path / "kept.txt").read_text(encoding="utf-8") == original

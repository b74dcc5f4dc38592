"""Command-line options built from options dataclasses: the flag, help and default are the field's, nested classes included."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import typer
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.cli._option_fields import flagged_fields, options_of
from xlingual.embeddings.options import AdversarialOptions, AlignOptions, TrainOptions
from xlingual.option_fields import option


@dataclass(frozen=True)
class Inner:
    rate: float = option(0.5, "--inner-rate", "A nested rate.")
    hidden: int = 7


@dataclass(frozen=True)
class Outer:
    size: int = option(3, "--size", "A size.")
    kept: str = "library only"
    inner: Inner = field(default_factory=Inner)
    name: str = option("x", "--name", "A name.")


def _command() -> tuple[typer.Typer, list]:
    seen: list = []
    cli = typer.Typer()

    @cli.command()
    @options_of(Outer)
    def run(first: int = typer.Option(1, "--first"), options: Outer = Outer(), last: bool = typer.Option(False, "--last")) -> None:
        seen.append((first, options, last))

    @cli.command()
    def other() -> None:  # a second command, so typer keeps the command name
        pass

    return cli, seen


def test_flagged_fields_are_offered_in_order_and_build_the_class_with_the_rest_at_default() -> None:
    assert [f.flag.name for f in flagged_fields(Outer)] == ["--size", "--inner-rate", "--name"]
    cli, seen = _command()
    result = CliRunner().invoke(cli, ["run", "--size", "9", "--inner-rate", "0.25", "--last"])
    assert result.exit_code == 0, result.output
    assert seen == [(1, Outer(size=9, inner=Inner(rate=0.25)), True)]
    result = CliRunner().invoke(cli, ["run"])
    assert seen[-1] == (1, Outer(), False)
    result = CliRunner().invoke(cli, ["run", "--hidden", "2"])
    assert result.exit_code == 2 and "No such option: --hidden" in result.output  # a library-only field is no option
    help_text = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200).output
    assert help_text.index("--first") < help_text.index("--size") < help_text.index("--inner-rate") < help_text.index("--name") < help_text.index("--last")


def test_a_command_without_the_parameter_is_refused_when_declared() -> None:
    with pytest.raises(TypeError, match="no parameter 'options' to fill from Outer"):
        options_of(Outer)(lambda other=1: None)


def test_xl_embeddings_passes_the_options_given_and_the_class_defaults(monkeypatch, tmp_path) -> None:
    from xlingual.embeddings import align as align_module
    from xlingual.embeddings import train as train_module

    calls: dict = {}

    def fake_train(corpus, target, lang, **kwargs):
        calls["train"] = kwargs["options"]
        return target

    def fake_align(*args, **kwargs):
        calls["align"] = kwargs["options"]
        raise typer.Exit(0)  # the options are what this test is about, not an alignment

    monkeypatch.setattr(train_module, "train_vectors", fake_train)
    monkeypatch.setattr(align_module, "align", fake_align)
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["embeddings", "train", "--corpus", str(corpus), "--lang", "de", "--dim", "7", "--min-count", "1",
                                      "--output", str(tmp_path / "v.vec")])
    assert result.exit_code == 0, result.output
    assert calls["train"] == TrainOptions(dim=7, min_count=1)
    result = CliRunner().invoke(app, ["embeddings", "align", "--src-emb", "a.vec", "--tgt-emb", "b.vec", "--output", str(tmp_path / "out"),
                                      "--adv-epochs", "2", "--seed", "4", "--restarts", "1", "--refinement", "0"])
    assert calls["align"] == AlignOptions(refinement=0, restarts=1, adversarial=AdversarialOptions(epochs=2, seed=4)), result.output

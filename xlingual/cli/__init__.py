"""The ``xl`` command line: a thin layer over the library.

Each stage has one module here that parses options, calls one library
function and prints its result. Errors of the :class:`XlingualError` family
become one line on stderr and exit status 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import click
import typer
from typer.core import TyperGroup

from xlingual import __version__
from xlingual.errors import XlingualError

logger = logging.getLogger("xlingual")


class _ErrorHandlingGroup(TyperGroup):
    """Turns library errors into ``error: <message>`` and exit 2, for every sub-command."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except XlingualError as err:
            logger.debug("error details", exc_info=True)
            message = " ".join(str(err).split("\n")[:1])
            click.echo(f"error: {message}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            click.echo("interrupted: finished work is saved; run the same command again to resume", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_ErrorHandlingGroup,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    help="xlingual: cross-lingual multimodal NER (translate and project datasets, align embeddings, "
    "extract image features, train and report ACN/UMT).",
)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time, not the stream current at set-up.

    Test runners and notebooks swap ``sys.stderr`` (and close their stand-in
    afterwards); a handler holding the old object would then fail on every log call.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(verbose: int) -> None:
    """INFO from xlingual by default, DEBUG with -v, DEBUG everywhere with -vv."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(handlers=[handler], level=logging.DEBUG if verbose > 1 else logging.WARNING, force=True)
    logging.getLogger("xlingual").setLevel(level)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"xlingual {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-v: debug from xlingual, -vv: from all libraries)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """xlingual: cross-lingual multimodal NER."""
    setup_logging(verbose)


# One line per stage, in pipeline order; each module adds its commands to ``app``.
from xlingual.cli import data as _data  # noqa: E402
from xlingual.cli import demo as _demo  # noqa: E402
from xlingual.cli import embeddings as _embeddings  # noqa: E402
from xlingual.cli import features as _features  # noqa: E402
from xlingual.cli import predict as _predict  # noqa: E402
from xlingual.cli import train as _train  # noqa: E402
from xlingual.cli import translate as _translate  # noqa: E402

for _stage in (_data, _translate, _embeddings, _features, _train, _predict, _demo):
    _stage.register(app)

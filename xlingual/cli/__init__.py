"""The ``xl`` command line: a thin layer over the library.

Each stage has one module here that parses options, calls one library
function and prints its result. Errors of the :class:`XlingualError` family,
and what the machine causes (a full disk, a read-only folder, a file we may not
write: :func:`xlingual.errors.storage_error_message`), become one line on
stderr and exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import inspect
import logging
import re
import shlex
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
import typer
from typer.core import TyperGroup

from xlingual import __version__
from xlingual.cli._console import setup_logging
from xlingual.cli._help import HELP_OPTION_NAMES, fold_option_help, hide_flag_placeholders, wants_help
from xlingual.errors import XlingualError, storage_error_message

logger = logging.getLogger("xlingual")


_MARKDOWN_SPECIAL = re.compile(r"([<\[])")
_INDENTED_CODE = re.compile(r"^( {4,}|\t)")


def _escape_markdown(text: str) -> str:
    """Backslash-escape ``<`` and ``[`` so Markdown shows ``<lang>`` and ``[default: ...]`` as written.

    Markdown takes ``<data-dir>`` for an HTML tag and drops it (``--help``
    then says "default: /embeddings/fasttext..vec"). Indented example lines
    are code blocks, where a backslash would show, so they are left alone.
    """
    lines = inspect.cleandoc(text).split("\n")
    return "\n".join(line if _INDENTED_CODE.match(line) else _MARKDOWN_SPECIAL.sub(r"\\\1", line) for line in lines)


def keep_help_placeholders(command: click.Command) -> None:
    """Make every help text of ``command`` and its sub-commands render its bracketed placeholders.

    Applied once to the whole command tree (see :class:`_ErrorHandlingGroup`),
    so no help string needs escaping by hand.
    """
    if getattr(command, "rich_markup_mode", None) == "markdown":
        for attribute in ("help", "short_help", "epilog"):
            if getattr(command, attribute, None):
                setattr(command, attribute, _escape_markdown(getattr(command, attribute)))
        for param in command.params:
            if getattr(param, "help", None):
                param.help = _escape_markdown(param.help)
    for sub in getattr(command, "commands", {}).values():
        keep_help_placeholders(sub)


def _exception_classes(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from click and, where typer carries its own copy of click (typer >= 0.26), from that copy too."""
    modules = [click.exceptions]
    try:
        from typer import _click as vendored  # typer's vendored click raises its own exception classes

        modules.append(vendored.exceptions)
    except ImportError:
        pass
    return tuple(dict.fromkeys(getattr(m, name) for m in modules if hasattr(m, name)))


_NO_ARGS_IS_HELP = _exception_classes("NoArgsIsHelpError")
_USAGE_ERROR = _exception_classes("UsageError")
_CLICK_EXCEPTION = _exception_classes("ClickException")
_ABORT = _exception_classes("Abort")


#: options whose value may be left out, and the value they then take (``--ray`` alone: a local Ray runtime)
OPTIONAL_VALUES: dict[str, str] = {"--ray": "local"}


def fill_optional_values(args: list[str]) -> list[str]:
    """``--ray`` followed by nothing or by another option becomes ``--ray=local`` (the parser has no optional values)."""
    return [f"{arg}={OPTIONAL_VALUES[arg]}" if arg in OPTIONAL_VALUES and (i + 1 == len(args) or args[i + 1].startswith("-")) else arg
            for i, arg in enumerate(args)]


#: commands whose resume needs an option the first run did not have (``xl train`` refuses a folder in use without it)
RESUME_OPTIONS: dict[str, str] = {"train": "--resume"}


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's time limit), turned into the interrupt it is, so it ends the same way as Ctrl-C."""

    exit_code = 128 + signal.SIGTERM


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM raises :class:`Terminated` (in the main thread only, where signals are handled)."""
    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resume_command(args: list[str]) -> str:
    """The exact command line that resumes the interrupted ``xl`` command ``args``."""
    command = next((arg for arg in args if not arg.startswith("-")), "")
    option = RESUME_OPTIONS.get(command)
    extra = [option] if option and option not in args and "--resume-partial" not in args else []
    return shlex.join(["xl", *args, *extra])


class _ErrorHandlingGroup(TyperGroup):
    """Turns library errors and storage errors (``PATH: No space left on device``) into ``error: <message>`` and exit 2, for every sub-command.

    It is also the root of the command tree Typer builds, so it is where every
    help text of the app gets its placeholders protected from Markdown.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        keep_help_placeholders(self)
        hide_flag_placeholders(self, (self.context_settings or {}).get("help_option_names", HELP_OPTION_NAMES))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, fill_optional_values(list(args)))

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode: bool = True, **extra):  # type: ignore[override]
        """Usage errors (an unknown choice, a missing option) become one ``error:`` line and exit 2, like library errors.

        Typer would draw them in a multi-line box; a line is what scripts and
        logs can grep, and what every other ``xl`` error looks like.
        """
        if not standalone_mode:
            return super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        self._args = list(sys.argv[1:] if args is None else args)
        if wants_help(self._args):
            fold_option_help()
        try:
            with sigterm_as_interrupt():
                result = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        except _NO_ARGS_IS_HELP as err:
            fold_option_help()
            err.show()  # type: ignore[attr-defined]
            sys.exit(err.exit_code)  # type: ignore[attr-defined]
        except _USAGE_ERROR as err:
            ctx = getattr(err, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            message = " ".join(err.format_message().split()).replace("Value error, ", "")  # type: ignore[attr-defined]
            click.echo(f"error: {message}{where}", err=True)
            sys.exit(err.exit_code)  # type: ignore[attr-defined]
        except _CLICK_EXCEPTION as err:
            err.show()  # type: ignore[attr-defined]
            sys.exit(err.exit_code)  # type: ignore[attr-defined]
        except _ABORT:
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except XlingualError as err:
            logger.debug("error details", exc_info=True)
            message = " ".join(str(err).split("\n")[:1])
            click.echo(f"error: {message}", err=True)
            raise typer.Exit(2) from None
        except OSError as err:
            message = storage_error_message(err)
            if message is None:  # not the machine's doing: a bug, with its traceback
                raise
            logger.debug("error details", exc_info=True)
            click.echo(f"error: {' '.join(message.splitlines())}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as err:
            command = resume_command(getattr(self, "_args", None) or sys.argv[1:])
            click.echo(f"interrupted: finished work is saved; to resume, run: {command}", err=True)
            raise typer.Exit(getattr(err, "exit_code", 130)) from None


app = typer.Typer(
    cls=_ErrorHandlingGroup,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": HELP_OPTION_NAMES},
    help="xlingual: cross-lingual multimodal NER (translate and project datasets, align embeddings, "
    "extract image features, train and report ACN, UMT and 2M-NER).",
)


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
from xlingual.cli import evaluate as _evaluate  # noqa: E402
from xlingual.cli import features as _features  # noqa: E402
from xlingual.cli import predict as _predict  # noqa: E402
from xlingual.cli import report as _report  # noqa: E402
from xlingual.cli import train as _train  # noqa: E402
from xlingual.cli import translate as _translate  # noqa: E402

for _stage in (_data, _translate, _embeddings, _features, _train, _evaluate, _report, _predict, _demo):
    _stage.register(app)

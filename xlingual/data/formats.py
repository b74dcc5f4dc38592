"""Readers and writers for the dataset formats: Twitter2015/2017, CMNER, two-column CoNLL and JSONL.

Reader contract (see the datasets' notes in the README):

* bytes are decoded as UTF-8 (a leading BOM is dropped); lines are split on
  LF and a trailing CR is removed, so CRLF and LF files read the same and line
  numbers in errors match what an editor shows;
* a header line (``IMGID:`` for Twitter, ``WID:`` for CMNER) starts a post;
  blank or whitespace-only lines end it; CoNLL files have no header (a post is
  a block of token lines) and their posts are numbered ``<prefix>-<n>`` from 1,
  so the same file always gives the same ids;
* every other line is split on its LAST tab into token and label; the label is
  stripped, the token is kept exactly (U+00A0 is a real token in Twitter2015);
* labels are mapped by the file's :class:`~xlingual.data.labels.LabelSchema`: the
  format's own (Twitter ``OTHER`` -> ``MISC``) or a declared dataset's (a label map,
  or an open label set whose types are kept as written);
* orphan ``I-`` tags follow a :class:`~xlingual.data.labels.BioPolicy`.

Writers emit LF line endings, one blank line between posts and exactly one
final newline; reading a real file and writing it back reproduces it up to
that normalisation.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from xlingual.data.labels import (
    CANONICAL_SCHEMA,
    CMNER_SCHEMA,
    TWITTER_SCHEMA,
    BioPolicy,
    LabelSchema,
    orphan_positions,
    repair_bio,
)
from xlingual.data.sample import Sample
from xlingual.errors import DataFormatError, DataValidationError
from xlingual.io import atomic_open

logger = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 20


@dataclass(frozen=True)
class TextFormat:
    """A token-lines format: which header starts a post (None: a blank line alone separates posts), which label schema, which language."""

    name: str
    header: str | None
    schema: LabelSchema
    lang: str
    default_image_suffix: str | None  # Twitter names its one image "<id>.jpg"; CMNER's must be looked up


TWITTER = TextFormat("twitter", "IMGID:", TWITTER_SCHEMA, "en", ".jpg")
CMNER = TextFormat("cmner", "WID:", CMNER_SCHEMA, "zh", None)
CONLL = TextFormat("conll", None, CANONICAL_SCHEMA, "en", None)
TEXT_FORMATS: dict[str, TextFormat] = {f.name: f for f in (TWITTER, CMNER, CONLL)}


class DatasetFormat(str, Enum):
    """The file formats a user names on the command line (``--format``) or in a ``datasets.yaml``."""

    TWITTER = "twitter"
    CMNER = "cmner"
    CONLL = "conll"
    JSONL = "jsonl"


FORMAT_NAMES: tuple[str, ...] = tuple(f.value for f in DatasetFormat)


@dataclass
class ReadResult:
    """Everything a read produced: samples, errors (when collected) and counts worth reporting."""

    path: Path
    format: str
    samples: list[Sample] = field(default_factory=list)
    errors: list[DataFormatError] = field(default_factory=list)
    error_count: int = 0
    repaired_orphans: int = 0
    kept_orphans: int = 0
    type_spellings: dict[str, str] = field(default_factory=dict)
    """How the file spelled each canonical type (Twitter2015 ``OTHER`` vs Twitter2017 ``MISC``), to write it back the same way."""

    def add_error(self, line: int | None, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(DataFormatError(self.path, line, message))


def _check_path(path: Path) -> None:
    if not path.exists():
        raise DataFormatError(path, None, "no such file")
    if path.is_dir():
        raise DataFormatError(path, None, "is a directory, expected a dataset file")


def _read_lines(path: Path) -> list[str]:
    """Decoded lines of ``path`` without line terminators; binary or non-UTF-8 content is an error."""
    _check_path(path)
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFormatError(path, None, "file is empty")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataFormatError(path, raw.count(b"\n", 0, nul) + 1, "binary content (NUL byte); expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataFormatError(path, line, f"not valid UTF-8 (byte 0x{raw[err.start]:02x}); expected UTF-8 text") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def count_posts(path: str | Path, format: str) -> int:
    """How many posts a file holds, counted without checking it (``xl data list``; ``xl data validate`` checks)."""
    lines = _read_lines(Path(path))
    if format == "jsonl":
        return sum(1 for line in lines if line.strip())
    header = TEXT_FORMATS[format].header
    if header is not None:
        return sum(1 for line in lines if line.startswith(header))
    return sum(1 for before, line in zip([""] + lines, lines) if line.strip() and not before.strip())


def format_of_first_line(line: str) -> str | None:
    """``twitter``, ``cmner`` or ``jsonl`` when a file's first non-blank line is one of our headers or a JSON object, else None."""
    stripped = line.lstrip("\ufeff").strip()
    if stripped.startswith(TWITTER.header):
        return "twitter"
    if stripped.startswith(CMNER.header):
        return "cmner"
    if stripped.startswith("{") and stripped.endswith("}"):  # one JSON object per line
        return "jsonl"
    return None


def detect_format(path: str | Path) -> str:
    """Guess ``twitter``, ``cmner`` or ``jsonl`` from the first non-blank line."""
    path = Path(path)
    for line in _read_lines(path):
        if not line.strip():
            continue
        found = format_of_first_line(line)
        if found is not None:
            return found
        raise DataFormatError(
            path, None, "cannot tell the format: first line is neither an 'IMGID:'/'WID:' header nor a JSON object (pass --format)"
        )
    raise DataFormatError(path, None, "file is empty")


def _apply_bio_policy(result: ReadResult, labels: list[str], label_lines: list[int], policy: BioPolicy) -> list[str]:
    orphans = orphan_positions(labels)
    if not orphans:
        return labels
    if policy is BioPolicy.keep:
        result.kept_orphans += len(orphans)
        return labels
    if policy is BioPolicy.reject:
        for i in orphans:
            result.add_error(label_lines[i], f"'{labels[i]}' follows '{labels[i - 1] if i else 'start'}' (orphan I- tag; use --bio repair)")
        return labels
    fixed, repaired = repair_bio(labels)
    result.repaired_orphans += repaired
    return fixed


def parse_text_format(path: Path, fmt: TextFormat, bio: BioPolicy = BioPolicy.repair, schema: LabelSchema | None = None,
                      lang: str | None = None, id_prefix: str | None = None) -> ReadResult:
    """Parse a Twitter/CMNER/CoNLL-style file, collecting every error instead of stopping at the first.

    ``schema`` and ``lang`` replace the format's own (a declared dataset's label
    rule and language); ``id_prefix`` names a CoNLL file's posts (default: the file stem).
    """
    result = ReadResult(path=path, format=fmt.name)
    schema = schema or fmt.schema
    lang = lang or fmt.lang
    prefix = id_prefix or path.stem
    headers = [f.header for f in TEXT_FORMATS.values() if f.header is not None and f is not fmt]
    lines = _read_lines(path)
    seen_ids: dict[str, int] = {}
    current_id: str | None = None
    header_line = 0
    tokens: list[str] = []
    labels: list[str] = []
    label_lines: list[int] = []

    def close_post() -> None:
        nonlocal current_id, tokens, labels, label_lines
        if current_id is None:
            return
        if not tokens:
            result.add_error(header_line, f"post '{current_id}' has no token lines")
        else:
            fixed = _apply_bio_policy(result, labels, label_lines, bio)
            images = [current_id + fmt.default_image_suffix] if fmt.default_image_suffix else []
            result.samples.append(Sample(current_id, tokens, fixed, images=images, lang=lang))
        current_id, tokens, labels, label_lines = None, [], [], []

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            close_post()
            continue
        if "\t" not in line:
            if fmt.header is not None and line.startswith(fmt.header):
                close_post()
                post_id = line[len(fmt.header):].strip()
                if not post_id or any(c.isspace() for c in post_id):
                    result.add_error(number, f"header '{line.strip()}' has no valid id")
                    post_id = post_id or f"<line {number}>"
                if post_id in seen_ids:
                    result.add_error(number, f"duplicate id '{post_id}' (first at line {seen_ids[post_id]})")
                seen_ids.setdefault(post_id, number)
                current_id, header_line = post_id, number
                continue
            other = [header for header in headers if line.startswith(header)]
            if other:
                expected = f"expected '{fmt.header}'" if fmt.header else "CoNLL files have no header"
                result.add_error(number, f"'{other[0]}' header in a {fmt.name} file ({expected})")
            else:
                result.add_error(number, f"no TAB between token and label: {line[:40]!r}")
            continue
        token, _, raw_label = line.rpartition("\t")
        label = raw_label.strip()
        if current_id is None:
            if fmt.header is None:
                current_id, header_line = f"{prefix}-{len(result.samples) + 1}", number
            else:
                result.add_error(number, f"token line before any '{fmt.header}' header")
                current_id, header_line = f"<line {number}>", number
        if token == "":
            result.add_error(number, "empty token before the TAB")
        canonical = schema.to_canonical(label)
        if canonical is None:
            result.add_error(number, f"label '{label}' is not in the {schema.name} schema ({schema.describe()})")
            canonical = "O"
        elif canonical != "O":
            spelled, ctype = label[2:], canonical[2:]
            first = result.type_spellings.setdefault(ctype, spelled)
            if first != spelled and schema.one_spelling_per_type:
                result.add_error(number, f"label '{label}' mixes spellings of one type ('{first}' used earlier in the file)")
        tokens.append(token)
        labels.append(canonical)
        label_lines.append(number)
    close_post()
    return result


def parse_jsonl(path: Path, bio: BioPolicy = BioPolicy.repair, schema: LabelSchema | None = None, lang: str | None = None) -> ReadResult:
    """Parse a JSONL file of :class:`Sample` dictionaries (labels in the canonical schema unless ``schema`` says otherwise).

    ``lang`` replaces each sample's language (a declared dataset's).
    """
    result = ReadResult(path=path, format="jsonl")
    schema = schema or CANONICAL_SCHEMA
    seen: dict[str, int] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            result.add_error(number, f"invalid JSON: {err.msg}")
            continue
        if not isinstance(obj, dict) or not {"id", "tokens", "labels"} <= obj.keys():
            result.add_error(number, "expected an object with 'id', 'tokens' and 'labels'")
            continue
        try:
            sample = Sample.from_dict(obj)
        except (ValueError, TypeError) as err:
            result.add_error(number, str(err))
            continue
        mapped = [schema.to_canonical(lab) for lab in sample.labels]
        bad = [lab for lab, canonical in zip(sample.labels, mapped) if canonical is None]
        if bad:
            result.add_error(number, f"label '{bad[0]}' is not in the {schema.name} schema ({schema.describe()})")
            continue
        sample.labels = [canonical for canonical in mapped if canonical is not None]
        if lang:
            sample.lang = lang
        if sample.id in seen:
            result.add_error(number, f"duplicate id '{sample.id}' (first at line {seen[sample.id]})")
        seen.setdefault(sample.id, number)
        sample.labels = _apply_bio_policy(result, sample.labels, [number] * len(sample.labels), bio)
        result.samples.append(sample)
    return result


def parse_file(path: str | Path, format: str | None = None, bio: BioPolicy | str = BioPolicy.repair, *,
               schema: LabelSchema | None = None, lang: str | None = None, id_prefix: str | None = None) -> ReadResult:
    """Parse ``path`` in ``format`` (guessed when ``None``) and collect all errors.

    ``schema``, ``lang`` and ``id_prefix`` are a declared dataset's reading rule (see :func:`parse_text_format`).
    """
    path = Path(path)
    bio = BioPolicy(bio)
    fmt = format or detect_format(path)
    if fmt == "jsonl":
        return parse_jsonl(path, bio, schema, lang)
    if fmt not in TEXT_FORMATS:
        raise DataFormatError(path, None, f"unknown format '{fmt}' (choose from {', '.join(FORMAT_NAMES)})")
    return parse_text_format(path, TEXT_FORMATS[fmt], bio, schema, lang, id_prefix)


def parse_valid_file(path: str | Path, format: str | None = None) -> ReadResult:
    """A file read as ``xl data stats`` and ``compare`` read it (orphan ``I-`` repaired and counted), or every error as file:line."""
    result = parse_file(path, format, BioPolicy.repair)
    if result.error_count:
        raise DataValidationError(result.errors, result.error_count)
    return result


def orphan_listing_command(path: str | Path, format: str) -> str:
    """The command that lists a file's orphan ``I-`` tags with their lines: the advice a repaired read gives.

    Reading for translation, training or prediction always repairs; only ``xl data validate`` has a ``--bio`` option.
    """
    return shlex.join(["xl", "data", "validate", str(path), "--format", format, "--bio", "reject"])


def raise_for_errors(result: ReadResult) -> list[Sample]:
    """The samples of a clean read; :class:`DataValidationError` when it found errors. Repaired orphans are logged."""
    if result.error_count:
        raise DataValidationError(result.errors, result.error_count)
    if result.repaired_orphans:
        logger.warning("%s: repaired %d orphan I- tag(s) to B- (%s lists each one)", result.path, result.repaired_orphans,
                       orphan_listing_command(result.path, result.format))
    return result.samples


def read_samples(path: str | Path, format: str | None = None, bio: BioPolicy | str = BioPolicy.repair, *,
                 schema: LabelSchema | None = None, lang: str | None = None, id_prefix: str | None = None) -> list[Sample]:
    """Read a dataset file into samples; raise :class:`DataValidationError` if anything is wrong.

    Orphan ``I-`` tags are repaired by default, and the count is logged.
    """
    return raise_for_errors(parse_file(path, format, bio, schema=schema, lang=lang, id_prefix=id_prefix))


def format_text(samples: Iterable[Sample], format: str, spelling: dict[str, str] | None = None, schema: LabelSchema | None = None) -> str:
    """Render samples in a text format (``twitter``, ``cmner`` or ``conll``), LF line endings, one final newline.

    ``spelling`` overrides how a type is written (e.g. ``{"MISC": "MISC"}`` for Twitter2017 files); ``schema``
    replaces the format's own (a declared dataset's label map or open label set).
    """
    fmt = TEXT_FORMATS[format]
    schema = schema or fmt.schema
    blocks = []
    for sample in samples:
        lines = [f"{fmt.header}{sample.id}"] if fmt.header is not None else []
        lines.extend(f"{tok}\t{schema.to_file(lab, spelling)}" for tok, lab in zip(sample.tokens, sample.labels))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def format_jsonl(samples: Iterable[Sample]) -> str:
    return "".join(json.dumps(s.to_dict(), ensure_ascii=False) + "\n" for s in samples)


def format_samples(samples: Iterable[Sample], format: str, spelling: dict[str, str] | None = None, schema: LabelSchema | None = None) -> str:
    """Samples as the text of a file in ``format`` (JSONL or a text format, see :func:`format_text`)."""
    return format_jsonl(samples) if format == "jsonl" else format_text(samples, format, spelling, schema)


def write_samples(path: str | Path, samples: Iterable[Sample], format: str | None = None, spelling: dict[str, str] | None = None,
                  schema: LabelSchema | None = None) -> None:
    """Write samples atomically; the format defaults from the suffix (``.jsonl``) or the samples' language."""
    path = Path(path)
    samples = list(samples)
    if format is None:
        if path.suffix == ".jsonl":
            format = "jsonl"
        else:
            format = "cmner" if samples and samples[0].lang == "zh" else "twitter"
    text = format_samples(samples, format, spelling, schema)
    with atomic_open(path, "w", newline="") as handle:
        handle.write(text)


def format_for_lang(lang: str) -> str:
    """The native text format of a language: CMNER-style for Chinese, Twitter-style otherwise."""
    return "cmner" if lang == "zh" else "twitter"

"""Train monolingual fastText skipgram vectors on raw text or on our dataset files.

Chinese is trained at the unit ACN reads: one character per token for
CMNER-style data (``unit="char"``, the default for ``zh``), or jieba words
(``unit="word"``). Any other language written without spaces (ja, th, ...)
is trained on characters; languages written with spaces (en, de, fr, ...) are
split on whitespace. Tokens are lower-cased by
default because ACN lower-cases every token before looking it up.

The fastText ``bucket`` (hashed character n-grams) defaults to 100,000 rather
than fastText's 2,000,000: corpora of this size gain nothing from more and the
``.bin`` would be ~820 MB. Character units use only 1-grams (see train_vectors).

A finished run leaves ``<out>.json`` beside the ``.vec`` with the options and
corpus checksums; running the same command again returns at once.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path


from xlingual.data.formats import format_of_first_line, read_samples
from xlingual.embeddings.fasttext_worker import FastTextJob, train_in_child
from xlingual.embeddings.options import TrainOptions
from xlingual.embeddings.vectors import load_vectors, save_vectors
from xlingual.data.languages import check_language
from xlingual.translate.languages import written_without_spaces
from xlingual.errors import ConfigError, DataFormatError
from xlingual.io import atomic_write_json, file_digest
from xlingual.lock import locks_output
from xlingual.progress import progress_enabled

logger = logging.getLogger(__name__)

UNITS = ("auto", "char", "word")
CORPUS_FORMATS = ("auto", "raw", "twitter", "cmner", "jsonl")


def effective_sampling(threshold: float, n_tokens: int) -> float:
    """The sub-sampling threshold actually used: never below ``10 / n_tokens``.

    fastText drops an occurrence of a word of relative frequency f with
    probability 1 - sqrt(t/f) - t/f. On a corpus of a few hundred tokens every
    word is "frequent" at t = 1e-4, so almost every occurrence is dropped, a
    training thread may see no example at all and fastText stops with
    "Encountered NaN" (0/0 loss). With t >= 10/N a word seen at most ten times
    is never dropped; for corpora above 100,000 tokens the default is unchanged.
    """
    return max(threshold, 10.0 / max(n_tokens, 1))


def resolve_unit(lang: str, unit: str) -> str:
    """The training unit of ``lang``: characters for a language written without spaces, words otherwise (jieba words for zh on request)."""
    try:
        check_language(lang)
    except ValueError as err:
        raise ConfigError(f"--lang {lang}: {err}") from None
    if unit not in UNITS:
        raise ConfigError(f"--unit must be one of {', '.join(UNITS)}, got '{unit}'")
    unspaced = written_without_spaces(lang)
    if unit == "auto":
        return "char" if unspaced else "word"
    if unit == "char" and not unspaced:
        raise ConfigError(f"--unit char is for languages written without spaces (zh, ja, th, ...); {lang} is trained on words")
    if unit == "word" and unspaced and lang != "zh":
        raise ConfigError(f"--unit word for {lang}: only Chinese has a word segmenter here (jieba); use --unit char")
    return unit


def sniff_corpus_format(path: Path) -> str:
    """``twitter``/``cmner``/``jsonl`` for our dataset files, ``raw`` for plain text (one post per line)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            stripped = line.lstrip("\ufeff").strip()
            if not stripped:
                continue
            return format_of_first_line(stripped) or "raw"
    return "raw"


def _jieba_cut(text: str) -> list[str]:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return [w for w in jieba.lcut(text) if w.strip()]


def tokenize_text(text: str, lang: str, unit: str) -> list[str]:
    """Split one post into training units (``unit`` already resolved)."""
    if unit == "char":
        return [ch for ch in text if not ch.isspace()]
    if lang == "zh":
        return _jieba_cut(text)
    return text.split()


def _posts(path: Path, corpus_format: str) -> Iterator[tuple[str, list[str] | None]]:
    """(text, tokens) per post; tokens are the dataset's own tokens when the file is a dataset."""
    fmt = sniff_corpus_format(path) if corpus_format == "auto" else corpus_format
    if fmt == "raw":
        try:
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        yield line.strip(), None
        except UnicodeDecodeError as err:
            raise DataFormatError(path, None, f"not valid UTF-8 text ({err.reason})") from None
        return
    for sample in read_samples(path, fmt):
        yield "".join(sample.tokens) if written_without_spaces(sample.lang) else " ".join(sample.tokens), list(sample.tokens)


def corpus_lines(paths: Sequence[Path], lang: str, unit: str, lowercase: bool = True, corpus_format: str = "auto") -> Iterator[str]:
    """One training line per post: units joined by single spaces."""
    if corpus_format not in CORPUS_FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(CORPUS_FORMATS)}, got '{corpus_format}'")
    for path in paths:
        for text, tokens in _posts(path, corpus_format):
            if tokens is not None and not (lang == "zh" and unit == "word"):
                units = [u for tok in tokens for u in (tokenize_text(tok, lang, unit) if lang == "zh" else [tok])]
            else:
                units = tokenize_text(text, lang, unit)
            units = [u for u in (u.strip() for u in units) if u and " " not in u]
            if lowercase:
                units = [u.lower() for u in units]
            if units:
                yield " ".join(units)


def _fingerprint(paths: Sequence[Path]) -> list[dict[str, str | int]]:
    return [{"path": str(path), "size": path.stat().st_size, "sha256": file_digest(path)} for path in paths]


def _train_with_retry(text_path: Path, options: TrainOptions, n_tokens: int, vec_path: Path, bin_path: Path | None) -> None:
    """Train in a child process (see :mod:`fasttext_worker`); retry on one thread, then at half the lr, on a NaN loss."""
    attempts = [(options.threads, options.lr), (1, options.lr), (1, options.lr / 2)]
    for number, (threads, lr) in enumerate(attempts, start=1):
        kwargs = {
            "dim": options.dim, "epoch": options.epoch, "minCount": options.min_count, "ws": options.window,
            "neg": options.neg, "lr": lr, "minn": options.minn, "maxn": options.maxn, "bucket": options.bucket,
            "thread": threads, "t": effective_sampling(options.sampling, n_tokens), "verbose": 2 if progress_enabled() else 0,
        }
        try:
            train_in_child(FastTextJob(str(text_path), kwargs, str(vec_path), str(bin_path) if bin_path else None))
            return
        except FloatingPointError as err:
            if number == len(attempts):
                raise ConfigError(f"fastText training diverged ({err}) even with lr={lr:g} on one thread; lower --lr") from None
            logger.warning("fastText reported a NaN loss (threads=%d, lr=%g); retrying with threads=%d, lr=%g", threads, lr, *attempts[number])


@locks_output("out", folder=False)
def train_vectors(
    corpus: Sequence[str | Path],
    out: str | Path,
    lang: str,
    unit: str = "auto",
    options: TrainOptions | None = None,
    lowercase: bool = True,
    corpus_format: str = "auto",
    save_bin: bool = False,
    force: bool = False,
) -> Path:
    """Train skipgram vectors on ``corpus`` files and write them to ``out`` (a ``.vec``); return ``out``.

    Skips training when ``out`` was already made from the same corpus and
    options (see ``<out>.json``) unless ``force``.
    """
    options = options or TrainOptions()
    unit = resolve_unit(lang, unit)
    paths = [Path(p) for p in corpus]
    if not paths:
        raise ConfigError("--corpus: give at least one file")
    for path in paths:
        if not path.is_file():
            raise DataFormatError(path, None, "corpus file not found")
    out = Path(out)
    sidecar = out.with_name(out.name + ".json")
    # Character units have no sub-words worth hashing: single-character n-grams (the char itself plus the
    # boundary markers) in a tiny bucket table.
    effective = TrainOptions(**{**asdict(options), **({"minn": 1, "maxn": 1, "bucket": 10_000} if unit == "char" else {})})
    record = {"lang": lang, "unit": unit, "lowercase": lowercase, "options": asdict(effective), "corpus": _fingerprint(paths)}
    if not force and out.is_file() and sidecar.is_file():
        try:
            if json.loads(sidecar.read_text(encoding="utf-8")).get("training") == record:
                logger.info("%s: already trained from the same corpus and options; skipping", out)
                return out
        except json.JSONDecodeError:
            pass

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xl-train-", dir=out.parent) as tmp:
        text_path = Path(tmp) / "corpus.txt"
        n_lines = n_tokens = 0
        with open(text_path, "w", encoding="utf-8", newline="\n") as handle:
            for line in corpus_lines(paths, lang, unit, lowercase, corpus_format):
                handle.write(line + "\n")
                n_lines += 1
                n_tokens += line.count(" ") + 1
        if n_tokens == 0:
            raise DataFormatError(paths[0], None, "corpus holds no text to train on")
        logger.info("training %d-d skipgram vectors on %d posts, %d %s tokens (%s)", effective.dim, n_lines, n_tokens, unit, lang)
        started = time.perf_counter()
        vec_tmp = Path(tmp) / "vectors.vec"
        _train_with_retry(text_path, effective, n_tokens, vec_tmp, out.with_suffix(".bin") if save_bin else None)
        seconds = time.perf_counter() - started
        vectors = load_vectors(vec_tmp)
    save_vectors(out, vectors)
    words = vectors.words
    atomic_write_json(sidecar, {"training": record, "words": len(words), "posts": n_lines, "tokens": n_tokens, "seconds": round(seconds, 2)})
    logger.info("%s: %d vectors written (trained in %.1f s)", out, len(words), seconds)
    return out

"""Re-scoring: a run's saved predictions, a saved model on a dataset file, or two dataset files.

``evaluate_run`` never touches a model: it reads ``predictions/*.jsonl``
(predicted labels with the gold labels in ``meta.gold``), so a changed metric
can be applied to old runs. ``evaluate_model_on_file`` loads a model folder
and predicts a file first, building the visual inputs exactly as ``xl
predict`` and ``xl train`` do. ``evaluate_files`` scores a prediction file
against a gold file. Labels are always read as written (no BIO repair), so
strict IOB2 sees ill-formed tags on either side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

from xlingual.data.formats import TEXT_FORMATS, detect_format, read_samples
from xlingual.data.labels import OPEN_SCHEMA, LabelSchema
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, DataFormatError, OutputSetError
from xlingual.evaluation.metrics import score_all_modes
from xlingual.output_set import check_listed, manifest_files, read_manifest_json
from xlingual.workspace import RunFolder


def _scores(gold: list[list[str]], pred: list[list[str]]) -> dict[str, Any]:
    return {mode: s.to_dict() for mode, s in score_all_modes(gold, pred).items()}


RUN_REBUILD = "restore the file from a copy of the run, or train the run again into another --output"


def check_run_outputs(run_dir: str | Path, names: Sequence[str] | None = None, digests: bool = True,
                      metrics: Mapping[str, Any] | None = None) -> None:
    """Refuse a finished run whose files are not those its ``metrics.json`` lists (``output_files``: predictions written before it).

    ``names`` are run-folder-relative paths about to be read (None: all the
    metrics list). A run without ``metrics.json`` (unfinished), or with one
    written before runs listed their files, passes here;
    :func:`read_run_predictions` still checks the test set's size against
    ``test_samples``. ``metrics``: the run's ``metrics.json`` as its caller
    read it, so that it is not read again (None: read it here).
    """
    _check_run_files(RunFolder(run_dir), names, digests, metrics)


def _check_run_files(folder: RunFolder, names: Sequence[str] | None, digests: bool, metrics: Mapping[str, Any] | None) -> bool:
    """:func:`~xlingual.output_set.check_set` of a run's files against its manifest, read here or given as ``metrics``."""
    if metrics is None:
        metrics = read_manifest_json(folder.metrics)
    listed = None if metrics is None else manifest_files(metrics, folder.metrics)
    if listed is None:
        return False
    check_listed(folder.root, folder.metrics, listed, names, digests, RUN_REBUILD)
    return True


def read_run_predictions(run_dir: str | Path, split: str, metrics: Mapping[str, Any] | None = None) -> list[Sample]:
    """The saved predictions of ``split`` (gold labels in ``meta.gold``), once they are shown to be the ones the run scored.

    A file cut at a line boundary is still valid JSONL: without this check it
    would be rescored on fewer posts without a word. The file is checked
    against the digest ``metrics.json`` records, or (a run from before runs
    listed their files) the test set against ``test_samples``. ``metrics``:
    the run's ``metrics.json`` as its caller read it (None: read here).
    """
    folder = RunFolder(run_dir)
    path = folder.prediction(split, ".jsonl")
    if not path.is_file():
        raise ConfigError(f"{path}: no saved predictions (is {run_dir} a finished 'xl train' run folder?)")
    if metrics is None:
        metrics = read_manifest_json(folder.metrics)
    checked = _check_run_files(folder, [path.relative_to(folder.root).as_posix()], True, metrics)
    samples = read_samples(path, "jsonl", bio="keep", schema=OPEN_SCHEMA)  # the run's labels, whatever its label set
    if not checked and split == "test" and metrics is not None:
        expected = _test_samples(metrics)
        if expected is not None and expected != len(samples):
            raise OutputSetError(f"{path}: {len(samples)} posts, but {folder.metrics.name} records test_samples={expected} "
                                 f"(the file was changed or cut): {RUN_REBUILD}")
    return samples


def _test_samples(values: Any) -> int | None:
    """``test_samples`` of a run's parsed metrics, where it is a count."""
    value = values.get("test_samples") if isinstance(values, Mapping) else None
    return value if type(value) is int else None


def evaluate_run(run_dir: str | Path, splits: tuple[str, ...] = ("dev", "test")) -> dict[str, Any]:
    """Scores per split recomputed from the run's predictions (each checked against ``metrics.json``: :func:`read_run_predictions`)."""
    result: dict[str, Any] = {}
    metrics = read_manifest_json(RunFolder(run_dir).metrics)  # read once for every split's check
    for split in splits:
        path = RunFolder(run_dir).prediction(split, ".jsonl")
        samples = read_run_predictions(run_dir, split, metrics)
        missing = [s.id for s in samples if "gold" not in s.meta]
        if missing:
            raise ConfigError(f"{path}: sample {missing[0]} has no meta.gold labels")
        result[split] = _scores([s.meta["gold"] for s in samples], [s.labels for s in samples])
    return result


def evaluate_model_on_file(model_dir: str | Path, data_file: str | Path, format: str | None = None,
                           features: str | Path | Sequence[str | Path] | None = None, images: str = "all", batch_size: int = 32,
                           seed: int | None = None, image_dir: str | Path | None = None) -> dict[str, Any]:
    """Predict ``data_file`` with a saved model and score it against the file's labels as written (``seed``: see
    :func:`~xlingual.evaluation.model_source.model_image_seed`)."""
    from xlingual.evaluation.model_source import model_image_seed
    from xlingual.models import load_model
    from xlingual.stage_inputs import dataset_file, visual_inputs_for_model

    found = dataset_file(data_file)  # its dataset's rule (unless ``format`` says otherwise) and image folder, looked up once
    samples = found.read(data_file, "keep") if found is not None and format is None else read_samples(data_file, format, bio="keep")
    model = load_model(model_dir)
    visual, _ = visual_inputs_for_model(model, samples, features, image_dir, images, model_image_seed(model_dir, seed), dataset=lambda: found)
    predictions = model.predict(samples, visual, batch_size=batch_size)
    return {"data": _scores([s.labels for s in samples], predictions)}


# -- two files ---------------------------------------------------------------

def _line_numbers(path: Path, fmt: str) -> list[tuple[int, list[int]]]:
    """Per post of a valid dataset file: its first line and the line of each token."""
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    posts: list[tuple[int, list[int]]] = []
    if fmt == "jsonl":
        return [(number, []) for number, line in enumerate(lines, start=1) if line.strip()]
    header = TEXT_FORMATS[fmt].header
    after_blank = True  # a header-less format (CoNLL): a post starts at the first token line after a blank line
    for number, line in enumerate(lines, start=1):
        if header is not None and "\t" not in line and line.startswith(header):
            posts.append((number, []))
        elif line.strip():
            if header is None and after_blank:
                posts.append((number, []))
            if posts:
                posts[-1][1].append(number)
        after_blank = not line.strip()
    return posts


def _writes_ids(fmt: str) -> bool:
    return fmt == "jsonl" or TEXT_FORMATS[fmt].header is not None


def check_same_posts(gold: list[Sample], gold_path: Path, gold_fmt: str, pred: list[Sample], pred_path: Path, pred_fmt: str) -> None:
    """Raise a one-line :class:`DataFormatError` at the first post or token where the files differ."""
    gold_lines, pred_lines = _line_numbers(gold_path, gold_fmt), _line_numbers(pred_path, pred_fmt)

    def token_line(lines: list[tuple[int, list[int]]], post: int, token: int) -> int:
        first, tokens = lines[post]
        return tokens[token] if token < len(tokens) else first

    same_ids = _writes_ids(gold_fmt) and _writes_ids(pred_fmt)  # CoNLL posts have no ids: they are matched by position
    for i, (g, p) in enumerate(zip(gold, pred)):
        if same_ids and g.id != p.id:
            raise DataFormatError(pred_path, pred_lines[i][0], f"post '{p.id}' where {gold_path}:{gold_lines[i][0]} has post '{g.id}' (the files must hold the same posts in the same order)")
        if len(g.tokens) != len(p.tokens):
            raise DataFormatError(pred_path, pred_lines[i][0], f"post '{p.id}' has {len(p.tokens)} tokens, {gold_path}:{gold_lines[i][0]} has {len(g.tokens)}")
        for j, (gt, pt) in enumerate(zip(g.tokens, p.tokens)):
            if gt != pt:
                raise DataFormatError(pred_path, token_line(pred_lines, i, j), f"token {pt!r} of post '{p.id}' differs from {gold_path}:{token_line(gold_lines, i, j)} {gt!r}")
    if len(gold) != len(pred):
        longer, path, lines = (gold, gold_path, gold_lines) if len(gold) > len(pred) else (pred, pred_path, pred_lines)
        other = pred_path if path == gold_path else gold_path
        n = min(len(gold), len(pred))
        raise DataFormatError(path, lines[n][0], f"post '{longer[n].id}' has no counterpart in {other} ({len(gold)} gold posts, {len(pred)} predicted)")


def evaluate_files(gold_path: str | Path, pred_path: str | Path, format: str | None = None) -> dict[str, Any]:
    """conlleval and strict IOB2 scores of a prediction file against a gold file (same posts and tokens).

    Each file may be in any supported format (guessed unless ``format`` is
    given); both are read without BIO repair. A gold file that is a
    dataset's split is read by its dataset's rule, and so is a prediction
    file whose format cannot be guessed (``xl predict`` wrote it like the gold:
    a header-less CoNLL file, an open label set).
    """
    from xlingual.stage_inputs import dataset_file

    gold_path, pred_path = Path(gold_path), Path(pred_path)
    found = None if format else dataset_file(gold_path)  # a dataset's split: its own rule and post ids
    if format:
        gold_fmt, gold_schema = format, None
    else:
        gold_fmt, gold_schema = (found.spec.format, found.spec.schema) if found is not None else (detect_format(gold_path), None)
    pred_fmt, pred_schema = (format, None) if format else _pred_rule(pred_path, gold_fmt, gold_schema)
    gold = found.read(gold_path, "keep") if found is not None else read_samples(gold_path, format, bio="keep")
    pred = read_samples(pred_path, pred_fmt, bio="keep", schema=pred_schema)
    check_same_posts(gold, gold_path, gold_fmt, pred, pred_path, pred_fmt)
    return _scores([s.labels for s in gold], [s.labels for s in pred])


def _pred_rule(pred_path: Path, gold_fmt: str, gold_schema: LabelSchema | None) -> tuple[str, LabelSchema | None]:
    """How to read a prediction file: its own format when it has a header or is JSONL, else the gold file's; the gold's labels.

    A text file in the gold's format spells labels as the gold does; JSONL
    holds labels as samples carry them (an open label set's own types, any
    other set's canonical ones).
    """
    try:
        fmt = detect_format(pred_path)
    except DataFormatError:
        if TEXT_FORMATS.get(gold_fmt) is None or TEXT_FORMATS[gold_fmt].header is not None:
            raise
        fmt = gold_fmt
    if fmt == gold_fmt:
        return fmt, gold_schema
    return fmt, gold_schema if gold_schema is not None and gold_schema.open else None


@dataclass
class Evaluation:
    """What ``xl evaluate`` scored: ``scores`` as printed with ``--json``, per split or file, and a title for the table."""

    scores: dict[str, Any]
    title: str
    table_scores: dict[str, Any]


def evaluate_any(run: str | Path | None = None, gold: str | Path | None = None, pred: str | Path | None = None,
                 model: str | Path | None = None, data: str | Path | None = None, format: str | None = None,
                 features: str | Path | Sequence[str | Path] | None = None, image_dir: str | Path | None = None, images: str = "all", seed: int | None = None) -> Evaluation:
    """``xl evaluate``: exactly one of a run folder, a gold and a prediction file, or a model folder and a data file."""
    chosen = [name for name, given in (("--run", run is not None), ("--gold/--pred", gold is not None or pred is not None), ("--model", model is not None)) if given]
    if len(chosen) != 1:
        raise ConfigError("pass one of --run DIR, --gold FILE --pred FILE, or --model DIR --data FILE")
    if run is not None:
        scores = evaluate_run(run)
        return Evaluation(scores, str(run), scores)
    if model is not None:
        if data is None:
            raise ConfigError("--model needs --data FILE")
        scores = evaluate_model_on_file(model, data, format, features, images=images, seed=seed, image_dir=image_dir)
        return Evaluation(scores, str(data), scores)
    if gold is None or pred is None:
        raise ConfigError("--gold and --pred go together: pass both files")
    scores = evaluate_files(gold, pred, format)
    return Evaluation(scores, f"{pred} against {gold}", {"pred": scores})


__all__ = ["Evaluation", "check_same_posts", "evaluate_any", "evaluate_files", "evaluate_model_on_file", "evaluate_run"]

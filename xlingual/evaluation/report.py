"""Tables 2-4 of the CMNER paper from run folders, and the same tables for any other dataset pair.

A row is one configuration: the runs whose resolved configs (each run
folder's ``config.yaml``) are equal but for the seed and where the run's
inputs and outputs lie (:data:`SEED_FREE_KEYS`). Runs of one (model, pair,
setting, images) that differ in anything else are separate rows, labelled by
what differs, never averaged; a pair is the source datasets and the target
dataset a run trained on (a direction is the paper's name for its two pairs,
Twitter2015 -> CMNER and back). Each row shows the mean ± standard deviation
over seeds ("1 seed" where there is one), for the paper's pairs and settings
the paper's number and our difference from it, and for every other setting a
paired bootstrap against ``tgt_only`` with a plain verdict on whether the gain
exceeds seed noise. A row of runs trained or scored on part of the data
(``data.max_samples``, a shortened test set) is marked "subset" and never set
beside the paper's numbers; a report holding runs made for a demo says so
(:mod:`xlingual.evaluation.purpose`). One table per pair, each with a legend
line; per-type columns list the entity types the runs' metrics hold. A
folder holding an experiment's plan (``plan.yaml``, :mod:`xlingual.train.plan`)
adds the plan's table first, its cells in its order, and report.md lists
every planned run that is not finished ("Missing runs").
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import statistics
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from xlingual.data.labels import table_types
from xlingual.errors import ConfigError, XlingualError
from xlingual.io import atomic_write_text, save_png
from xlingual.lock import locks_output
from xlingual.text_escape import latex_text, markdown_cell, plain_label
from xlingual.train.config import MODEL_TYPES, PAPER_SETTINGS
from xlingual.train.config.packaged import settings as known_settings
from xlingual.train.config.schema import TrainConfig, direction_datasets, pair_label
from xlingual.evaluation.evaluate import check_run_outputs, read_run_predictions
from xlingual.evaluation.metrics import sentence_counts
from xlingual.evaluation.paper import CROSS_LINGUAL, IMAGE_LABELS, SETTING_LABELS, SETTING_MEANINGS, TABLE2, PaperRow
from xlingual.evaluation.purpose import PURPOSE_KEY, marking
from xlingual.evaluation.report_html import REPORT_HTML_NAME, Chart, Link, render_report_html
from xlingual.train.experiment import run_state
from xlingual.train.plan import find_plan, read_plan
from xlingual.workspace import FAILURE_NAME, METRICS_NAME, RUN_CONFIG_NAME, RunFolder, other_test_split
from xlingual.evaluation.significance import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, paired_bootstrap

logger = logging.getLogger(__name__)

Pair = tuple[tuple[str, ...], str]  # source datasets, target dataset
GroupKey = tuple[str, Pair, str, str]  # model, pair, setting, images
RowKey = tuple[str, Pair, str, str, str]  # model, pair, setting, images, variant ("" where the group holds one configuration)

SEED_FREE_KEYS = frozenset({"seed", "name", "data.data_dir", "data.datasets_file", "data.build_missing", "tensorboard", "save_every_steps"})
"""Config keys in which the seeds of one configuration may differ: the seed, the run's name, where its inputs lie,
and switches that change how a run is carried out (building a missing input, logging, checkpointing), not what it computes."""

PAPER_DIRECTIONS: tuple[str, ...] = ("en-zh", "zh-en")
"""The CMNER paper's two directions: Tables 3 and 4."""
PAPER_PAIRS: dict[Pair, str] = {direction_datasets(d): d for d in PAPER_DIRECTIONS}
"""The paper's pairs (Twitter2015 -> CMNER, CMNER -> Twitter2015) and the direction its tables call each."""


def score_types(per_type: Iterable[Mapping[str, float]]) -> list[str]:
    """The columns of a per-type table over some per-type scores (:func:`~xlingual.data.labels.table_types`)."""
    return table_types(name for scores in per_type for name in scores)


@dataclass
class SavedConfig:
    """A run's ``config.yaml``: the values as written, and the config they resolve to (None: this version cannot validate them)."""

    values: dict[str, Any]
    resolved: TrainConfig | None


@dataclass
class RunRecord:
    """What the report needs from one run folder, each of its files read (and checked) once per report.

    ``metrics`` is the run's ``metrics.json`` as read: the manifest the
    saved predictions are checked against. Its ``config.yaml`` and each
    split's predictions are read when first asked for and kept, so a run
    compared with several others is not read and hashed again for each.
    """

    run_dir: Path
    metrics: dict[str, Any]
    _counts: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def pair(self) -> Pair:
        """The datasets the run trained on: named in its metrics, or its direction's."""
        m = self.metrics
        if "source_datasets" in m:
            return tuple(m["source_datasets"]), m["target_dataset"]
        return direction_datasets(m["direction"])

    @property
    def key(self) -> GroupKey:
        m = self.metrics
        return (m["model_type"], self.pair, m["setting"], m["images"])

    def test(self, mode: str = "conlleval") -> dict[str, Any]:
        return self.metrics["test"][mode]

    @cached_property
    def saved_config(self) -> SavedConfig | None:
        """The run's ``config.yaml`` (None for a folder without one); a garbled file: one line naming it.

        Resolved through the config schema where this version can validate it
        (a run made by another version may not be).
        """
        from xlingual.train.config import config_from_dict, read_yaml

        path = RunFolder(self.run_dir).config
        if not path.is_file():
            return None
        values = read_yaml(path)
        try:
            resolved = config_from_dict(values, where=str(path))
        except ConfigError:
            resolved = None
        return SavedConfig(values, resolved)

    @cached_property
    def config(self) -> dict[str, Any] | None:
        """The run's resolved config (its ``config.yaml``) as dotted keys; None for a folder without one.

        Read through the config schema, so a field added since the run was
        made compares at its default; a config this version cannot validate
        (another version's) is compared as written.
        """
        saved = self.saved_config
        if saved is None:
            return None
        return _flatten(saved.values if saved.resolved is None else saved.resolved.to_dict())

    @property
    def identity(self) -> str | None:
        """What makes the run's configuration: its config less :data:`SEED_FREE_KEYS`, as text (None: no config.yaml)."""
        if self.config is None:
            return None
        return json.dumps({k: v for k, v in self.config.items() if k not in SEED_FREE_KEYS}, sort_keys=True, default=str)

    @property
    def purpose(self) -> str | None:
        """What the run was made for when not research (``demo``), as its metrics record it."""
        value = self.metrics.get(PURPOSE_KEY)
        return None if value is None else str(value)

    def test_f1(self, dataset: str) -> float | None:
        """Conlleval F1 on ``dataset``'s test set, if the run was scored there."""
        scores = self.metrics.get("tests", {}).get(dataset)
        return None if scores is None else scores["conlleval"]["f1"]

    def prediction_split(self, dataset: str) -> str:
        """The name under which the run saved its predictions of ``dataset``'s test set."""
        return "test" if dataset == self.metrics.get("target_dataset") else other_test_split(dataset)

    def sentence_counts(self, split: str = "test") -> tuple[list[str], np.ndarray]:
        """Sample ids and per-sentence entity counts from the saved predictions of ``split`` (``test.<dataset>``: another test set).

        Read and checked against ``metrics`` (:func:`read_run_predictions`) on
        the first call, then kept: every comparison of the run shares them.
        """
        if split not in self._counts:
            samples = read_run_predictions(self.run_dir, split, self.metrics)
            gold = [s.meta["gold"] for s in samples]
            self._counts[split] = [s.id for s in samples], sentence_counts(gold, [s.labels for s in samples])
        return self._counts[split]


MeanStd = tuple[float, float | None]
"""Mean and standard deviation over seeds; the deviation is None for one seed (it cannot be measured)."""


@dataclass
class Row:
    """One table row, one configuration: our mean ± std over its seeds and the paper's number.

    ``key``'s last part names what sets this configuration apart from the
    others of its (model, pair, setting, images), "" where it is the only
    one; ``subset`` says on what part of the data it was trained or scored
    ("" for all of it).
    """

    key: RowKey
    runs: list[RunRecord]
    paper: PaperRow | None
    values: dict[str, MeanStd] = field(default_factory=dict)  # name -> (mean, std)
    delta_vs_baseline: float | None = None
    p_value: float | None = None
    verdict: str = ""
    subset: str = ""
    config: dict[str, Any] | None = None
    repeats: list[tuple[RunRecord, RunRecord]] = field(default_factory=list)
    baseline: Row | None = field(default=None, repr=False, compare=False)
    """The ``tgt_only`` row this row is tested against (itself for a ``tgt_only`` row; None where none or several match), chosen
    once by :func:`build_rows`."""
    """Runs of a seed the row already counts, each with the run counted instead: left out of every number (see :func:`one_run_per_seed`)."""

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def variant(self) -> str:
        return self.key[4]


def find_runs(paths: list[str | Path]) -> list[RunRecord]:
    """Every finished run folder at or below ``paths`` (a folder with metrics.json)."""
    found: dict[Path, RunRecord] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise ConfigError(f"{path}: no such run folder")
        candidates = [path / METRICS_NAME] if (path / METRICS_NAME).is_file() else sorted(path.rglob(METRICS_NAME))
        for metrics_path in candidates:
            try:
                metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise ConfigError(f"{metrics_path}:{err.lineno}: not valid JSON ({err.msg})") from None
            except UnicodeDecodeError:
                raise ConfigError(f"{metrics_path}: not valid JSON (not UTF-8 text)") from None
            check_run_outputs(metrics_path.parent, digests=False, metrics=metrics)  # digests are checked where predictions are read
            found[metrics_path.parent.resolve()] = RunRecord(metrics_path.parent, metrics)
    if not found:
        raise ConfigError(f"no finished runs (folders with {METRICS_NAME}) under {', '.join(map(str, paths))}")
    return list(found.values())


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"target": {"epochs": 2}}`` -> ``{"target.epochs": 2}``, in the file's order."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _mean_std(values: list[float]) -> MeanStd:
    return (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None)


_UNSET = object()


def _config_text(value: Any) -> str:
    """A config value as YAML writes it (``null``, ``true``), for row labels."""
    if value is _UNSET:
        return "(unset)"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (bool, type(None), list, dict)) else str(value)


def _distinguishing_keys(configs: list[dict[str, Any] | None]) -> list[str]:
    """The keys, in config order, whose values are not the same in all of ``configs`` (a key one lacks counts)."""
    present = [c for c in configs if c is not None]
    keys = list(dict.fromkeys(k for c in present for k in c if k not in SEED_FREE_KEYS))
    return [k for k in keys if len({json.dumps(c[k], sort_keys=True, default=str) if k in c else None for c in present}) > 1]


def _variant_labels(configs: dict[str | None, dict[str, Any] | None]) -> dict[str | None, str]:
    """Per configuration of one group, what sets it apart: ``target.epochs=2, data.max_samples=200`` ("" when alone)."""
    if len(configs) == 1:
        return dict.fromkeys(configs, "")
    keys = _distinguishing_keys(list(configs.values()))
    return {identity: f"no {RUN_CONFIG_NAME}" if config is None else ", ".join(f"{k}={_config_text(config.get(k, _UNSET))}" for k in keys)
            for identity, config in configs.items()}


def _data_key(run: RunRecord) -> tuple[Any, Any, str]:
    """Runs that read the same test set: the same data directory (and datasets file) and target dataset."""
    config = run.config or {}
    return config.get("data.data_dir"), config.get("data.datasets_file"), run.pair[1]


def _subset(members: list[RunRecord], full_tests: Mapping[tuple[Any, Any, str], int]) -> str:
    """What part of the data a configuration's runs had ("" for all of it): ``data.max_samples``, fewer test posts than the
    test split has (known where another run of the report was scored on more of the same data's test split)."""
    reasons = []
    limits = {(r.config or {}).get("data.max_samples") for r in members} - {None, 0}
    if limits:
        reasons.append(f"data.max_samples={max(limits)}")
    for run in members:
        tested, full = run.metrics.get("test_samples"), full_tests.get(_data_key(run))
        if isinstance(tested, int) and full is not None and tested < full:
            reasons.append(f"{tested} of {full} test posts")
            break
        if isinstance(tested, int) and limits:
            reasons.append(f"{tested} test posts")
            break
    return ", ".join(reasons)


def one_run_per_seed(members: list[RunRecord]) -> tuple[list[RunRecord], list[tuple[RunRecord, RunRecord]]]:
    """The runs to count, one per seed (the first by folder path), and each other run of a counted seed with the run counted.

    Two runs of one configuration and one seed are not two samples of seed
    noise: on one machine they are the same run twice, and counting both
    would shrink the standard deviation and the p-value and overstate the
    number of seeds. So a repeated seed counts once, and the report lists
    the runs it left out.
    """
    counted: dict[Any, RunRecord] = {}
    repeats: list[tuple[RunRecord, RunRecord]] = []
    for run in sorted(members, key=lambda r: (str(r.metrics["seed"]), str(r.run_dir))):
        seed = run.metrics["seed"]
        if seed in counted:
            repeats.append((run, counted[seed]))
        else:
            counted[seed] = run
    return sorted(counted.values(), key=lambda r: r.metrics["seed"]), repeats


def build_rows(runs: list[RunRecord], bootstrap: int = BOOTSTRAP_RESAMPLES) -> dict[RowKey, Row]:
    """One row per configuration (the runs equal but for their seeds), with the paper's number where it applies."""
    groups: dict[GroupKey, dict[str | None, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        groups[run.key][run.identity].append(run)
    full_tests: dict[tuple[Any, Any, str], int] = {}
    for run in runs:
        if isinstance(tested := run.metrics.get("test_samples"), int):
            full_tests[_data_key(run)] = max(tested, full_tests.get(_data_key(run), 0))
    rows: dict[RowKey, Row] = {}
    for key, cells in groups.items():
        model, pair, setting, images = key
        labels = _variant_labels({identity: members[0].config for identity, members in cells.items()})
        for identity, found in cells.items():
            members, repeats = one_run_per_seed(found)
            row = Row((*key, labels[identity]), members, None, subset=_subset(members, full_tests), config=members[0].config, repeats=repeats)
            for repeat, counted in repeats:
                logger.warning("%s: %s is seed %s again; %s is counted, the repeat is left out (one run per seed)", _row_name(row.key),
                               repeat.run_dir, repeat.metrics["seed"], counted.run_dir)
            if not row.subset:  # a run on part of the data is never set beside the paper's numbers
                row.paper = _paper_row(model, pair, setting, images)
            for name in ("precision", "recall", "f1"):
                row.values[name] = _mean_std([r.test()[name] for r in members])
            row.values["strict_f1"] = _mean_std([r.test("strict")["f1"] for r in members])
            for etype in score_types(r.test()["per_type_f1"] for r in members):
                row.values[etype] = _mean_std([r.test()["per_type_f1"].get(etype, 0.0) for r in members])
            rows[row.key] = row
    for row in rows.values():
        row.baseline = baseline = _baseline(rows, row)
        if row.key[2] == "tgt_only" or baseline is None or bootstrap <= 0:
            continue
        _compare(row, baseline, bootstrap)
    return rows


def _paper_row(model: str, pair: Pair, setting: str, images: str) -> PaperRow | None:
    direction = PAPER_PAIRS.get(pair)
    paper = TABLE2.get((model, images)) if (direction == "en-zh" and setting == "tgt_only") else None
    if images == "all" or paper is None:
        paper = CROSS_LINGUAL.get((model, direction, setting)) if images == "all" else paper
    return paper


def _cells(rows: Mapping[RowKey, Row], model: str, pair: Pair, setting: str, images: str) -> list[Row]:
    """The rows of one (model, pair, setting, images): one per configuration, the lone or unlabelled one first."""
    return sorted((row for key, row in rows.items() if key[:4] == (model, pair, setting, images)), key=lambda row: row.variant)


def _baseline(rows: Mapping[RowKey, Row], row: Row) -> Row | None:
    """The ``tgt_only`` row ``row`` is tested against: the same model, pair and images, and where there are several
    ``tgt_only`` configurations, the one that agrees with ``row`` in what sets them apart (None if not exactly one does)."""
    model, pair, setting, images, _ = row.key
    if setting == "tgt_only":
        return row
    candidates = _cells(rows, model, pair, "tgt_only", images)
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    keys = _distinguishing_keys([c.config for c in candidates])
    mine = row.config or {}
    matches = [c for c in candidates if all(mine.get(k, _UNSET) == (c.config or {}).get(k, _UNSET) for k in keys)]
    if len(matches) != 1:
        logger.warning("%s: %s tgt_only configurations match it; no significance test", _row_name(row.key), len(matches) or "no")
        return None
    return matches[0]


def _paired_bootstrap(row: Row, baseline: Row, resamples: int, dataset: str | None = None) -> tuple[float, float] | None:
    """(F1 difference, p) of ``row``'s runs against ``baseline``'s on one test set (the target's, or ``dataset``'s), or None
    when the runs' predictions are not of the same posts."""
    def split(run: RunRecord) -> str:
        return "test" if dataset is None else run.prediction_split(dataset)

    system_ids, system = zip(*(r.sentence_counts(split(r)) for r in row.runs))
    base_ids, base = zip(*(r.sentence_counts(split(r)) for r in baseline.runs))
    if any(ids != base_ids[0] for ids in system_ids + base_ids):
        return None
    return paired_bootstrap(list(system), list(base), resamples)


def _compare(row: Row, baseline: Row, resamples: int) -> None:
    compared = _paired_bootstrap(row, baseline, resamples)
    if compared is None:
        logger.warning("%s: test sentences differ from tgt_only's; no significance test", _row_name(row.key))
        return
    row.delta_vs_baseline, row.p_value = compared
    noise = max(row.values["f1"][1] or 0.0, baseline.values["f1"][1] or 0.0)
    if row.seeds < 2 or baseline.seeds < 2:
        row.verdict = "one seed: seed noise unknown"
    elif row.delta_vs_baseline > 2 * noise and row.p_value < 0.05:
        row.verdict = "gain exceeds seed noise"
    elif row.delta_vs_baseline > 0:
        row.verdict = "gain within seed noise"
    else:
        row.verdict = "no gain"


# -- tables ----------------------------------------------------------------

@dataclass
class Table:
    """A rendered-agnostic table: a title, column headers, rows of cell strings, and a legend line for its symbols.

    The legend is printed under the table in Markdown, LaTeX and HTML; the CSV holds
    the header and rows only, so it stays one table a program can read.
    """

    name: str
    title: str
    header: list[str]
    rows: list[list[str]]
    legend: str = ""

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(map(markdown_cell, self.header)) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(map(markdown_cell, r)) + " |" for r in self.rows]
        lines += ["", f"Legend: {markdown_cell(self.legend)}"] if self.legend else []  # a blank line first: else Markdown reads it as a row
        return "\n".join(lines) + "\n"

    def latex(self) -> str:
        esc = latex_text
        cols = "l" * 2 + "r" * (len(self.header) - 2)
        out = [r"\begin{table}[t]", r"\centering", rf"\caption{{{esc(self.title)}}}", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
               " & ".join(esc(h) for h in self.header) + r" \\", r"\midrule"]
        out += [" & ".join(esc(c) for c in r) + r" \\" for r in self.rows]
        out += [r"\bottomrule", r"\end{tabular}"]
        out += [rf"\par\smallskip{{\footnotesize Legend: {esc(self.legend)}}}"] if self.legend else []
        out += [rf"\label{{tab:{self.name}}}", r"\end{table}"]
        return "\n".join(out) + "\n"

    def html(self) -> str:
        """The table as one HTML ``<section>``: the title as its caption, the legend under it; every text escaped."""
        head = "".join(f"<th>{escape(cell)}</th>" for cell in self.header)
        body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in self.rows)
        legend = f'<p class="legend">Legend: {escape(self.legend)}</p>' if self.legend else ""
        return (f'<section class="table" id="{escape(self.name)}"><table><caption>{escape(self.title)}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{legend}</section>")

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return buffer.getvalue()


def _type_f1(row: Row, etype: str) -> MeanStd:
    """Mean ± std F1 of one entity type over a row's runs (0 where a run's metrics lack the type)."""
    return row.values.get(etype) or _mean_std([r.test()["per_type_f1"].get(etype, 0.0) for r in row.runs])


def _row_name(key: RowKey) -> str:
    model, pair, setting, images, variant = key
    return f"{model}-{pair_label(*pair)}-{setting}-{images}" + (f" [{variant}]" if variant else "")


def _setting_label(setting: str) -> str:
    return SETTING_LABELS.get(setting, setting)


def _dataset_label(dataset: str) -> str:
    return {"cmner": "CMNER", "twitter2015": "Twitter2015", "twitter2017": "Twitter2017", "mmnerd": "MMNERD"}.get(dataset, dataset)


def _pm(value: MeanStd) -> str:
    """``80.00 ± 1.50`` over seeds; ``80.00 (1 seed)`` for one run, whose spread is unknown (not 0)."""
    return f"{value[0]:.2f} (1 seed)" if value[1] is None else f"{value[0]:.2f} ± {value[1]:.2f}"


def _marks(row: Row) -> str:
    """What a row's label adds to its setting or input: the configuration that sets it apart, and a subset's extent."""
    return (f" [{row.variant}]" if row.variant else "") + (f" (subset: {row.subset})" if row.subset else "")


def _input_label(setting: str, images: str) -> str:
    """A setting's label, and the runs' image input where it is not all images: ``SRC&TGT (text)``."""
    return _setting_label(setting) + ("" if images == "all" else f" ({IMAGE_LABELS[images]})")


def _train_label(row: Row) -> str:
    _, _, setting, images, _ = row.key
    return _input_label(setting, images) + _marks(row)


def _settings_legend(settings: Iterable[str]) -> list[str]:
    """What each setting's label means, once each, in the order met."""
    return [f"{_setting_label(s)}: {SETTING_MEANINGS.get(s, f'the setting {s}')}" for s in dict.fromkeys(settings)]


def _legend(rows: list[Row], settings: bool = True, resamples: int | None = None) -> str:
    """One line explaining the symbols ``rows`` show: the settings' labels (``settings``), the marks, "1 seed" and the p.

    ``resamples``: the bootstrap's resample count, where the table shows p.
    """
    parts = []
    if settings:
        parts += _settings_legend(row.key[2] for row in rows)
        inputs = [IMAGE_LABELS[i] for i in IMAGE_LABELS if i != "all" and any(row.key[3] == i for row in rows)]
        if inputs:
            parts.append(f"{', '.join(f'({i})' for i in inputs)}: the runs' input, where not {IMAGE_LABELS['all']}")
    elif rows:
        parts.append(f"input: {IMAGE_LABELS['none']} alone, or with one image or all images of each post")
    if any(row.variant for row in rows):
        parts.append("[…]: the config values in which a row's runs differ from the other rows of its setting "
                     "(each configuration is its own row; runs are averaged over seeds only)")
    if any(row.subset for row in rows):
        parts.append("subset: trained or scored on part of the data, so not set beside the paper's numbers")
    if any(row.seeds == 1 for row in rows):
        parts.append("1 seed: a single run, so no standard deviation")
    if resamples:
        parts.append(f"p: one-sided paired bootstrap over test posts against − of the same model ({resamples} resamples, seed {BOOTSTRAP_SEED})")
    return "; ".join(parts) + "." if parts else ""


def _paper_cells(row: Row, paper: PaperRow | None = None) -> list[str]:
    paper = paper or row.paper
    if paper is None or row.subset:
        return ["", ""]
    return [f"{paper.f1:.2f}", f"{row.values['f1'][0] - paper.f1:+.2f}"]


def _significance_cells(row: Row) -> list[str]:
    if row.delta_vs_baseline is None:
        return ["", "", ""]
    return [f"{row.delta_vs_baseline:+.2f}", f"{row.p_value:.3f}", row.verdict]


def table2(rows: dict[RowKey, Row]) -> Table:
    pair = direction_datasets("en-zh")
    found = [row for m in _models(rows) for i in ("none", "one", "all") for row in _cells(rows, m, pair, "tgt_only", i)]
    types = score_types(r.test()["per_type_f1"] for row in found for r in row.runs)
    header = ["model", "input", "seeds", *types, "P", "R", "F1", "strict F1", "paper F1", "Δ paper"]
    body = []
    for row in found:
        model, _, _, images, _ = row.key
        body.append([model.upper(), IMAGE_LABELS[images] + _marks(row), str(row.seeds), *(_pm(_type_f1(row, t)) for t in types),
                     _pm(row.values["precision"]), _pm(row.values["recall"]), _pm(row.values["f1"]), _pm(row.values["strict_f1"]),
                     *_paper_cells(row, TABLE2.get((model, images)))])
    return Table("table2", "Table 2: CMNER test, target-only (entity F1, conlleval; mean ± std over seeds)", header, body,
                 _legend(found, settings=False))


def cross_lingual_table(rows: dict[RowKey, Row], pair: Pair, bootstrap: int = BOOTSTRAP_RESAMPLES) -> Table:
    """One pair's settings on its target's test set: Table 3 / 4 for the paper's pairs, with the paper's numbers.

    Another pair's table lists every setting its runs used, the F1 of each
    entity type its runs found (an open label set's own types included) and
    no paper columns (the paper did not run it). ``bootstrap``: the resamples
    the rows' p were drawn with, for the legend.
    """
    direction = PAPER_PAIRS.get(pair)
    paper = direction is not None
    paper_columns = ["paper F1", "Δ paper"] if paper else []
    # the paper's tables: its four settings (the multilingual table adds the joint ones); another pair: every setting run
    table_settings = PAPER_SETTINGS if paper else _settings({key[2] for key in rows if key[1] == pair})
    found = [row for model in _models(rows) for setting in table_settings
             for row in (_cells(rows, model, pair, setting, "all") or _cells(rows, model, pair, setting, "none"))]
    types = [] if paper else score_types(r.test()["per_type_f1"] for row in found for r in row.runs)
    header = ["model", "train", "seeds", *types, "P", "R", "F1", "strict F1", *paper_columns, "Δ vs −", "p (bootstrap)", "verdict"]
    body = []
    for row in found:
        body.append([row.key[0].upper(), _train_label(row), str(row.seeds), *(_pm(_type_f1(row, t)) for t in types),
                     _pm(row.values["precision"]), _pm(row.values["recall"]), _pm(row.values["f1"]), _pm(row.values["strict_f1"]),
                     *(_paper_cells(row) if paper else []), *_significance_cells(row)])
    legend = _legend(found, resamples=bootstrap if any(row.p_value is not None for row in found) else None)
    if direction is not None:
        number = "3" if direction == "en-zh" else "4"
        title = f"Table {number}: {direction.replace('-', '→')} (test on {_dataset_label(pair[1])}; mean ± std over seeds; p: paired bootstrap vs −)"
        return Table(f"table{number}", title, header, body, legend)
    title = f"{_pair_arrow(pair)} (test on {_dataset_label(pair[1])}; mean ± std over seeds; p: paired bootstrap vs −)"
    return Table(f"pair-{pair_label(*pair)}", title, header, body, legend)


def _pair_arrow(pair: Pair) -> str:
    sources, target = pair
    return f"{' + '.join(map(_dataset_label, sources)) or '(no source)'} → {_dataset_label(target)}"


def _settings(present: set[str]) -> list[str]:
    """Settings in the packaged order, then any other (a setting file since removed) by name."""
    order = list(known_settings())
    return [s for s in order if s in present] + sorted(present - set(order))


def _models(rows: dict[RowKey, Row]) -> list[str]:
    """The models the rows hold: the packaged ones in their order, then any other."""
    present = {key[0] for key in rows}
    return [m for m in MODEL_TYPES if m in present] + sorted(present - set(MODEL_TYPES))


def _test_set_p(row: Row, baseline: Row, dataset: str, resamples: int) -> str:
    """Paired bootstrap p of ``row`` against ``baseline`` on one test set, or "" when it cannot be run."""
    if resamples <= 0 or row is baseline:
        return ""
    try:
        compared = _paired_bootstrap(row, baseline, resamples, dataset)
    except OSError:
        return ""
    return "" if compared is None else f"{compared[1]:.3f}"


def multilingual_table(rows: dict[RowKey, Row], pair: Pair, bootstrap: int = BOOTSTRAP_RESAMPLES) -> Table:
    """Per model and setting, F1 on every test set of a pair from the same runs, their macro average, and the bootstrap vs −.

    Every run is scored on the target's and each source dataset's test set
    (``metrics.json`` ``tests``), so a monolingual, a cross-lingual and a joint
    model are compared on the same test sets. p: paired bootstrap against
    the ``tgt_only`` runs of the same model, per test set.
    """
    test_sets = [pair[1], *pair[0]]
    names = [_dataset_label(d) for d in test_sets]
    header = ["model", "train", "seeds", *(f"{n} F1" for n in names), "macro F1", "Δ macro vs −", *(f"p {n}" for n in names)]

    def macro(run: RunRecord) -> float:
        return sum(run.test_f1(d) for d in test_sets) / len(test_sets)

    body, found = [], []
    for model in _models(rows):
        for images in ("all", "none"):
            for setting in _settings({key[2] for key in rows if key[1] == pair}):
                for row in _cells(rows, model, pair, setting, images):
                    if any(r.test_f1(d) is None for r in row.runs for d in test_sets):
                        continue
                    baseline = row.baseline
                    per_set = [_mean_std([r.test_f1(d) for r in row.runs]) for d in test_sets]
                    delta, p_values = "", ["" for _ in test_sets]
                    if baseline is not None and baseline is not row and all(r.test_f1(d) is not None for r in baseline.runs for d in test_sets):
                        delta = f"{_mean_std([macro(r) for r in row.runs])[0] - statistics.fmean(macro(r) for r in baseline.runs):+.2f}"
                        p_values = [_test_set_p(row, baseline, d, bootstrap) for d in test_sets]
                    body.append([model.upper(), _train_label(row), str(row.seeds), *map(_pm, per_set),
                                 _pm(_mean_std([macro(r) for r in row.runs])), delta, *p_values])
                    found.append(row)
    legend = _legend(found, resamples=bootstrap if any(p for line in body for p in line[-len(test_sets):]) else None)
    direction = PAPER_PAIRS.get(pair)
    what = direction.replace("-", "→") if direction else _pair_arrow(pair)
    title = (f"Multilingual comparison, {what}: F1 on {'both' if len(test_sets) == 2 else 'all'} test sets from the same runs "
             "(conlleval; mean ± std over seeds; p: paired bootstrap vs −)")
    return Table(f"multilingual-{direction or pair_label(*pair)}", title, header, body, legend)


PAPER_COLUMNS = ("paper F1", "Δ paper")


def without_paper(table: Table) -> Table:
    """The table less its paper columns (for runs that must not be read against the paper, e.g. the demo's)."""
    keep = [i for i, name in enumerate(table.header) if name not in PAPER_COLUMNS]
    return Table(table.name, table.title, [table.header[i] for i in keep], [[row[i] for i in keep] for row in table.rows], table.legend)


def bar_chart(rows: dict[RowKey, Row], path: Path, note: str | None = None, label: str = "ours", paper: bool = True) -> Path | None:
    """F1 per configuration with seed standard deviations as error bars (PNG; none for one seed).

    ``label`` names our bars in the legend, ``note`` becomes the title and
    ``paper=False`` leaves out the paper's bars, so a chart of demo runs cannot
    pass for a reproduction of the paper. A subset's bar has no paper bar beside it.
    """
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.usetex"] = False  # labels carry names from run folders: never handed to TeX (plain_label keeps them out of math text)
    import matplotlib.pyplot as plt

    order = _settings({k[2] for k in rows})
    keys = sorted(rows, key=lambda k: (_pair_name(k[1]), k[0], order.index(k[2]), k[3], k[4]))
    if not keys:
        return None
    labels = [plain_label(f"{m.upper()} {_pair_name(p)}\n{_setting_label(s)}{'' if i == 'all' else ' ' + i}"
                          + "".join(f"\n{textwrap.fill(mark, 24)}" for mark in (v, rows[(m, p, s, i, v)].subset and "subset") if mark))
              for m, p, s, i, v in keys]
    means = [rows[k].values["f1"][0] for k in keys]
    stds = [rows[k].values["f1"][1] or 0.0 for k in keys]
    paper_f1 = [rows[k].paper.f1 if rows[k].paper and paper else np.nan for k in keys]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(keys) + 2), 4.5))
    x = np.arange(len(keys))
    ax.bar(x - 0.2 if paper else x, means, 0.4, yerr=stds, capsize=3, label=plain_label(f"{label} (mean ± std over seeds)"))
    if paper:
        ax.bar(x + 0.2, paper_f1, 0.4, alpha=0.6, label="paper")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("test F1 (conlleval)")
    ax.legend(fontsize=8)
    if note:
        ax.set_title(plain_label(textwrap.fill(note, int(13 * fig.get_figwidth()))), fontsize=8, color="darkred")
    fig.tight_layout()
    save_png(fig, path, dpi=120)
    plt.close(fig)
    return path


def _pair_name(pair: Pair) -> str:
    """The direction for the paper's pairs (as the chart always said), else the datasets."""
    return PAPER_PAIRS.get(pair) or pair_label(*pair)


def translation_previews(run: RunRecord) -> list[Path]:
    """The ``preview.html`` of each translated corpus a run trained on (a setting with a ``translation`` part), where it still is.

    Resolved from the run's saved config as training resolved it, and kept only
    when the folder is one the run recorded in ``metrics.json``.
    """
    from xlingual.projection.preview import PREVIEW_NAME
    from xlingual.stage_inputs import find_translation
    from xlingual.train.config.stages import setting_plan

    recorded = " ".join(stage.get("data", "") for stage in run.metrics.get("stages", {}).values())
    previews = []
    try:  # only looks: a report never builds a translation, whatever the run's build_missing said
        saved = run.saved_config
        if saved is None or saved.resolved is None:  # no config, or one this version cannot resolve: nothing to find
            return []
        config = saved.resolved
        if "translation" not in setting_plan(config.setting).parts:
            return []
        for dataset in config.source_datasets:
            folder = find_translation(config.data.data_dir, dataset, config.target_lang, config.data.translation_model)
            preview = folder / PREVIEW_NAME
            if f"{folder.name} (" in recorded and preview.is_file():
                previews.append(preview)
    except (XlingualError, OSError):  # a folder gone, moved or not whole: no link to it
        return previews
    return previews


_PLAN_STATES = {"new": "not started", "unfinished": "interrupted (the same xl experiment resumes it)",
                "failed": f"failed ({FAILURE_NAME}; train it into another folder)", "finished": "finished but not among the runs reported"}


def plan_table(plan_file: Path, runs: list[RunRecord], number: int = 1) -> tuple[Table, list[str]]:
    """The rows an experiment's plan lays out, in its order, and a line for each planned run that is not finished.

    One row per planned cell (model, data, setting, image input): its finished
    runs of those planned and their test F1 over seeds. ``plan_file`` is the
    copy ``xl experiment --plan`` left in its output folder; the planned run
    folders are beside it.
    """
    found = {run.run_dir.resolve(): run for run in runs}
    cells: dict[GroupKey, list[Path]] = {}
    for config, run_dir in read_plan(plan_file).runs(output=plan_file.parent):
        cells.setdefault((config.model_type, (config.source_datasets, config.target_dataset), config.setting, config.images), []).append(run_dir)
    body, missing = [], []
    for (model, pair, setting, images), planned in cells.items():
        done = [found[d.resolve()] for d in planned if d.resolve() in found]
        missing += [f"{d}: {_PLAN_STATES[run_state(d)]}" for d in planned if d.resolve() not in found]
        f1 = _pm(_mean_std([r.test()["f1"] for r in done])) if done else "none finished"
        body.append([model.upper(), _pair_name(pair), _input_label(setting, images), f"{len(done)} of {len(planned)}", f1])
    legend = "; ".join([*_settings_legend(setting for _, _, setting, _ in cells),
                        "runs: the cell's finished runs of those the plan holds (one per seed)",
                        "F1: test F1 (conlleval), mean ± std over the finished runs"]) + "."
    title = f"Plan {plan_file.parent.name}/{plan_file.name}: {sum(len(p) for p in cells.values()) - len(missing)} of " \
            f"{sum(len(p) for p in cells.values())} planned runs finished"
    return Table("plan" if number == 1 else f"plan-{number}", title, ["model", "data", "train", "runs", "F1"], body, legend), missing


@dataclass
class Report:
    tables: list[Table]
    files: list[Path]
    runs: int
    note: str | None = None
    """What heads report.md (a demo's runs: that they are demo numbers)."""
    missing_runs: list[str] = field(default_factory=list)
    """Each run a plan among the reported folders holds that is not finished, with its state."""
    repeated_runs: list[str] = field(default_factory=list)
    """Each run left out because its configuration's row already counts a run of its seed, and the run counted."""


def report_tables(rows: dict[RowKey, Row], plan_tables: list[Table], bootstrap: int, label: str = "ours", paper: bool = True) -> list[Table]:
    """Every table of a report, in order: the plans', Table 2, the paper's pairs' (cross-lingual, then multilingual), one per other pair.

    ``paper=False`` leaves the paper's columns out; a ``label`` other than
    "ours" is added to every title, so each copy of a table says whose
    numbers it holds.
    """
    paper_pairs = [direction_datasets(d) for d in PAPER_DIRECTIONS]
    other_pairs = sorted({key[1] for key in rows} - set(paper_pairs), key=lambda pair: pair_label(*pair))
    tables = [*plan_tables, table2(rows), *(cross_lingual_table(rows, pair, bootstrap) for pair in paper_pairs),
              *(multilingual_table(rows, pair, bootstrap) for pair in paper_pairs)]
    for pair in other_pairs:  # one table per pair the runs trained on, and its test sets side by side where there are several
        tables += [cross_lingual_table(rows, pair, bootstrap), *([multilingual_table(rows, pair, bootstrap)] if pair[0] else [])]
    if not paper:
        tables = [without_paper(table) for table in tables]
    if label != "ours":
        tables = [replace(table, title=f"{table.title}: {label}") for table in tables]
    return tables


def _write_table_files(tables: list[Table], out: Path) -> list[Path]:
    """Each table as ``<name>.md``, ``.tex`` and ``.csv`` in ``out``."""
    files: list[Path] = []
    for table in tables:
        for suffix, text in (("md", table.markdown()), ("tex", table.latex()), ("csv", table.csv())):
            path = out / f"{table.name}.{suffix}"
            atomic_write_text(path, text)
            files.append(path)
    return files


def _preview_links(runs: list[RunRecord], out: Path) -> list[tuple[str, Path, str]]:
    """(run, preview.html, its path relative to ``out``) of each translated corpus the runs trained on."""
    previews = {r.metrics.get("run", r.run_dir.name): translation_previews(r) for r in sorted(runs, key=lambda r: str(r.run_dir))}
    return [(name, p, os.path.relpath(p.resolve(), out.resolve())) for name, found in previews.items() for p in found]


MISSING_RUNS = "Missing runs"
REPEATED_RUNS = "Runs not counted (a seed already counted)"


@locks_output("out_dir")
def write_report(run_paths: list[str | Path], out_dir: str | Path, bootstrap: int = BOOTSTRAP_RESAMPLES, note: str | None = None,
                 label: str = "ours", paper: bool = True, html: bool = False) -> Report:
    """Find runs, build Tables 2-4 and the chart, write them under ``out_dir``.

    ``note`` (e.g. that the runs are a demo's) heads report.md and titles the
    chart; ``label`` names our numbers in table titles and the chart's legend;
    ``paper=False`` leaves the paper's numbers out of tables and chart. Runs
    that record a purpose (a demo's) impose their marking whatever the
    caller passed: their note (unless ``note`` is given), their label and no
    paper numbers (:mod:`xlingual.evaluation.purpose`). ``html`` also writes
    ``report.html``: the same tables and the chart in one self-contained page
    (:mod:`xlingual.evaluation.report_html`). ``out_dir``'s lock is held meanwhile, so
    two reports never mix their tables in one folder.
    """
    runs = find_runs(run_paths)
    plan_files = list(dict.fromkeys(p.resolve() for p in map(find_plan, run_paths) if p is not None))
    plans = [plan_table(path, runs, number) for number, path in enumerate(plan_files, 1)]
    marked = marking(run.purpose for run in runs if run.purpose)
    if marked is not None:
        note, label, paper = note or marked.note, marked.label if label == "ours" else label, False
    rows = build_rows(runs, bootstrap)
    out = Path(out_dir)
    tables = report_tables(rows, [table for table, _ in plans], bootstrap, label, paper)
    files = _write_table_files(tables, out)
    missing = [line for _, lines in plans for line in lines]
    repeated = [f"{repeat.run_dir}: seed {repeat.metrics['seed']} of {_row_name(row.key)} again; {counted.run_dir} is counted"
                for row in rows.values() for repeat, counted in row.repeats]
    lists = ([(MISSING_RUNS, missing or ["Every planned run is finished."])] if plans else []) + ([(REPEATED_RUNS, repeated)] if repeated else [])
    summary = "\n".join(t.markdown() for t in tables if t.rows)
    summary += "".join(f"\n### {heading}\n\n" + "".join(f"- {markdown_cell(line)}\n" for line in lines) for heading, lines in lists)
    preview_links = _preview_links(runs, out)
    links = "".join(f"- {name}: [{p.parent.name}/{p.name}]({target})\n" for name, p, target in preview_links)
    summary += f"\n### Translated corpora the runs trained on\n\n{links}" if links else ""
    heading = f"# Results ({len(runs)} runs)\n\n" + (f"**{note}**\n\n" if note else "")
    atomic_write_text(out / "report.md", heading + summary)
    files.append(out / "report.md")
    chart = bar_chart(rows, out / "f1_by_config.png", note, label, paper)
    if chart:
        files.append(chart)
    if html:
        charts = [Chart(f"Test F1 per configuration ({label}; error bars: std over seeds)", chart.read_bytes())] if chart else []
        page = render_report_html(f"Results ({len(runs)} runs)", tables, charts, note,
                                  [Link(name, target) for name, _, target in preview_links], lists)
        atomic_write_text(out / REPORT_HTML_NAME, page)
        files.append(out / REPORT_HTML_NAME)
    return Report(tables, files, len(runs), note, missing, repeated)


__all__ = ["PAPER_PAIRS", "SEED_FREE_KEYS", "Report", "Row", "RowKey", "RunRecord", "Table", "build_rows", "find_runs", "score_types",
           "write_report"]

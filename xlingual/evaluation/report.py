"""Tables 2-4 of the CMNER paper from run folders, and the same tables for any other dataset pair.

Runs are grouped by (model, pair, setting, images), a pair being the source
datasets and the target dataset a run trained on (a direction is the paper's
name for its two pairs, Twitter2015 -> CMNER and back). Each row shows the mean
± standard deviation over seeds, for the paper's pairs and settings the
paper's number and our difference from it, and for every other setting a
paired bootstrap against ``tgt_only`` with a plain verdict on whether the gain
exceeds seed noise. One table per pair; per-type columns list the entity
types the runs' metrics hold.
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
from pathlib import Path
from typing import Any

import numpy as np

from xlingual.data.labels import table_types
from xlingual.errors import ConfigError, XlingualError
from xlingual.io import atomic_write_text
from xlingual.text_escape import latex_text, markdown_cell, plain_label
from xlingual.train.config import MODEL_TYPES, PAPER_SETTINGS
from xlingual.train.config.packaged import settings as known_settings
from xlingual.train.config.schema import direction_datasets, pair_label
from xlingual.evaluation.evaluate import check_run_outputs, read_run_predictions
from xlingual.evaluation.metrics import sentence_counts
from xlingual.evaluation.paper import CROSS_LINGUAL, IMAGE_LABELS, SETTING_LABELS, TABLE2, PaperRow
from xlingual.workspace import METRICS_NAME, RunFolder
from xlingual.evaluation.significance import paired_bootstrap

logger = logging.getLogger(__name__)

Pair = tuple[tuple[str, ...], str]  # source datasets, target dataset
GroupKey = tuple[str, Pair, str, str]  # model, pair, setting, images

PAPER_DIRECTIONS: tuple[str, ...] = ("en-zh", "zh-en")
"""The CMNER paper's two directions: Tables 3 and 4."""
PAPER_PAIRS: dict[Pair, str] = {direction_datasets(d): d for d in PAPER_DIRECTIONS}
"""The paper's pairs (Twitter2015 -> CMNER, CMNER -> Twitter2015) and the direction its tables call each."""


def score_types(per_type: Iterable[Mapping[str, float]]) -> list[str]:
    """The columns of a per-type table over some per-type scores (:func:`~xlingual.data.labels.table_types`)."""
    return table_types(name for scores in per_type for name in scores)


@dataclass
class RunRecord:
    """What the report needs from one run folder."""

    run_dir: Path
    metrics: dict[str, Any]

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

    def test_f1(self, dataset: str) -> float | None:
        """Conlleval F1 on ``dataset``'s test set, if the run was scored there."""
        scores = self.metrics.get("tests", {}).get(dataset)
        return None if scores is None else scores["conlleval"]["f1"]

    def prediction_split(self, dataset: str) -> str:
        """The name under which the run saved its predictions of ``dataset``'s test set."""
        return "test" if dataset == self.metrics.get("target_dataset") else f"test.{dataset}"

    def sentence_counts(self, split: str = "test") -> tuple[list[str], np.ndarray]:
        """Sample ids and per-sentence entity counts from the saved predictions of ``split`` (``test.<dataset>``: another test set)."""
        samples = read_run_predictions(self.run_dir, split)
        gold = [s.meta["gold"] for s in samples]
        return [s.id for s in samples], sentence_counts(gold, [s.labels for s in samples])


@dataclass
class Row:
    """One table row: our mean ± std over seeds and the paper's number."""

    key: GroupKey
    runs: list[RunRecord]
    paper: PaperRow | None
    values: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (mean, std)
    delta_vs_baseline: float | None = None
    p_value: float | None = None
    verdict: str = ""

    @property
    def seeds(self) -> int:
        return len(self.runs)


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
            check_run_outputs(metrics_path.parent, digests=False)  # digests are checked where predictions are read
            found[metrics_path.parent.resolve()] = RunRecord(metrics_path.parent, metrics)
    if not found:
        raise ConfigError(f"no finished runs (folders with {METRICS_NAME}) under {', '.join(map(str, paths))}")
    return list(found.values())


def _mean_std(values: list[float]) -> tuple[float, float]:
    return (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)


def build_rows(runs: list[RunRecord], bootstrap: int = 1000) -> dict[GroupKey, Row]:
    groups: dict[GroupKey, list[RunRecord]] = defaultdict(list)
    for run in runs:
        groups[run.key].append(run)
    rows: dict[GroupKey, Row] = {}
    for key, members in groups.items():
        model, pair, setting, images = key
        direction = PAPER_PAIRS.get(pair)
        paper = TABLE2.get((model, images)) if (direction == "en-zh" and setting == "tgt_only") else None
        if images == "all" or paper is None:
            paper = CROSS_LINGUAL.get((model, direction, setting)) if images == "all" else paper
        row = Row(key, sorted(members, key=lambda r: r.metrics["seed"]), paper)
        for name in ("precision", "recall", "f1"):
            row.values[name] = _mean_std([r.test()[name] for r in members])
        row.values["strict_f1"] = _mean_std([r.test("strict")["f1"] for r in members])
        for etype in score_types(r.test()["per_type_f1"] for r in members):
            row.values[etype] = _mean_std([r.test()["per_type_f1"].get(etype, 0.0) for r in members])
        rows[key] = row
    for key, row in rows.items():
        model, pair, setting, images = key
        baseline = rows.get((model, pair, "tgt_only", images))
        if setting == "tgt_only" or baseline is None or bootstrap <= 0:
            continue
        _compare(row, baseline, bootstrap)
    return rows


def _compare(row: Row, baseline: Row, resamples: int) -> None:
    system_ids, system = zip(*(r.sentence_counts() for r in row.runs))
    base_ids, base = zip(*(r.sentence_counts() for r in baseline.runs))
    if any(ids != base_ids[0] for ids in system_ids + base_ids):
        logger.warning("%s: test sentences differ from tgt_only's; no significance test", _row_name(row.key))
        return
    row.delta_vs_baseline, row.p_value = paired_bootstrap(list(system), list(base), resamples)
    noise = max(row.values["f1"][1], baseline.values["f1"][1])
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
    """A rendered-agnostic table: a title, column headers, and rows of cell strings."""

    name: str
    title: str
    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(map(markdown_cell, self.header)) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(map(markdown_cell, r)) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"

    def latex(self) -> str:
        esc = latex_text
        cols = "l" * 2 + "r" * (len(self.header) - 2)
        out = [r"\begin{table}[t]", r"\centering", rf"\caption{{{esc(self.title)}}}", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
               " & ".join(esc(h) for h in self.header) + r" \\", r"\midrule"]
        out += [" & ".join(esc(c) for c in r) + r" \\" for r in self.rows]
        out += [r"\bottomrule", r"\end{tabular}", rf"\label{{tab:{self.name}}}", r"\end{table}"]
        return "\n".join(out) + "\n"

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return buffer.getvalue()


def _type_f1(row: Row, etype: str) -> tuple[float, float]:
    """Mean ± std F1 of one entity type over a row's runs (0 where a run's metrics lack the type)."""
    return row.values.get(etype) or _mean_std([r.test()["per_type_f1"].get(etype, 0.0) for r in row.runs])


def _row_name(key: GroupKey) -> str:
    model, pair, setting, images = key
    return f"{model}-{pair_label(*pair)}-{setting}-{images}"


def _setting_label(setting: str) -> str:
    return SETTING_LABELS.get(setting, setting)


def _dataset_label(dataset: str) -> str:
    return {"cmner": "CMNER", "twitter2015": "Twitter2015", "twitter2017": "Twitter2017", "mmnerd": "MMNERD"}.get(dataset, dataset)


def _pm(value: tuple[float, float]) -> str:
    return f"{value[0]:.2f} ± {value[1]:.2f}"


def _paper_cells(row: Row, paper: PaperRow | None = None) -> list[str]:
    paper = paper or row.paper
    if paper is None:
        return ["", ""]
    return [f"{paper.f1:.2f}", f"{row.values['f1'][0] - paper.f1:+.2f}"]


def _significance_cells(row: Row) -> list[str]:
    if row.delta_vs_baseline is None:
        return ["", "", ""]
    return [f"{row.delta_vs_baseline:+.2f}", f"{row.p_value:.3f}", row.verdict]


def table2(rows: dict[GroupKey, Row]) -> Table:
    pair = direction_datasets("en-zh")
    found = [rows[key] for key in ((m, pair, "tgt_only", i) for m in _models(rows) for i in ("none", "one", "all")) if key in rows]
    types = score_types(r.test()["per_type_f1"] for row in found for r in row.runs)
    header = ["model", "input", "seeds", *types, "P", "R", "F1", "strict F1", "paper F1", "Δ paper"]
    body = []
    for row in found:
        model, _, _, images = row.key
        body.append([model.upper(), IMAGE_LABELS[images], str(row.seeds), *(_pm(_type_f1(row, t)) for t in types),
                     _pm(row.values["precision"]), _pm(row.values["recall"]), _pm(row.values["f1"]), _pm(row.values["strict_f1"]),
                     *_paper_cells(row, TABLE2.get((model, images)))])
    return Table("table2", "Table 2: CMNER test, target-only (entity F1, conlleval; mean ± std over seeds)", header, body)


def cross_lingual_table(rows: dict[GroupKey, Row], pair: Pair) -> Table:
    """One pair's settings on its target's test set: Table 3 / 4 for the paper's pairs, with the paper's numbers.

    Another pair's table lists every setting its runs used, the F1 of each
    entity type its runs found (an open label set's own types included) and
    no paper columns (the paper did not run it).
    """
    direction = PAPER_PAIRS.get(pair)
    paper = direction is not None
    paper_columns = ["paper F1", "Δ paper"] if paper else []
    # the paper's tables: its four settings (the multilingual table adds the joint ones); another pair: every setting run
    table_settings = PAPER_SETTINGS if paper else _settings({key[2] for key in rows if key[1] == pair})
    found = [row for model in _models(rows) for setting in table_settings
             if (row := rows.get((model, pair, setting, "all")) or rows.get((model, pair, setting, "none"))) is not None]
    types = [] if paper else score_types(r.test()["per_type_f1"] for row in found for r in row.runs)
    header = ["model", "train", "seeds", *types, "P", "R", "F1", "strict F1", *paper_columns, "Δ vs −", "p (bootstrap)", "verdict"]
    body = []
    for row in found:
        model, _, setting, images = row.key
        label = _setting_label(setting) + ("" if images == "all" else f" ({IMAGE_LABELS[images]})")
        body.append([model.upper(), label, str(row.seeds), *(_pm(_type_f1(row, t)) for t in types),
                     _pm(row.values["precision"]), _pm(row.values["recall"]), _pm(row.values["f1"]), _pm(row.values["strict_f1"]),
                     *(_paper_cells(row) if paper else []), *_significance_cells(row)])
    if direction is not None:
        number = "3" if direction == "en-zh" else "4"
        title = f"Table {number}: {direction.replace('-', '→')} (test on {_dataset_label(pair[1])}; mean ± std over seeds; p: paired bootstrap vs −)"
        return Table(f"table{number}", title, header, body)
    title = f"{_pair_arrow(pair)} (test on {_dataset_label(pair[1])}; mean ± std over seeds; p: paired bootstrap vs −)"
    return Table(f"pair-{pair_label(*pair)}", title, header, body)


def _pair_arrow(pair: Pair) -> str:
    sources, target = pair
    return f"{' + '.join(map(_dataset_label, sources)) or '(no source)'} → {_dataset_label(target)}"


def _settings(present: set[str]) -> list[str]:
    """Settings in the packaged order, then any other (a setting file since removed) by name."""
    order = list(known_settings())
    return [s for s in order if s in present] + sorted(present - set(order))


def _models(rows: dict[GroupKey, Row]) -> list[str]:
    """The models the rows hold: the packaged ones in their order, then any other."""
    present = {key[0] for key in rows}
    return [m for m in MODEL_TYPES if m in present] + sorted(present - set(MODEL_TYPES))


def _test_set_p(row: Row, baseline: Row, dataset: str, resamples: int) -> str:
    """Paired bootstrap p of ``row`` against ``baseline`` on one test set, or "" when it cannot be run."""
    if resamples <= 0 or row is baseline:
        return ""
    try:
        system_ids, system = zip(*(r.sentence_counts(r.prediction_split(dataset)) for r in row.runs))
        base_ids, base = zip(*(r.sentence_counts(r.prediction_split(dataset)) for r in baseline.runs))
    except OSError:
        return ""
    if any(ids != base_ids[0] for ids in system_ids + base_ids):
        return ""
    return f"{paired_bootstrap(list(system), list(base), resamples)[1]:.3f}"


def multilingual_table(rows: dict[GroupKey, Row], pair: Pair, bootstrap: int = 1000) -> Table:
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

    body = []
    for model in _models(rows):
        for images in ("all", "none"):
            baseline = rows.get((model, pair, "tgt_only", images))
            for setting in _settings({key[2] for key in rows if key[1] == pair}):
                row = rows.get((model, pair, setting, images))
                if row is None or any(r.test_f1(d) is None for r in row.runs for d in test_sets):
                    continue
                per_set = [_mean_std([r.test_f1(d) for r in row.runs]) for d in test_sets]
                delta, p_values = "", ["" for _ in test_sets]
                if baseline is not None and baseline is not row and all(r.test_f1(d) is not None for r in baseline.runs for d in test_sets):
                    delta = f"{_mean_std([macro(r) for r in row.runs])[0] - statistics.fmean(macro(r) for r in baseline.runs):+.2f}"
                    p_values = [_test_set_p(row, baseline, d, bootstrap) for d in test_sets]
                label = _setting_label(setting) + ("" if images == "all" else f" ({IMAGE_LABELS[images]})")
                body.append([model.upper(), label, str(row.seeds), *map(_pm, per_set), _pm(_mean_std([macro(r) for r in row.runs])),
                             delta, *p_values])
    direction = PAPER_PAIRS.get(pair)
    what = direction.replace("-", "→") if direction else _pair_arrow(pair)
    title = (f"Multilingual comparison, {what}: F1 on {'both' if len(test_sets) == 2 else 'all'} test sets from the same runs "
             "(conlleval; mean ± std over seeds; p: paired bootstrap vs −)")
    return Table(f"multilingual-{direction or pair_label(*pair)}", title, header, body)


PAPER_COLUMNS = ("paper F1", "Δ paper")


def without_paper(table: Table) -> Table:
    """The table less its paper columns (for runs that must not be read against the paper, e.g. the demo's)."""
    keep = [i for i, name in enumerate(table.header) if name not in PAPER_COLUMNS]
    return Table(table.name, table.title, [table.header[i] for i in keep], [[row[i] for i in keep] for row in table.rows])


def bar_chart(rows: dict[GroupKey, Row], path: Path, note: str | None = None, label: str = "ours", paper: bool = True) -> Path | None:
    """F1 per configuration with seed standard deviations as error bars (PNG).

    ``label`` names our bars in the legend, ``note`` becomes the title and
    ``paper=False`` leaves out the paper's bars, so a chart of demo runs cannot
    pass for a reproduction of the paper.
    """
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.usetex"] = False  # labels carry names from run folders: never handed to TeX (plain_label keeps them out of math text)
    import matplotlib.pyplot as plt

    order = _settings({k[2] for k in rows})
    keys = sorted(rows, key=lambda k: (_pair_name(k[1]), k[0], order.index(k[2]), k[3]))
    if not keys:
        return None
    labels = [plain_label(f"{m.upper()} {_pair_name(p)}\n{_setting_label(s)}{'' if i == 'all' else ' ' + i}") for m, p, s, i in keys]
    means = [rows[k].values["f1"][0] for k in keys]
    stds = [rows[k].values["f1"][1] for k in keys]
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
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
    from xlingual.train.config import config_from_dict, read_yaml
    from xlingual.train.config.stages import setting_plan

    recorded = " ".join(stage.get("data", "") for stage in run.metrics.get("stages", {}).values())
    saved_config = RunFolder(run.run_dir).config
    if not saved_config.is_file():
        return []
    previews = []
    try:  # only looks: a report never builds a translation, whatever the run's build_missing said
        config = config_from_dict(read_yaml(saved_config), where=str(saved_config))
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


@dataclass
class Report:
    tables: list[Table]
    files: list[Path]
    runs: int


def write_report(run_paths: list[str | Path], out_dir: str | Path, bootstrap: int = 1000, note: str | None = None,
                 label: str = "ours", paper: bool = True) -> Report:
    """Find runs, build Tables 2-4 and the chart, write them under ``out_dir``.

    ``note`` (e.g. that the runs are a demo's) heads report.md and titles the
    chart; ``label`` names our numbers in table titles and the chart's legend;
    ``paper=False`` leaves the paper's numbers out of tables and chart.
    """
    runs = find_runs(run_paths)
    rows = build_rows(runs, bootstrap)
    out = Path(out_dir)
    paper_pairs = [direction_datasets(d) for d in PAPER_DIRECTIONS]
    other_pairs = sorted({key[1] for key in rows} - set(paper_pairs), key=lambda pair: pair_label(*pair))
    tables = [table2(rows), *(cross_lingual_table(rows, pair) for pair in paper_pairs),
              *(multilingual_table(rows, pair, bootstrap) for pair in paper_pairs)]
    for pair in other_pairs:  # one table per pair the runs trained on, and its test sets side by side where there are several
        tables += [cross_lingual_table(rows, pair), *([multilingual_table(rows, pair, bootstrap)] if pair[0] else [])]
    if not paper:
        tables = [without_paper(table) for table in tables]
    if label != "ours":  # every copy of a table (Markdown, LaTeX, CSV) says whose numbers it holds
        tables = [replace(table, title=f"{table.title}: {label}") for table in tables]
    files: list[Path] = []
    for table in tables:
        for suffix, text in (("md", table.markdown()), ("tex", table.latex()), ("csv", table.csv())):
            path = out / f"{table.name}.{suffix}"
            atomic_write_text(path, text)
            files.append(path)
    summary = "\n".join(t.markdown() for t in tables if t.rows)
    previews = {r.metrics.get("run", r.run_dir.name): translation_previews(r) for r in sorted(runs, key=lambda r: str(r.run_dir))}
    links = "".join(f"- {name}: [{p.parent.name}/{p.name}]({os.path.relpath(p.resolve(), out.resolve())})\n"
                    for name, found in previews.items() for p in found)
    summary += f"\n### Translated corpora the runs trained on\n\n{links}" if links else ""
    heading = f"# Results ({len(runs)} runs)\n\n" + (f"**{note}**\n\n" if note else "")
    atomic_write_text(out / "report.md", heading + summary)
    files.append(out / "report.md")
    chart = bar_chart(rows, out / "f1_by_config.png", note, label, paper)
    if chart:
        files.append(chart)
    return Report(tables, files, len(runs))


__all__ = ["PAPER_PAIRS", "Report", "RunRecord", "Table", "build_rows", "find_runs", "score_types", "write_report"]

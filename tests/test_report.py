"""Reports: Tables 2-4 from run folders, numbers checked against the metrics files, bootstrap, chart."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.datasets import get_dataset
from xlingual.data.sample import Sample
from xlingual.io import atomic_write_json
from xlingual.evaluation.report import build_rows, find_runs, write_report
from xlingual.train.run import predict_and_write
from xlingual.workspace import RunFolder
from xlingual.evaluation.significance import paired_bootstrap

TYPES = ["PER", "LOC", "ORG", "MISC"]


class FixedPredictions:
    """Stands in for a model: returns predictions decided by the test."""

    def __init__(self, labels):
        self.labels = labels

    def predict(self, samples, visual=None, batch_size=32):
        return self.labels



def make_test_set(n: int = 120, seed: int = 0) -> list[Sample]:
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        labels = []
        for _ in range(rng.randint(3, 12)):
            labels += [f"B-{rng.choice(TYPES)}", "O"] if rng.random() < 0.3 else ["O"]
        samples.append(Sample(f"p{i}", [f"t{j}" for j in range(len(labels))], labels, [], "zh"))
    return samples


def corrupt(samples: list[Sample], rate: float, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[("O" if label != "O" else label) if rng.random() < rate else label for label in s.labels] for s in samples]


def make_run(root: Path, model: str, direction: str, setting: str, images: str, seed: int, test: list[Sample], error_rate: float) -> Path:
    run_dir = root / f"{model}-{direction}-{setting}-{images}-seed{seed}"
    fake = FixedPredictions(corrupt(test, error_rate, seed))
    scores = predict_and_write(fake, test, None, 32, RunFolder(run_dir), "test", get_dataset("cmner"))
    atomic_write_json(run_dir / "metrics.json", {
        "run": run_dir.name, "model_type": model, "direction": direction, "setting": setting, "images": images,
        "seed": seed, "target_dataset": "cmner", "test": scores, "dev": scores,
    })
    return run_dir


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    test = make_test_set()
    for seed in (1, 2, 3):
        make_run(root, "acn", "en-zh", "tgt_only", "all", seed, test, 0.45)
        make_run(root, "acn", "en-zh", "src_tgt", "all", seed, test, 0.05)   # clearly better
        make_run(root, "acn", "en-zh", "src", "all", seed, test, 0.45 - 0.01 * seed)  # about the same
        make_run(root, "acn", "en-zh", "tgt_only", "none", seed, test, 0.5)
    make_run(root, "umt", "zh-en", "tgt_only", "all", 1, test, 0.2)
    make_run(root, "umt", "zh-en", "tgt", "all", 1, test, 0.1)
    return root


def _metrics(root: Path, pattern: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob(f"{pattern}/metrics.json"))]


def _cell(mean: float, std: float) -> str:
    return f"{mean:.2f} ± {std:.2f}"


def test_tables_show_mean_and_std_of_the_metrics_files(runs_root, tmp_path):
    report = write_report([runs_root], tmp_path / "out", bootstrap=300)
    assert report.runs == 14
    table3 = {t.name: t for t in report.tables}["table3"]
    rows = {(r[0], r[1]): dict(zip(table3.header, r)) for r in table3.rows}
    for setting, label, paper in (("src_tgt", "SRC&TGT", 76.73), ("tgt_only", "−", 74.52), ("src", "SRC", 75.60)):
        metrics = _metrics(runs_root, f"acn-en-zh-{setting}-all-seed*")
        assert len(metrics) == 3
        row = rows[("ACN", label)]
        for column, key in (("P", "precision"), ("R", "recall"), ("F1", "f1")):
            values = [m["test"]["conlleval"][key] for m in metrics]
            assert row[column] == _cell(statistics.fmean(values), statistics.stdev(values))
        strict = [m["test"]["strict"]["f1"] for m in metrics]
        assert row["strict F1"] == _cell(statistics.fmean(strict), statistics.stdev(strict))
        assert row["paper F1"] == f"{paper:.2f}"
        f1 = statistics.fmean(m["test"]["conlleval"]["f1"] for m in metrics)
        assert row["Δ paper"] == f"{f1 - paper:+.2f}"
        assert row["seeds"] == "3"
    assert rows[("ACN", "SRC&TGT")]["verdict"] == "gain exceeds seed noise"
    assert float(rows[("ACN", "SRC&TGT")]["p (bootstrap)"]) < 0.01
    assert rows[("ACN", "SRC")]["verdict"] in ("gain within seed noise", "no gain")
    assert rows[("ACN", "−")]["verdict"] == ""

    table2 = {t.name: t for t in report.tables}["table2"]
    text_row = dict(zip(table2.header, next(r for r in table2.rows if r[1] == "text")))
    metrics = _metrics(runs_root, "acn-en-zh-tgt_only-none-seed*")
    per = [m["test"]["conlleval"]["per_type_f1"]["PER"] for m in metrics]
    assert text_row["PER"] == _cell(statistics.fmean(per), statistics.stdev(per)) and text_row["paper F1"] == "72.93"
    all_images = dict(zip(table2.header, next(r for r in table2.rows if r[1] == "text + all images")))
    assert all_images["paper F1"] == "74.22"  # Table 2's number, not Table 3's 74.52

    table4 = {t.name: t for t in report.tables}["table4"]
    umt = {r[1]: dict(zip(table4.header, r)) for r in table4.rows}
    assert umt["TGT"]["verdict"] == "one seed: seed noise unknown" and umt["TGT"]["paper F1"] == "74.90"


def test_every_format_is_written_and_consistent(runs_root, tmp_path):
    out = tmp_path / "out"
    report = write_report([runs_root], out, bootstrap=0)
    for name in ("table2", "table3", "table4"):
        for suffix in ("md", "tex", "csv"):
            assert (out / f"{name}.{suffix}").is_file()
    table3 = {t.name: t for t in report.tables}["table3"]
    parsed = list(csv.reader(io.StringIO((out / "table3.csv").read_text())))
    assert parsed[0] == table3.header and parsed[1:] == table3.rows
    tex = (out / "table3.tex").read_text()
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex and r"SRC\&TGT" in tex
    assert (out / "f1_by_config.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Table 3" in (out / "report.md").read_text()


def test_bootstrap_detects_a_real_gain_and_not_a_null_one():
    test = make_test_set(200, seed=3)
    from xlingual.evaluation.metrics import sentence_counts

    gold = [s.labels for s in test]
    good = [sentence_counts(gold, corrupt(test, 0.05, s)) for s in (1, 2)]
    bad = [sentence_counts(gold, corrupt(test, 0.4, s)) for s in (1, 2)]
    delta, p = paired_bootstrap(good, bad, resamples=300)
    assert delta > 10 and p < 0.01
    delta, p = paired_bootstrap(bad, bad, resamples=300)
    assert delta == 0 and p == 1.0


def test_report_cli_and_its_errors(runs_root, tmp_path):
    result = CliRunner().invoke(app, ["report", str(runs_root), "--output", str(tmp_path / "r"), "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    assert "Table 3" in result.output and "14 runs" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["report", str(empty)])
    assert result.exit_code == 2 and "no finished runs" in result.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metrics.json").write_text("{\n  oops")
    result = CliRunner().invoke(app, ["report", str(broken)])
    assert result.exit_code == 2 and "metrics.json:2: not valid JSON" in result.output


def test_runs_are_grouped_by_configuration(runs_root):
    rows = build_rows(find_runs([runs_root]), bootstrap=0)
    assert rows[("acn", (("twitter2015",), "cmner"), "src_tgt", "all", "")].seeds == 3  # a direction is its pair of datasets
    assert rows[("umt", (("cmner",), "twitter2015"), "tgt", "all", "")].seeds == 1


def make_multilingual_run(root: Path, model: str, setting: str, seed: int, tests: dict[str, list[Sample]], error_rates: dict[str, float]) -> Path:
    """A run folder scored on both languages' test sets, as train_run writes it (predictions/test*.jsonl, metrics tests)."""
    run_dir = root / f"{model}-en-zh-{setting}-seed{seed}"
    folder = RunFolder(run_dir)
    scores = {}
    for dataset, test in tests.items():
        split = "test" if dataset == "cmner" else f"test.{dataset}"
        fake = FixedPredictions(corrupt(test, error_rates[dataset], seed))
        scores[dataset] = predict_and_write(fake, test, None, 32, folder, split, get_dataset(dataset))
    atomic_write_json(folder.metrics, {
        "run": run_dir.name, "model_type": model, "direction": "en-zh", "setting": setting, "images": "all", "seed": seed,
        "target_dataset": "cmner", "test": scores["cmner"], "dev": scores["cmner"], "tests": scores,
        "test_macro_f1": statistics.fmean(s["conlleval"]["f1"] for s in scores.values()),
    })
    return run_dir


def test_multilingual_table_reads_both_test_sets_of_each_run(tmp_path):
    tests = {"cmner": make_test_set(120, seed=5), "twitter2015": make_test_set(100, seed=6)}
    root = tmp_path / "runs"
    for seed in (1, 2, 3):
        make_multilingual_run(root, "2mner", "tgt_only", seed, tests, {"cmner": 0.3, "twitter2015": 0.8})  # poor on the other language
        make_multilingual_run(root, "2mner", "joint", seed, tests, {"cmner": 0.3, "twitter2015": 0.05})   # good on both
        make_multilingual_run(root, "2mner", "src_tgt", seed, tests, {"cmner": 0.25, "twitter2015": 0.6})
    report = write_report([root], tmp_path / "out", bootstrap=300)
    table = {t.name: t for t in report.tables}["multilingual-en-zh"]
    rows = {r[1]: dict(zip(table.header, r)) for r in table.rows}
    assert set(rows) == {"−", "SRC&TGT", "JOINT"} and all(r["model"] == "2MNER" for r in rows.values())
    for setting, label in (("tgt_only", "−"), ("joint", "JOINT"), ("src_tgt", "SRC&TGT")):
        metrics = _metrics(root, f"2mner-en-zh-{setting}-seed*")
        for dataset, column in (("cmner", "CMNER F1"), ("twitter2015", "Twitter2015 F1")):
            values = [m["tests"][dataset]["conlleval"]["f1"] for m in metrics]
            assert rows[label][column] == _cell(statistics.fmean(values), statistics.stdev(values))
        macro = [m["test_macro_f1"] for m in metrics]
        assert rows[label]["macro F1"] == _cell(statistics.fmean(macro), statistics.stdev(macro))
    base = statistics.fmean(m["test_macro_f1"] for m in _metrics(root, "2mner-en-zh-tgt_only-seed*"))
    joint = statistics.fmean(m["test_macro_f1"] for m in _metrics(root, "2mner-en-zh-joint-seed*"))
    assert rows["JOINT"]["Δ macro vs −"] == f"{joint - base:+.2f}" and rows["−"]["Δ macro vs −"] == ""
    assert float(rows["JOINT"]["p Twitter2015"]) < 0.01, "a large gain on the other language's test set is significant"
    assert float(rows["JOINT"]["p CMNER"]) > 0.05, "the same error rate on CMNER is not"
    assert (tmp_path / "out" / "multilingual-en-zh.md").is_file() and "Multilingual comparison" in (tmp_path / "out" / "report.md").read_text()


def test_table_cells_from_run_folders_are_escaped_in_markdown_and_latex():
    """A model name read from metrics.json reaches no table as live HTML, a split cell or broken LaTeX."""
    from xlingual.evaluation.report import Table

    hostile = "<img src=x onerror=alert(1)>|a_b#c$d%e&f{g}~h^i\\j"
    table = Table("t", "T", ["model", "F1"], [[hostile, "80.00 ± 1.00"]])
    markdown = table.markdown()
    row = markdown.splitlines()[-1]
    assert "<img" not in markdown and "&lt;img src=x onerror=alert(1)&gt;" in row
    assert len(re.split(r"(?<!\\)\|", row)) == 4  # the border, two cells, the border
    latex = table.latex()
    assert r"\textless" not in latex and r"a\_b\#c\$d\%e\&f\{g\}\textasciitilde{}h\textasciicircum{}i\textbackslash{}j" in latex
    assert r"80.00 $\pm$ 1.00" in latex


def make_named_run(root: Path, model: str, sources: list[str], target: str, setting: str, seed: int, test: list[Sample],
                   error_rate: float) -> Path:
    """A run that named its datasets (``xl train --source ... --target ...``): no direction, ``source_datasets`` in its metrics."""
    run_dir = root / f"{model}-{'+'.join(sources)}-{target}-{setting}-seed{seed}"
    scores = predict_and_write(FixedPredictions(corrupt(test, error_rate, seed)), test, None, 32, RunFolder(run_dir), "test", get_dataset("cmner"))
    atomic_write_json(run_dir / "metrics.json", {
        "run": run_dir.name, "model_type": model, "direction": None, "setting": setting, "images": "all", "seed": seed,
        "target_dataset": target, "source_datasets": sources, "test": scores, "dev": scores, "tests": {target: scores},
    })
    return run_dir


def with_type_scores(run_dir: Path, scores: dict[str, float], keep_canonical: bool = True) -> None:
    """Give a run's test scores per-type F1s of other types, as a run on an open label set writes them."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for mode in metrics["test"].values():
        mode["per_type_f1"] = {**(mode["per_type_f1"] if keep_canonical else {}), **scores}
    atomic_write_json(run_dir / "metrics.json", metrics)


def test_one_table_per_dataset_pair_with_the_papers_column_only_for_the_papers_pairs(tmp_path):
    test = make_test_set(80, seed=9)
    root = tmp_path / "runs"
    for seed in (1, 2):
        make_named_run(root, "acn", ["twitter2017"], "cmner", "tgt_only", seed, test, 0.4)
        make_named_run(root, "acn", ["twitter2017"], "cmner", "src_tgt", seed, test, 0.1)
        make_named_run(root, "acn", ["twitter2015"], "cmner", "src", seed, test, 0.3)  # the paper's pair, named by its datasets
    report = write_report([root], tmp_path / "out", bootstrap=100)
    tables = {t.name: t for t in report.tables}
    mine = tables["pair-twitter2017-cmner"]
    assert "Twitter2017 → CMNER" in mine.title and not {"paper F1", "Δ paper"} & set(mine.header)
    rows = {r[1]: dict(zip(mine.header, r)) for r in mine.rows}
    assert set(rows) == {"−", "SRC&TGT"} and rows["SRC&TGT"]["seeds"] == "2" and rows["SRC&TGT"]["p (bootstrap)"]
    table3 = {r[1]: dict(zip(tables["table3"].header, r)) for r in tables["table3"].rows}
    assert set(table3) == {"SRC"} and table3["SRC"]["paper F1"] == "75.60"
    assert (tmp_path / "out" / "pair-twitter2017-cmner.md").is_file()


def test_per_type_columns_list_the_types_the_runs_found(tmp_path):
    test = make_test_set(80, seed=11)
    root = tmp_path / "runs"
    for seed, product in ((1, 40.0), (2, 50.0)):
        with_type_scores(make_run(root, "acn", "en-zh", "tgt_only", "all", seed, test, 0.3), {"PRODUCT": product, "EVENT": 10.0})
    table2 = {t.name: t for t in write_report([root], tmp_path / "out", bootstrap=0).tables}["table2"]
    assert table2.header[3:9] == ["PER", "LOC", "ORG", "MISC", "EVENT", "PRODUCT"]  # the canonical four first, then the others
    row = dict(zip(table2.header, table2.rows[0]))
    per = [m["test"]["conlleval"]["per_type_f1"]["PER"] for m in _metrics(root, "acn-en-zh-tgt_only-all-seed*")]
    assert row["PRODUCT"] == _cell(45.0, statistics.stdev([40.0, 50.0])) and row["PER"] == _cell(statistics.fmean(per), statistics.stdev(per))
    only_open = tmp_path / "open"
    with_type_scores(make_run(only_open, "acn", "en-zh", "tgt_only", "all", 1, test, 0.3), {"PRODUCT": 40.0}, keep_canonical=False)
    header = {t.name: t for t in write_report([only_open], tmp_path / "out2", bootstrap=0).tables}["table2"].header
    assert header[3] == "PRODUCT" and "PER" not in header  # an open label set's own types, no empty canonical columns

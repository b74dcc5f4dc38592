"""Reports: Tables 2-4 from run folders, numbers checked against the metrics files, bootstrap, chart."""

from __future__ import annotations

import csv
import html
import io
import json
import random
import re
import statistics
from pathlib import Path

import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.datasets import get_dataset
from xlingual.data.sample import Sample
from xlingual.io import atomic_write_json
from xlingual.evaluation.paper import SETTING_LABELS, SETTING_MEANINGS
from xlingual.evaluation.purpose import DEMO, DEMO_LABEL, DEMO_NOTE
from xlingual.evaluation.report import RunRecord, build_rows, find_runs, write_report
from xlingual.text_escape import markdown_cell
from xlingual.train.config import load_config, save_config
from xlingual.train.run import predict_and_write
from xlingual.workspace import RunFolder
from xlingual.evaluation.significance import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, paired_bootstrap

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


# -- rows are configurations ---------------------------------------------------

def configure(run_dir: Path, *overrides: str, **metrics: object) -> Path:
    """Give a fake run the config.yaml a run of its model, direction, setting and seed saves (with ``overrides``), and more metrics."""
    recorded = json.loads((run_dir / "metrics.json").read_text())
    config = load_config(recorded["setting"], recorded["model_type"], recorded["direction"],
                         [f"seed={recorded['seed']}", f"images={recorded['images']}", f"data.data_dir={run_dir.parent / 'data'}", *overrides])
    save_config(config, RunFolder(run_dir).config)
    atomic_write_json(run_dir / "metrics.json", {**recorded, **metrics})
    return run_dir


def _rows(table) -> list[dict[str, str]]:
    return [dict(zip(table.header, r)) for r in table.rows]


def _f1(run_dir: Path) -> float:
    return json.loads((run_dir / "metrics.json").read_text())["test"]["conlleval"]["f1"]


def test_two_runs_of_one_seed_with_different_budgets_are_two_rows_never_averaged(tmp_path):
    test = make_test_set(120, seed=21)
    root = tmp_path / "runs"
    data = f"data.data_dir={tmp_path / 'data'}"  # one data directory: its test split has 120 posts
    big = configure(make_run(root / "a", "acn", "en-zh", "tgt_only", "all", 444, test, 0.1),
                    "target.epochs=2", "data.max_samples=200", data, test_samples=120)
    small = configure(make_run(root / "b", "acn", "en-zh", "tgt_only", "all", 444, test[:50], 0.7),
                      "target.epochs=1", "data.max_samples=50", data, test_samples=50)
    assert abs(_f1(big) - _f1(small)) > 10
    report = write_report([root], tmp_path / "out", bootstrap=0)
    tables = {t.name: t for t in report.tables}
    for name, column in (("table2", "input"), ("table3", "train")):
        rows = {r[column]: r for r in _rows(tables[name])}
        assert len(rows) == 2 and all(r["seeds"] == "1" for r in rows.values())
        big_row = next(r for label, r in rows.items() if "[target.epochs=2, data.max_samples=200]" in label)
        small_row = next(r for label, r in rows.items() if "[target.epochs=1, data.max_samples=50]" in label)
        assert big_row["F1"] == f"{_f1(big):.2f} (1 seed)" and small_row["F1"] == f"{_f1(small):.2f} (1 seed)"
        assert "(subset: data.max_samples=50, 50 of 120 test posts)" in next(label for label in rows if "max_samples=50]" in label)
        assert all(r["paper F1"] == "" and r["Δ paper"] == "" for r in rows.values()), "a subset is never set beside the paper"
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert f"{statistics.fmean([_f1(big), _f1(small)]):.2f}" not in markdown  # no cell averages the two configurations


def test_seeds_of_one_configuration_are_one_row_wherever_their_inputs_and_outputs_lie(tmp_path):
    test = make_test_set(80, seed=22)
    root = tmp_path / "runs"
    runs = [configure(make_run(root / "a", "acn", "en-zh", "tgt_only", "none", 1, test, 0.3), test_samples=80),
            configure(make_run(root / "b", "acn", "en-zh", "tgt_only", "none", 2, test, 0.35), "name=mine", "tensorboard=true",
                      "data.build_missing=true", test_samples=80)]  # another data_dir, name and switches that change no number
    rows = build_rows(find_runs([root]), bootstrap=0)
    assert list(rows) == [("acn", (("twitter2015",), "cmner"), "tgt_only", "none", "")]
    table2 = _rows({t.name: t for t in write_report([root], tmp_path / "out", bootstrap=0).tables}["table2"])
    assert len(table2) == 1 and table2[0]["seeds"] == "2" and table2[0]["input"] == "text" and table2[0]["paper F1"] == "72.93"
    assert table2[0]["F1"] == _cell(statistics.fmean(map(_f1, runs)), statistics.stdev(map(_f1, runs)))


def test_a_run_scored_on_fewer_test_posts_than_its_data_has_is_a_subset_without_the_papers_numbers(tmp_path):
    test = make_test_set(120, seed=23)
    root = tmp_path / "runs"
    for seed in (1, 2):
        configure(make_run(root / "full", "acn", "en-zh", "tgt_only", "all", seed, test, 0.4), test_samples=120)
        configure(make_run(root / "full", "acn", "en-zh", "src_tgt", "all", seed, test[:50], 0.1), test_samples=50)  # a shortened test set
    rows = build_rows(find_runs([root]), bootstrap=200)
    pair = (("twitter2015",), "cmner")
    short, full = rows[("acn", pair, "src_tgt", "all", "")], rows[("acn", pair, "tgt_only", "all", "")]
    assert short.subset == "50 of 120 test posts" and short.paper is None and short.p_value is None  # not tested on other posts
    assert full.subset == "" and full.paper is not None
    table3 = {r["train"]: r for r in _rows({t.name: t for t in write_report([root], tmp_path / "out", bootstrap=0).tables}["table3"])}
    assert table3["SRC&TGT (subset: 50 of 120 test posts)"]["paper F1"] == "" and table3["−"]["paper F1"] == "74.52"
    assert "subset: trained or scored on part of the data" in (tmp_path / "out" / "table3.md").read_text()


RUN_SPACE = st.lists(st.tuples(st.sampled_from(["tgt_only", "src_tgt"]), st.sampled_from([1, 2]), st.sampled_from([None, 50]),
                               st.sampled_from([0.001, 0.01]), st.integers(0, 4), st.sampled_from(["d1", "d2"]),
                               st.floats(0, 100, allow_nan=False)), min_size=1, max_size=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RUN_SPACE)
def test_rows_never_mix_configurations(runs):
    """Whatever runs a report is given, each row holds the seeds of exactly one configuration, each seed counted once (a
    repeat listed, not counted), every run is in one row, its numbers are its counted runs' mean (no deviation from one
    run), and its label names what sets it apart."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        made: dict[Path, tuple] = {}
        records = []
        for i, (setting, epochs, max_samples, lr, seed, data_dir, f1) in enumerate(runs):
            run_dir = root / f"run{i}"
            run_dir.mkdir()
            (run_dir / "config.yaml").write_text(yaml.safe_dump({
                "model_type": "acn", "direction": "en-zh", "setting": setting, "seed": seed, "name": f"run{i}",
                "target": {"epochs": epochs, "lr": lr}, "data": {"max_samples": max_samples, "data_dir": data_dir}}))
            scores = {"precision": f1, "recall": f1, "f1": f1, "per_type_f1": {"PER": f1}}
            records.append(RunRecord(run_dir, {"model_type": "acn", "direction": "en-zh", "setting": setting, "images": "all",
                                               "seed": seed, "test": {"conlleval": scores, "strict": scores}}))
            made[run_dir.resolve()] = (setting, epochs, max_samples, lr)
        rows = build_rows(records, bootstrap=0)
        placed = [r.run_dir.resolve() for row in rows.values() for r in [*row.runs, *(repeat for repeat, _ in row.repeats)]]
        assert sorted(placed) == sorted(made)  # every run in exactly one row: counted, or left out as a repeat of a counted seed
        for key, row in rows.items():
            seeds = [r.metrics["seed"] for r in row.runs]
            assert len(set(seeds)) == len(seeds) == row.seeds  # a seed is counted once
            assert all(repeat.metrics["seed"] == counted.metrics["seed"] and counted in row.runs for repeat, counted in row.repeats)
            configs = {made[r.run_dir.resolve()] for r in [*row.runs, *(repeat for repeat, _ in row.repeats)]}
            assert len(configs) == 1, f"{key} mixes {configs}"
            setting, epochs, max_samples, lr = configs.pop()
            in_row = {r.run_dir.resolve() for r in [*row.runs, *(repeat for repeat, _ in row.repeats)]}
            assert all(made[p] != (setting, epochs, max_samples, lr) for p in made if p not in in_row)
            f1s = [r.test()["f1"] for r in row.runs]
            assert row.values["f1"][0] == pytest.approx(statistics.fmean(f1s))
            assert (row.values["f1"][1] is None) == (len(f1s) == 1)
            assert bool(row.subset) == (max_samples is not None) and (row.paper is None or not row.subset)
            group = [k for k in rows if k[:4] == key[:4]]
            assert (key[4] == "") == (len(group) == 1)
            others = [made[rows[k].runs[0].run_dir.resolve()] for k in group if k != key]
            if any(o[1] != epochs for o in others):
                assert f"target.epochs={epochs}" in key[4]
            if any(o[2] != max_samples for o in others):
                assert f"data.max_samples={'null' if max_samples is None else max_samples}" in key[4]


# -- demo runs, p, seeds and legends ------------------------------------------------

def test_a_report_over_demo_runs_keeps_the_demo_marking(runs_root, tmp_path, monkeypatch):
    import xlingual.evaluation.report as report_module

    root = tmp_path / "runs"
    test = make_test_set(60, seed=24)
    for setting in ("tgt_only", "src_tgt"):
        run = make_run(root, "acn", "en-zh", setting, "all", 444, test, 0.2)
        atomic_write_json(run / "metrics.json", {**json.loads((run / "metrics.json").read_text()), "purpose": "demo"})
    make_run(root, "umt", "en-zh", "tgt_only", "all", 1, test, 0.2)  # a research run beside them: the report is still a demo's
    charts = []
    real_chart = report_module.bar_chart
    monkeypatch.setattr(report_module, "bar_chart", lambda rows, path, note, label, paper: charts.append(paper) or real_chart(rows, path, note, label, paper))
    report = write_report([root], tmp_path / "out")  # no note, no paper=False: the runs say they are a demo's
    assert report.note == DEMO_NOTE and charts == [False]
    text = (tmp_path / "out" / "report.md").read_text()
    assert DEMO_NOTE in text and "paper F1" not in text and "74.52" not in text
    assert all(t.title.endswith(DEMO_LABEL) and not {"paper F1", "Δ paper"} & set(t.header) for t in report.tables)
    result = CliRunner().invoke(app, ["report", str(root), "--output", str(tmp_path / "cli")])
    assert result.exit_code == 0 and DEMO_NOTE in result.output and "paper F1" not in result.output
    assert DEMO_NOTE in (tmp_path / "cli" / "report.md").read_text()
    research = write_report([runs_root], tmp_path / "research", bootstrap=0)
    assert research.note is None and "paper F1" in {t.name: t for t in research.tables}["table3"].header


def test_a_trained_demo_run_records_its_purpose_and_a_research_run_none(sample_data_dir, tmp_path, one_torch_thread):
    from xlingual.train.run import train_run

    overrides = [f"data.data_dir={sample_data_dir}", "images=none", "model.word_vectors=null", "model.word_dim=8", "model.char_dim=4",
                 "model.char_filters=2", "model.char_kernels=[2]", "model.char_out=4", "model.hidden=8", "epochs=1", "batch_size=8"]
    config = load_config("tgt_only", "acn", "en-zh", overrides)
    demo = train_run(config, tmp_path / "demo" / "run", purpose=DEMO)
    research = train_run(config, tmp_path / "research" / "run")
    assert demo.metrics["purpose"] == DEMO and "purpose" not in research.metrics
    assert write_report([tmp_path / "demo"], tmp_path / "out-demo", bootstrap=0).note == DEMO_NOTE
    assert write_report([tmp_path / "research"], tmp_path / "out-research", bootstrap=0).note is None


def _p_values(report) -> dict[tuple[str, str], str]:
    return {(t.name, r[1]): r[t.header.index("p (bootstrap)")] for t in report.tables if "p (bootstrap)" in t.header for r in t.rows}


def test_the_same_runs_give_the_same_p_in_every_report(runs_root, tmp_path, monkeypatch):
    first = _p_values(write_report([runs_root], tmp_path / "one"))
    second = _p_values(write_report([runs_root], tmp_path / "two"))
    assert first == second and first[("table3", "SRC")] and first[("table3", "SRC&TGT")]
    result = CliRunner().invoke(app, ["report", str(runs_root), "--output", str(tmp_path / "cli")])
    assert result.exit_code == 0
    assert list(csv.reader(io.StringIO((tmp_path / "cli" / "table3.csv").read_text())))[1:] == {t.name: t for t in write_report(
        [runs_root], tmp_path / "three").tables}["table3"].rows  # xl report's default resamples are the library's
    import xlingual.demo as demo
    import xlingual.evaluation.report as report_module

    calls = []
    monkeypatch.setattr(report_module, "write_report", lambda *args, **kwargs: calls.append((args, kwargs)) or report_module.Report([], [], 0))
    demo.stage_report(runs_root, tmp_path / "demo")
    assert len(calls) == 1 and len(calls[0][0]) == 2 and "bootstrap" not in calls[0][1]  # the demo's p is drawn as xl report draws it
    assert paired_bootstrap.__defaults__[:2] == (BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)


def test_one_seed_cells_say_so_and_every_table_has_a_legend(runs_root, tmp_path):
    report = write_report([runs_root], tmp_path / "out", bootstrap=300)
    table4 = {r["train"]: r for r in _rows({t.name: t for t in report.tables}["table4"])}
    umt = _metrics(runs_root, "umt-zh-en-tgt-all-seed1")[0]["test"]
    assert table4["TGT"]["F1"] == f"{umt['conlleval']['f1']:.2f} (1 seed)" and table4["TGT"]["strict F1"] == f"{umt['strict']['f1']:.2f} (1 seed)"
    one_seed = [r for t in report.tables for r in t.rows if r[2] == "1"]
    assert one_seed and not any("±" in cell for r in one_seed for cell in r)  # never "± 0.00": one run's spread is unknown
    for table in (t for t in report.tables if t.rows):
        markdown, latex = table.markdown(), table.latex()
        legend = markdown.rstrip("\n").splitlines()[-1]
        assert markdown.splitlines()[-2] == "" and legend.startswith("Legend: ") and "Legend: " in latex
        for label in {r[1] for r in table.rows} if table.name != "table2" else []:
            setting = next(s for s, shown in SETTING_LABELS.items() if label.split(" (")[0] == shown)
            assert f"{markdown_cell(label.split(' (')[0])}: {SETTING_MEANINGS[setting]}" in legend
        assert ("1 seed: a single run" in legend) == any(r[2] == "1" for r in table.rows)
        if any(cell and cell[0].isdigit() for r in table.rows for h, cell in zip(table.header, r) if h.startswith("p ")):
            assert "(300 resamples, seed 0)" in legend
    assert "Legend: −: trained on the target dataset only" in (tmp_path / "out" / "table3.md").read_text()


# -- each run's files read and checked once per report ------------------------------------------

def listed_runs(root: Path, seeds: tuple[int, ...] = (1, 2)) -> list[Path]:
    """Multilingual runs with their config.yaml and a metrics.json listing their files with digests, as training writes them."""
    from xlingual.output_set import MANIFEST_KEY, describe_files

    tests = {"cmner": make_test_set(60, seed=7), "twitter2015": make_test_set(50, seed=8)}
    runs = []
    for seed in seeds:
        for setting, rates in (("tgt_only", (0.4, 0.7)), ("joint", (0.3, 0.1)), ("src_tgt", (0.35, 0.5))):
            run_dir = configure(make_multilingual_run(root, "2mner", setting, seed, tests, dict(zip(tests, rates))))
            metrics = json.loads((run_dir / "metrics.json").read_text())
            files = [p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file() and p.name != "metrics.json"]
            atomic_write_json(run_dir / "metrics.json", {**metrics, MANIFEST_KEY: describe_files(run_dir, files)})
            runs.append(run_dir)
    return runs


def test_a_report_reads_and_hashes_each_file_of_a_run_once(tmp_path, monkeypatch):
    """Every comparison of a run (its row's significance, each test set's p) shares one checked read of its predictions."""
    from collections import Counter

    import xlingual.evaluation.evaluate as evaluate_module
    import xlingual.output_set as output_set

    runs = listed_runs(tmp_path / "runs")
    digests, parsed, reads = Counter(), Counter(), Counter()
    file_digest, read_samples, read_text = output_set.file_digest, evaluate_module.read_samples, Path.read_text
    monkeypatch.setattr(output_set, "file_digest", lambda path, *a, **k: digests.update([Path(path)]) or file_digest(path, *a, **k))
    monkeypatch.setattr(evaluate_module, "read_samples", lambda path, *a, **k: parsed.update([Path(path)]) or read_samples(path, *a, **k))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: reads.update([self]) or read_text(self, *a, **k))
    report = write_report([tmp_path / "runs"], tmp_path / "out", bootstrap=50)
    table = {t.name: t for t in report.tables}["multilingual-en-zh"]
    assert all(cell for row in table.rows if row[1] != "−" for cell in row[-2:])  # both test sets compared, for both settings
    predictions = {run / "predictions" / name for run in runs for name in ("test.jsonl", "test.twitter2015.jsonl")}
    assert set(digests) == set(parsed) == predictions, "every run's predictions of both test sets are checked and read"
    assert max(digests.values()) == max(parsed.values()) == 1, "each file hashed and parsed once, however often it is compared"
    for name in ("metrics.json", "config.yaml"):
        assert sorted(p for p in reads if p.name == name) == sorted(run / name for run in runs) and max(reads[run / name] for run in runs) == 1


def test_a_report_still_refuses_predictions_changed_in_place_or_cut(tmp_path):
    run = listed_runs(tmp_path / "runs", seeds=(1,))[1]  # joint: compared with tgt_only on both test sets
    predictions = run / "predictions" / "test.twitter2015.jsonl"
    text = predictions.read_text()
    changed = text.replace('"B-PER"', '"B-LOC"', 1) if '"B-PER"' in text else text.replace('"B-LOC"', '"B-PER"', 1)
    predictions.write_text(changed)  # the same size: only its digest tells
    result = CliRunner().invoke(app, ["report", str(tmp_path / "runs"), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2 and f"{predictions}: its SHA-256 differs from the one metrics.json records" in result.output
    predictions.write_text(text)
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["output_files"]  # a run from before runs listed their files: test_samples tells a cut file
    atomic_write_json(run / "metrics.json", {**metrics, "test_samples": 60})
    test = run / "predictions" / "test.jsonl"
    test.write_text("".join(test.read_text().splitlines(keepends=True)[:-1]))
    result = CliRunner().invoke(app, ["report", str(tmp_path / "runs"), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2 and f"{test}: 59 posts, but metrics.json records test_samples=60" in result.output


def test_a_seed_trained_twice_counts_once_and_the_repeat_is_listed(tmp_path, caplog):
    test = make_test_set()
    first, again = tmp_path / "a", tmp_path / "b"
    for seed, rate in ((1, 0.1), (2, 0.2)):
        make_run(first, "acn", "en-zh", "tgt_only", "all", seed, test, rate)
    repeat = make_run(again, "acn", "en-zh", "tgt_only", "all", 1, test, 0.4)  # the same configuration and seed, other numbers
    with caplog.at_level("WARNING", logger="xlingual.evaluation.report"):
        report = write_report([first, again], tmp_path / "out", bootstrap=0, html=True)
    counted = [json.loads((first / name / "metrics.json").read_text())["test"]["conlleval"]["f1"]
               for name in ("acn-en-zh-tgt_only-all-seed1", "acn-en-zh-tgt_only-all-seed2")]
    table3 = {t.name: t for t in report.tables}["table3"]
    row = dict(zip(table3.header, next(r for r in table3.rows if r[0] == "ACN")))
    assert row["seeds"] == "2" and row["F1"] == _cell(statistics.fmean(counted), statistics.stdev(counted))
    assert report.repeated_runs == [f"{repeat}: seed 1 of acn-twitter2015-cmner-tgt_only-all again; {first / 'acn-en-zh-tgt_only-all-seed1'} is counted"]
    markdown = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "### Runs not counted (a seed already counted)" in markdown and markdown_cell(report.repeated_runs[0]) in markdown
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Runs not counted (a seed already counted)" in page and html.escape(report.repeated_runs[0]) in page
    assert f"{repeat} is seed 1 again" in caplog.text


def test_a_report_into_a_folder_another_report_is_writing_is_refused(runs_root, tmp_path):
    """Two reports into one folder would leave tables of two sets of runs side by side: the second is refused, nothing written."""
    from test_lock import held_by_another_process, refusal

    from xlingual.errors import FolderInUseError

    out = tmp_path / "out"
    with held_by_another_process(out) as pid:
        with pytest.raises(FolderInUseError, match=refusal(out, pid).pattern):
            write_report([runs_root], out, bootstrap=0)
        result = CliRunner().invoke(app, ["report", str(runs_root), "--output", str(out)])
        assert result.exit_code == 2 and refusal(out, pid).search(result.output.strip().splitlines()[-1]), result.output
        assert [p.name for p in out.iterdir() if not p.name.startswith(".xl")] == []
    assert write_report([runs_root], out, bootstrap=0).runs == 14


def test_a_rows_baseline_is_chosen_once_and_read_by_every_table(tmp_path, monkeypatch):
    """build_rows picks each row's tgt_only baseline (and warns about an ambiguous one) once; the tables read it from the row."""
    from xlingual.evaluation import report as report_module
    from xlingual.train.config.schema import direction_datasets

    tests = {"cmner": make_test_set(60, seed=5), "twitter2015": make_test_set(50, seed=6)}
    for seed in (1, 2):
        make_multilingual_run(tmp_path, "2mner", "tgt_only", seed, tests, {"cmner": 0.3, "twitter2015": 0.8})
        make_multilingual_run(tmp_path, "2mner", "joint", seed, tests, {"cmner": 0.3, "twitter2015": 0.05})
    rows = build_rows(find_runs([tmp_path]), bootstrap=0)
    baselines = {key: row.baseline for key, row in rows.items()}
    assert len(baselines) == 2 and all(b is not None and b.key[2] == "tgt_only" and b.key[:2] == key[:2] for key, b in baselines.items())

    def chosen_again(*_):
        raise AssertionError("a table chose a baseline again")

    monkeypatch.setattr(report_module, "_baseline", chosen_again)
    table = report_module.multilingual_table(rows, direction_datasets("en-zh"), bootstrap=0)
    assert len(table.rows) == 2 and any(line[-3] for line in table.rows)  # the joint row's Δ against its baseline

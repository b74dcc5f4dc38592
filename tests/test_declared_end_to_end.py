"""A dataset a user declares, with its own file names and its own label set, goes through every command.

``datasets.yaml`` declares ``shop``: CoNLL files under names of its own and an
open label set with types the built-ins lack (``PRODUCT``, ``brand``). Through
the CLI, as a user runs it: ``xl data validate``, ``xl translate --dataset``
(a word-by-word plug-in stands in for MT), ``xl train`` with it as the source
of a cross-lingual run into CMNER and as the target of a run of its own, and
``xl report``. What each step must keep is the point: the types survive
translation into CMNER's format, the models learn them, the scores and the
report's tables list them.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.datasets import load_split
from xlingual.data.labels import entity_type, spans
from xlingual.data.sample import Sample
from xlingual.models import load_model
from xlingual.testing.synthetic import generated_tweets
from xlingual.workspace import DataDir, RunFolder

runner = CliRunner()

DECLARATION = yaml.safe_dump({"datasets": {"shop": {
    "language": "en", "format": "conll", "labels": "open",
    "splits": {"train": "shop/learn.tsv", "dev": "shop/tune.tsv", "test": "shop/exam.tsv"},  # file names of its own
}}})

OWN_TYPES = {"MISC": "PRODUCT", "ORG": "brand"}
"""Generated posts' types renamed into the dataset's own (PER and LOC stay: an open set may share canonical names)."""

TINY_ACN = ["images=none", "model.word_vectors=null", "model.word_dim=8", "model.char_dim=4", "model.char_filters=2",
            "model.char_kernels=[2]", "model.char_out=4", "model.hidden=8", "epochs=1", "batch_size=4"]

PLUGIN = textwrap.dedent('''
    from projection_fakes import FakeTranslator

    def make_zh():
        return FakeTranslator("zh")
''')


def renamed(posts: list[Sample]) -> list[Sample]:
    def label(tag: str) -> str:
        etype = entity_type(tag)
        return tag if etype is None else f"{tag[:2]}{OWN_TYPES.get(etype, etype)}"
    return [Sample(p.id, p.tokens, [label(t) for t in p.labels], lang="en") for p in posts]


def conll(posts: list[Sample]) -> str:
    return "\n\n".join("\n".join(f"{tok}\t{lab}" for tok, lab in zip(p.tokens, p.labels)) for p in posts) + "\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, sample_data_dir) -> Path:
    root = tmp_path_factory.mktemp("declared")
    data = root / "data"
    shutil.copytree(sample_data_dir, data)
    (data / "shop").mkdir()
    for offset, (name, n) in enumerate((("learn", 40), ("tune", 12), ("exam", 12))):
        posts = renamed(generated_tweets(n, seed=50 + offset, id_start=900000 + 1000 * offset))
        (data / "shop" / f"{name}.tsv").write_text(conll(posts), encoding="utf-8")
    (data / "datasets.yaml").write_text(DECLARATION, encoding="utf-8")
    plugin = root / "plugin"
    plugin.mkdir()
    (plugin / "shopmt.py").write_text(PLUGIN, encoding="utf-8")
    return root


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def own_types(samples: list[Sample]) -> set[str]:
    return {span.type for sample in samples for span in spans(sample.labels)} & set(OWN_TYPES.values())


def test_a_declared_dataset_validates_translates_trains_and_is_reported(workspace, monkeypatch) -> None:
    data = workspace / "data"
    monkeypatch.syspath_prepend(str(workspace / "plugin"))
    monkeypatch.delitem(sys.modules, "shopmt", raising=False)
    monkeypatch.chdir(workspace)

    # validate: every split read with its declared rule
    validated = invoke("data", "validate", "shop", "--data-dir", str(data))
    assert validated.exit_code == 0, validated.output
    source = {split: load_split(data, "shop", split) for split in ("train", "dev", "test")}
    assert own_types(source["train"]) == own_types(source["test"]) == {"PRODUCT", "brand"}

    # translate: all three splits into Chinese, the open types kept in CMNER's text format
    translated = invoke("translate", "--dataset", "shop", "--tgt", "zh", "--translator", "shopmt:make_zh", "--data-dir", str(data), "--json")
    assert translated.exit_code == 0, translated.output
    folder = DataDir(data).translation("shop", "en", "zh", "shopmt:make_zh")
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert set(report["files"]) == {"learn", "tune", "exam"} and report["output_format"] == "cmner"
    assert {"PRODUCT", "brand"} <= set(report["entities"])
    chinese = [s for s in _read_translation(data, folder)]
    assert chinese and own_types(chinese) == {"PRODUCT", "brand"} and all(s.lang == "zh" for s in chinese)
    assert (folder / "preview.html").is_file()

    # train: the declared dataset as a cross-lingual source into CMNER (pre-training on it and its translation) ...
    common = ["--data-dir", str(data), *[arg for item in TINY_ACN for arg in ("--set", item)]]
    cross = invoke("train", "--config", "src_tgt", "--model", "acn", "--source", "shop", "--target", "cmner",
                   "--set", "data.translation_model=shopmt:make_zh", *common)
    assert cross.exit_code == 0, cross.output
    cross_run = RunFolder(workspace / "runs" / "acn-shop-cmner-src_tgt-img_none-seed444")
    saved = yaml.safe_load(cross_run.config.read_text(encoding="utf-8"))
    assert saved["datasets"] == {"source": ["shop"], "target": "cmner"}
    labels = list(load_model(cross_run.model).label_names)
    assert {"B-PRODUCT", "I-PRODUCT", "B-brand", "I-brand"} <= set(labels), labels
    metrics = json.loads(cross_run.metrics.read_text(encoding="utf-8"))
    assert set(metrics["tests"]) == {"cmner", "shop"}

    # ... and as the target of a run of its own, scored per type on its own types
    own = invoke("train", "--config", "tgt_only", "--model", "acn", "--target", "shop", *common)
    assert own.exit_code == 0, own.output
    own_run = RunFolder(workspace / "runs" / "acn-shop-tgt_only-img_none-seed444")
    scores = json.loads(own_run.metrics.read_text(encoding="utf-8"))["test"]["conlleval"]
    assert {"PRODUCT", "brand"} <= set(scores["per_type_f1"])
    written = (own_run.prediction("test", ".txt")).read_text(encoding="utf-8")
    assert "IMGID" not in written and len(written.split("\n\n")) == len(source["test"])  # the dataset's own format, CoNLL

    # evaluate and predict read the dataset's files by its declaration: the run's own scores come back from either path
    rescored = invoke("evaluate", "--run", str(own_run.root), "--json")
    assert rescored.exit_code == 0, rescored.output
    assert json.loads(rescored.stdout)["test"] == json.loads(own_run.metrics.read_text(encoding="utf-8"))["test"]
    predicted_file = workspace / "exam.predicted.tsv"
    predicted = invoke("predict", "--model", str(own_run.model), "--input", str(data / "shop" / "exam.tsv"), "--output", str(predicted_file))
    assert predicted.exit_code == 0, predicted.output
    assert predicted_file.read_text(encoding="utf-8") == written  # CoNLL, the open types spelled as the dataset spells them
    against_gold = invoke("evaluate", "--gold", str(data / "shop" / "exam.tsv"), "--pred", str(predicted_file), "--json")
    assert against_gold.exit_code == 0, against_gold.output
    assert json.loads(against_gold.stdout) == json.loads(own_run.metrics.read_text(encoding="utf-8"))["test"]

    # report: one table per pair, per-type columns naming the dataset's types, no paper column
    reported = invoke("report", str(workspace / "runs"), "--output", str(workspace / "report"), "--bootstrap", "0")
    assert reported.exit_code == 0, reported.output
    for pair in ("shop-cmner", "shop"):
        table = (workspace / "report" / f"pair-{pair}.md").read_text(encoding="utf-8")
        assert table in (workspace / "report" / "report.md").read_text(encoding="utf-8")
        header = next(line for line in table.splitlines() if line.startswith("|"))
        assert "paper" not in header and len([line for line in table.splitlines() if line.startswith("| ACN")]) == 1, table
        cells = [c.strip() for c in header.split("|")[1:-1]]
        # per-type columns: the canonical four (the data has PER and LOC), then the other types of gold and predictions
        assert cells[3:7] == ["PER", "LOC", "ORG", "MISC"], header
        if pair == "shop":
            assert cells[7:9] == ["PRODUCT", "brand"], header


def _read_translation(data: Path, folder: Path) -> list[Sample]:
    from xlingual.stage_inputs import read_translated_split

    return [s for split in ("train", "dev", "test") for s in read_translated_split(folder, data, "shop", "zh", split)]


def test_split_files_sharing_a_name_are_translated_and_trained_under_their_split_names(tmp_path, sample_data_dir, monkeypatch) -> None:
    """``train/data.conll``, ``dev/data.conll``, ``test/data.conll``: a common layout, whose translation names each split by itself."""
    from xlingual.data.datasets import get_dataset
    from xlingual.stage_inputs import read_translated_split

    data = tmp_path / "data"
    shutil.copytree(sample_data_dir, data)
    for offset, (split, n) in enumerate((("train", 24), ("dev", 8), ("test", 8))):
        (data / "parts" / split).mkdir(parents=True)
        posts = generated_tweets(n, seed=70 + offset, id_start=700000 + 1000 * offset)
        (data / "parts" / split / "data.conll").write_text(conll(posts), encoding="utf-8")
    (data / "datasets.yaml").write_text(yaml.safe_dump({"datasets": {"parts": {
        "language": "en", "format": "conll", "splits": {split: f"parts/{split}/data.conll" for split in ("train", "dev", "test")}}}}), encoding="utf-8")
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "partsmt.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(plugin))
    monkeypatch.delitem(sys.modules, "partsmt", raising=False)
    monkeypatch.chdir(tmp_path)

    spec = get_dataset("parts", data)
    assert [spec.split_name(split) for split in ("train", "dev", "test")] == ["train", "dev", "test"]
    assert get_dataset("cmner", data).split_name("dev") == "dev" and get_dataset("twitter2015", data).split_name("dev") == "valid"
    translated = invoke("translate", "--dataset", "parts", "--tgt", "zh", "--translator", "partsmt:make_zh", "--data-dir", str(data), "--json")
    assert translated.exit_code == 0, translated.output
    folder = DataDir(data).translation("parts", "en", "zh", "partsmt:make_zh")
    assert set(json.loads((folder / "report.json").read_text(encoding="utf-8"))["files"]) == {"train", "dev", "test"}
    sizes = {split: len(read_translated_split(folder, data, "parts", "zh", split)) for split in ("train", "dev", "test")}
    assert sizes["dev"] <= 8 and sizes["test"] <= 8 < sizes["train"] <= 24  # each split its own file, not one file three times
    trained = invoke("train", "--config", "src_tgt", "--model", "acn", "--source", "parts", "--target", "cmner", "--data-dir", str(data),
                     "--set", "data.translation_model=partsmt:make_zh", *[arg for item in TINY_ACN for arg in ("--set", item)])
    assert trained.exit_code == 0, trained.output
    assert set(json.loads(RunFolder(tmp_path / "runs" / "acn-parts-cmner-src_tgt-img_none-seed444").metrics.read_text(encoding="utf-8"))["tests"]) == {"cmner", "parts"}

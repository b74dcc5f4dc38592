"""Open label sets end to end: ACN, UMT and 2M-NER train through ``train_run`` on data with types of its own,
save and reload their labels, and predict only labels they have; canonical data keeps the canonical nine.

The data is the packaged sample with MISC renamed PRODUCT and ORG renamed creative-work in every split the
run reads (the dataset readers keep to the canonical schema, so the renaming happens on the run's inputs),
text only, on tiny models.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

import xlingual.train.run as run_module
from xlingual.data.datasets import load_split
from xlingual.data.labels import CANONICAL_LABELS, label_inventory, ordered_types
from xlingual.data.sample import Sample
from xlingual.errors import DataFormatError
from xlingual.models import load_model
from xlingual.models.acn import ACN_LABELS
from xlingual.models.mner2 import LABELS as MNER2_LABELS
from xlingual.models.serialization import CONFIG_NAME
from xlingual.models.umt_text import SPAN_LABELS, TYPED_LABELS
from xlingual.testing.synthetic import retyped
from xlingual.testing.tiny_bert import build_tiny_bert
from xlingual.train.config import load_config
from xlingual.train.inputs import RunInputs, StageData
from xlingual.train.run import train_run
from xlingual.workspace import RunFolder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAMES = {"MISC": "PRODUCT", "ORG": "creative-work"}
OPEN_LABELS = [*CANONICAL_LABELS, "B-PRODUCT", "I-PRODUCT", "B-creative-work", "I-creative-work"]
"""What the renamed sample data must give: the canonical nine (MISC and ORG stay, unused), then the two types sorted."""

TINY = {
    "acn": ["model.word_vectors=null", "model.word_dim=8", "model.char_dim=4", "model.char_filters=2", "model.char_kernels=[2]",
            "model.char_out=4", "model.hidden=8"],
    "umt": ["model.cross_heads=2", "model.max_length=64", "model.freeze_bottom_layers=0"],
    "2mner": ["model.max_length=64"],
}
HEAD = {"acn": "output", "umt": "typed_head", "2mner": "classifier"}
"""The layer whose rows are the model's emission scores per label."""


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sample_data_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("open")
    data = root / "data"
    shutil.copytree(sample_data_dir, data)
    tokens = [t for name in ("twitter2015", "cmner") for split in ("train", "dev", "test") for s in load_split(data, name, split) for t in s.tokens]
    return data, build_tiny_bert(root / "bert", tokens)


def _open_inputs(real):
    """``resolve_inputs`` with every sample the run reads renamed into the open label set."""
    def resolve(config, run_dir) -> RunInputs:
        inputs = real(config, run_dir)
        inputs.stages = [StageData(s.name, retyped(s.train, NAMES), retyped(s.dev, NAMES), s.description) for s in inputs.stages]
        inputs.test = retyped(inputs.test, NAMES)
        inputs.other_tests = {name: retyped(samples, NAMES) for name, samples in inputs.other_tests.items()}
        return inputs
    return resolve


def _train(model_type: str, data: Path, encoder: Path, out: Path, monkeypatch=None) -> dict[str, Any]:
    if monkeypatch is not None:
        monkeypatch.setattr(run_module, "resolve_inputs", _open_inputs(run_module.resolve_inputs))
    overrides = [f"data.data_dir={data}", f"model.encoder={encoder}", "images=none", "epochs=1", "batch_size=8", *TINY[model_type]]
    if model_type == "acn":
        overrides.remove(f"model.encoder={encoder}")
    return train_run(load_config("tgt_only", model_type, "en-zh", overrides), out).metrics


@pytest.mark.parametrize("model_type", ["acn", "umt", "2mner"])
def test_a_model_trained_on_other_types_saves_reloads_and_predicts_only_its_labels(model_type, setup, tmp_path, monkeypatch):
    data, encoder = setup
    metrics = _train(model_type, data, encoder, tmp_path / "run", monkeypatch)
    test = retyped(load_split(data, "cmner", "test"), NAMES)
    assert label_inventory(test) != list(CANONICAL_LABELS), "the renamed test split has the extra types"

    model = load_model(RunFolder(tmp_path / "run").model)
    assert list(model.label_names) == OPEN_LABELS
    saved = json.loads((RunFolder(tmp_path / "run").model / CONFIG_NAME).read_text(encoding="utf-8"))["extras"]
    assert {k: saved[k] for k in model.label_maps()} == model.label_maps()
    assert getattr(model, HEAD[model_type]).out_features == len(next(iter(model.label_maps().values()))) - (model_type == "acn")

    # The scores count the open types like any other and list exactly the types of gold and predictions.
    conlleval = metrics["test"]["conlleval"]
    written = [Sample.from_dict(json.loads(line)) for line in RunFolder(tmp_path / "run").prediction("test", ".jsonl").read_text(encoding="utf-8").splitlines()]
    assert [s.meta["gold"] for s in written] == [s.labels for s in test]
    assert all(label in model.label_names for s in written for label in s.labels)
    gold_types = {span.type for s in test for span in s.entities()}
    assert {"PRODUCT", "creative-work"} <= gold_types and conlleval["gold"] == sum(len(s.entities()) for s in test)
    assert list(conlleval["per_type_f1"]) == ordered_types(gold_types | {span.type for s in written for span in s.entities()})

    predicted = model.predict(test)
    assert all(label in model.label_names for labels in predicted for label in labels)
    again = load_model(RunFolder(tmp_path / "run").model)
    again.save_pretrained(tmp_path / "resaved")
    assert load_model(tmp_path / "resaved").label_names == model.label_names and load_model(tmp_path / "resaved").predict(test) == predicted

    # An extra type decodes as itself: with its emission row raised, every token is predicted B-PRODUCT.
    head = getattr(model, HEAD[model_type])
    row = {"acn": model.label_names.index("B-PRODUCT"), "umt": getattr(model, "typed_labels", None) and model.typed_labels.id("B-PRODUCT"),
           "2mner": model.label_names.index("B-PRODUCT")}[model_type]
    with torch.no_grad():
        head.bias[row] = 1e4
    short = [s for s in test if len(s.tokens) < 30][:3]  # no token cut by max_length
    boosted = model.predict(short)
    # (a blank token has no word piece, so UMT predicts it O)
    assert {label for s, labels in zip(short, boosted) for token, label in zip(s.tokens, labels) if token.strip()} == {"B-PRODUCT"}


@pytest.mark.parametrize("model_type", ["acn", "umt", "2mner"])
def test_training_on_a_label_the_model_lacks_names_the_sample_and_prediction_ignores_gold(model_type, setup, tmp_path):
    data, encoder = setup
    train = load_split(data, "cmner", "train")[:4]
    config = {"acn": {"word_dim": 8, "char_dim": 4, "char_filters": 2, "char_kernels": [2], "char_out": 4, "hidden": 8, "max_length": 40},
              "umt": {"encoder": str(encoder), "cross_heads": 2, "max_length": 64},
              "2mner": {"encoder": str(encoder), "max_length": 64}}[model_type]
    from xlingual.models import model_class

    model = model_class(model_type).build({**config, "use_image": False}, train)
    assert list(model.label_names) == list(CANONICAL_LABELS)
    alien = Sample("post-7", ["Apple", "rocks"], ["B-PRODUCT", "O"], lang="zh")
    with pytest.raises(DataFormatError, match=r"sample post-7, token 1: label 'B-PRODUCT' is not canonical BIO"):
        model.encode([alien])
    assert all(label in CANONICAL_LABELS for label in model.predict([alien])[0])


@pytest.mark.parametrize("model_type", ["acn", "umt", "2mner"])
def test_a_model_of_canonical_data_keeps_the_canonical_labels_and_shapes(model_type, setup, tmp_path):
    """The built-ins train as before: the nine labels in today's order, today's label maps, 9 (ACN, 2M-NER) or 13 (UMT) rows."""
    data, encoder = setup
    _train(model_type, data, encoder, tmp_path / "run")
    folder = RunFolder(tmp_path / "run").model
    model = load_model(folder)
    assert model.label_names == CANONICAL_LABELS
    expected = {"acn": {"labels": list(ACN_LABELS)}, "umt": {"typed_labels": TYPED_LABELS.to_list(), "span_labels": SPAN_LABELS.to_list()},
                "2mner": {"labels": MNER2_LABELS.to_list()}}[model_type]
    assert json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))["extras"].items() >= expected.items()
    assert getattr(model, HEAD[model_type]).out_features == {"acn": 9, "umt": 13, "2mner": 9}[model_type]
    assert model.crf.num_tags == {"acn": 9, "umt": 13, "2mner": 9}[model_type]


def test_a_folder_saved_without_label_maps_loads_with_the_canonical_labels(setup, tmp_path):
    data, encoder = setup
    _train("2mner", data, encoder, tmp_path / "run")
    folder = RunFolder(tmp_path / "run").model
    saved = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    saved["extras"].pop("labels")
    (folder / CONFIG_NAME).write_text(json.dumps(saved), encoding="utf-8")
    assert load_model(folder).label_names == CANONICAL_LABELS


def test_umt_spreads_a_span_score_evenly_over_every_type_it_has():
    """W_tr gives B (and I) the same share of each type's B- (I-) label, extra types included; the canonical model's stays 1/4."""
    from xlingual.models.umt_text import span_to_typed_matrix, typed_vocabulary

    typed = typed_vocabulary(OPEN_LABELS)
    assert typed.to_list() == [*TYPED_LABELS.to_list()[:10], *OPEN_LABELS[9:], *TYPED_LABELS.to_list()[10:]]
    matrix = span_to_typed_matrix(typed)
    for prefix in "BI":
        row = matrix[SPAN_LABELS.id(prefix)]
        shares = {label: float(row[typed.id(label)]) for label in OPEN_LABELS if label.startswith(f"{prefix}-")}
        assert len(shares) == 6 and list(shares.values()) == pytest.approx([1 / 6] * 6) and float(row.sum()) == pytest.approx(1.0)
    assert torch.equal(span_to_typed_matrix(typed_vocabulary(CANONICAL_LABELS)), span_to_typed_matrix())

"""UMT through the training engine: a two-stage cross-lingual run on the shipped sample data, then ``xl predict``."""

from __future__ import annotations

import shutil

import pytest
import torch
from typer.testing import CliRunner
from umt_helpers import single_threaded, tiny_encoder

from xlingual.cli import app
from xlingual.data.datasets import load_split
from xlingual.data.formats import read_samples
from xlingual.models import load_model
from xlingual.models.serialization import load_model_weights
from xlingual.train.config import load_config
from xlingual.train.run import train_run

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)


def test_src_setting_trains_umt_keeps_frozen_layers_and_predicts(tmp_path, sample_data_dir):
    data = tmp_path / "data"
    shutil.copytree(sample_data_dir, data)
    samples = [s for dataset in ("twitter2015", "cmner") for split in ("train", "dev", "test") for s in load_split(data, dataset, split)]
    encoder = tiny_encoder(tmp_path / "bert", samples)
    overrides = [
        f"data.data_dir={data}", "images=none", f"model.encoder={encoder}", "model.cross_heads=2",
        "model.freeze_bottom_layers=1", "model.max_length=64", "epochs=1", "batch_size=4",
    ]
    result = train_run(load_config("src", "umt", "en-zh", overrides), tmp_path / "run")
    test_metrics = result.metrics["test"]["conlleval"]
    assert test_metrics["gold"] > 0

    # Frozen embeddings and layer 0 are bit-identical to the encoder's after both stages; layer 1 moved.
    from safetensors.torch import load_file

    original = load_file(str(encoder / "model.safetensors"))
    trained = load_model_weights(tmp_path / "run" / "model")
    word_embeddings = next(k for k in original if k.endswith("word_embeddings.weight"))
    assert torch.equal(trained[f"encoder.{word_embeddings}"], original[word_embeddings])
    layer0 = next(k for k in original if ".layer.0." in k and k.endswith("query.weight"))
    assert torch.equal(trained[f"encoder.{layer0}"], original[layer0])
    layer1 = layer0.replace(".layer.0.", ".layer.1.")
    assert not torch.equal(trained[f"encoder.{layer1}"], original[layer1])

    # The run's model labels a CMNER file through the CLI exactly as the library does.
    test_file = data / "cmner" / "text" / "test.txt"
    out = tmp_path / "pred.txt"
    cli = CliRunner().invoke(app, ["predict", "--model", str(tmp_path / "run" / "model"), "--input", str(test_file), "--output", str(out)])
    assert cli.exit_code == 0, cli.output
    gold = read_samples(test_file, "cmner")
    predicted = read_samples(out, "cmner", bio="keep")  # the model's tags as written
    assert [s.tokens for s in predicted] == [s.tokens for s in gold]
    assert [s.labels for s in predicted] == load_model(tmp_path / "run" / "model").predict(gold)


def test_clipping_equals_torchs_clip_grad_norm():
    """The engine's one-norm clipping (UMT's configs clip at 1.0) scales gradients exactly as torch does."""
    from xlingual.train.engine import clip_by_total_norm

    generator = torch.Generator().manual_seed(0)
    for scale in (1e-3, 0.1, 10.0):  # below the threshold (unchanged) and above it (scaled)
        shapes = [(5, 3), (7,), (2, 4, 6), (1,)]
        theirs = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
        ours = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
        for a, b in zip(theirs, ours):
            a.grad = torch.randn(a.shape, generator=generator) * scale
            b.grad = a.grad.clone()
        torch.nn.utils.clip_grad_norm_(theirs, 1.0)
        clip_by_total_norm([p.grad for p in ours], 1.0)
        for a, b in zip(theirs, ours):
            assert torch.allclose(a.grad, b.grad, rtol=1e-6, atol=0)
        norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ours]))
        assert norm <= 1.0 + 1e-5

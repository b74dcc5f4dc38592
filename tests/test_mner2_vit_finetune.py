"""2M-NER with ``model.vit=finetune``: CLIP's ViT runs on the raw images every step and trains with the model.

Tiny models throughout: a tiny CLIP vision model (5 tokens x 32 channels on
64-pixel images), a tiny BERT, generated MMNERD splits with drawn JPEGs and a
random-weight ResNet-152 cache; everything offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from extraction_helpers import write_random_cache
from resume_helpers import Interrupt, stop_at, timeless
from xlingual.cli import app
from xlingual.data.datasets import load_split
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError
from xlingual.features.clip import load_clip, load_clip_preprocessing
from xlingual.features.extract import extract_for_data_dir
from xlingual.features.cache import FeatureCache
from xlingual.features.pixels import DeferredPixels, pixel_lookup
from xlingual.features.preprocess import preprocess_image
from xlingual.models.base import load_deferred
from xlingual.models.mner2 import Mner2Config, Mner2Model
from xlingual.testing.synthetic import write_images
from xlingual.testing.tiny_bert import build_tiny_bert
from xlingual.testing.tiny_clip import build_tiny_clip, build_tiny_vit
from xlingual.train.config import load_config
from xlingual.train.run import train_run
from xlingual.workspace import DataDir, RunFolder

from tests.test_train_2mner import write_generated_mmnerd

TINY = ["model.vit_tokens=5", "model.visual_dim=32", "model.max_length=64", "batch_size=4", "eval_batch_size=8",
        "lr=1e-3", "epochs=2", "patience=null"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path, Path]:
    """An MMNERD-only data directory (images, a ResNet-152 cache and no CLIP cache), a tiny BERT and a tiny CLIP."""
    root = tmp_path_factory.mktemp("vit-finetune")
    data_dir = root / "data"
    write_generated_mmnerd(data_dir)
    _write_random_resnet_cache(data_dir)
    tokens = sorted({t for split in ("train", "dev", "test") for s in load_split(data_dir, "mmnerd", split, with_images=False) for t in s.tokens})
    return data_dir, build_tiny_bert(root / "tiny-bert", tokens), build_tiny_clip(root / "tiny-clip")


def _write_random_resnet_cache(data_dir: Path) -> None:
    """A resnet152 cache of random grids for MMNERD's images (running the CNN costs most of a minute here and tests nothing of the ViT)."""
    layout = DataDir(data_dir)
    write_random_cache(layout.features("resnet152"), layout.images_dir("mmnerd"), "resnet152", (49, 2048))


def _visual(model: Mner2Model, data_dir: Path):
    layout = DataDir(data_dir)
    return Mner2Model.visual_combiner({}, [layout.images_dir("mmnerd")], model=model)([FeatureCache.open(layout.features("resnet152"))], "all", 0)


def _overrides(data_dir: Path, encoder: Path, clip: Path, *extra: str) -> list[str]:
    return [f"data.data_dir={data_dir}", f"model.encoder={encoder}", "model.vit=finetune", f"model.vit_weights={clip}", *TINY, *extra]


def _config(setup, *extra: str):
    data_dir, encoder, clip = setup
    return load_config("tgt_only", "2mner", None, _overrides(data_dir, encoder, clip, *extra), source=[], target="mmnerd")


# -- the model -----------------------------------------------------------------------------------

def _models(encoder: Path, clip: Path) -> tuple[Mner2Model, Mner2Model]:
    """A fine-tuning model and a frozen one with the same weights (the frozen one reads the ViT's tokens as its cache would)."""
    options = {"encoder": str(encoder), "vit_tokens": 5, "visual_dim": 32, "max_length": 64, "dropout": 0.0}
    torch.manual_seed(0)
    finetune = Mner2Model.build({**options, "vit": "finetune", "vit_weights": str(clip)})
    frozen = Mner2Model.build(options)
    frozen.load_state_dict({k: v for k, v in finetune.state_dict().items() if not k.startswith("vit.")})
    return finetune.eval(), frozen.eval()


def _posts(data_dir: Path, count: int = 6) -> list[Sample]:
    return load_split(data_dir, "mmnerd", "train")[:count]


def test_the_finetuned_vit_reads_the_pixels_the_cache_path_reads_as_tokens(setup):
    """Same weights: the fine-tuning model on the images equals the frozen model on the ViT's last hidden states of them."""
    data_dir, encoder, clip = setup
    finetune, frozen = _models(encoder, clip)
    posts = _posts(data_dir)
    posts[1].images = []  # an image-less post is masked in both
    batch = finetune.collate(finetune.encode(posts, _visual(finetune, data_dir)))
    assert batch["vit_pixels"].shape == (len(posts), 3, 64, 64) and batch["has_image"].tolist() == [True, False, True, True, True, True]
    vit = load_clip(str(clip))
    with torch.no_grad():
        tokens = vit(batch["vit_pixels"])
    frozen_batch = {k: v for k, v in batch.items() if k != "vit_pixels"} | {"vit": tokens}
    with torch.no_grad():
        a, b = finetune.compute(batch), frozen.compute(frozen_batch)
    for name in ("emissions", "text_view", "vit_view", "vit_attention"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-5)


def test_both_loss_terms_reach_the_vit(setup):
    """The CRF (through the cross-attention) and the ViT contrastive term each give the ViT a gradient."""
    data_dir, encoder, clip = setup
    finetune, _ = _models(encoder, clip)
    finetune.train()
    batch = finetune.collate(finetune.encode(_posts(data_dir), _visual(finetune, data_dir)))
    out = finetune(batch)
    weight = next(p for n, p in finetune.vit.named_parameters() if n.endswith("patch_embedding.weight"))
    for term in ("crf_loss", "cl_vit"):
        finetune.zero_grad()
        out[term].backward(retain_graph=True)
        assert weight.grad is not None and weight.grad.abs().sum() > 0, term


def test_a_broken_image_makes_its_post_image_less_when_the_batch_is_read(setup, tmp_path):
    data_dir, encoder, clip = setup
    steps = load_clip_preprocessing(str(clip))
    good = DataDir(data_dir).images_dir("mmnerd")
    post = _posts(data_dir, 1)[0]
    lookup = pixel_lookup([tmp_path, good], steps)
    pixels, has = lookup(post)
    assert has and isinstance(pixels, DeferredPixels) and pixels.shape == (3, 64, 64)
    np.testing.assert_array_equal(pixels.load(), preprocess_image(good / post.images[0], "clip-vit-b32", clip=steps))
    (tmp_path / post.images[0]).write_bytes(b"not a jpeg")  # found first, cannot be decoded
    pixels, has = lookup(post)
    assert has and pixels.path.parent == tmp_path
    (item,) = load_deferred([{"vit_pixels": pixels, "has_image": True}])
    assert item["has_image"] is False and item["vit_pixels"] is None
    assert pixel_lookup([tmp_path / "none"], steps)(post)[1] is False


def test_finetune_needs_the_vit_branch_and_a_matching_shape(setup):
    _, encoder, clip = setup
    with pytest.raises(ConfigError, match="use_vit=false"):
        Mner2Config.from_dict({"vit": "finetune", "use_vit": False})
    with pytest.raises(ConfigError, match="model.vit: choose"):
        Mner2Config.from_dict({"vit": "train"})
    with pytest.raises(ConfigError, match="gives 5 tokens of 32 channels"):
        Mner2Model.build({"encoder": str(encoder), "vit": "finetune", "vit_weights": str(clip)})


# -- through xl train: trains, saves, resumes, predicts -------------------------------------------

def _vit_weights(folder: Path) -> dict[str, torch.Tensor]:
    """A saved model's ViT weights, named as in a CLIP vision checkpoint (``vit.vision.`` dropped)."""
    return {k.removeprefix("vit.vision."): v for k, v in load_file(str(folder / "model.safetensors")).items() if k.startswith("vit.")}


def _clip_weights(folder: Path) -> dict[str, torch.Tensor]:
    return {k.removeprefix("vision_model."): v for k, v in load_file(str(folder / "model.safetensors")).items()}


def test_xl_train_finetunes_the_vit_and_xl_predict_uses_it(setup, tmp_path):
    data_dir, encoder, clip = setup
    out = tmp_path / "run"
    args = ["train", "--config", "tgt_only", "--model", "2mner", "--target", "mmnerd", "--output", str(out), "--json"]
    for item in _overrides(data_dir, encoder, clip, "model.vit_workers=1"):
        args += ["--set", item]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert not DataDir(data_dir).features("clip-vit-b32").exists()  # the run read the images, not a CLIP cache
    model_dir = RunFolder(out).model
    trained, initial = _vit_weights(model_dir), _clip_weights(clip)
    assert trained.keys() == initial.keys()
    assert any(not torch.equal(trained[k], initial[k]) for k in trained)
    assert (model_dir / "vit" / "config.json").is_file() and (model_dir / "vit" / "preprocessor_config.json").is_file()
    losses = [h["train_loss"] for h in json.loads(RunFolder(out).metrics.read_text(encoding="utf-8"))["stages"]["target"]["history"]]
    assert len(losses) == 2 and all(np.isfinite(losses))

    layout = DataDir(data_dir)
    test_file = layout.split_file("mmnerd", "test")
    base = ["--model", str(model_dir), "--features", str(layout.features("resnet152"))]
    scored = CliRunner().invoke(app, ["evaluate", *base, "--data", str(test_file), "--json", "--image-dir", str(layout.images_dir("mmnerd"))])
    assert scored.exit_code == 0, scored.output
    test_f1 = json.loads(RunFolder(out).metrics.read_text(encoding="utf-8"))["test"]["conlleval"]["f1"]
    assert json.loads(scored.output)["data"]["conlleval"]["f1"] == pytest.approx(test_f1)
    predicted = CliRunner().invoke(app, ["predict", *base, "--input", str(test_file), "--device", "cpu",
                                         "--image-dir", str(layout.images_dir("mmnerd")), "--output", str(tmp_path / "pred.txt"),
                                         "--jsonl", str(tmp_path / "pred.jsonl")])
    assert predicted.exit_code == 0, predicted.output
    run_predictions = [json.loads(line)["labels"] for line in RunFolder(out).prediction("test", ".jsonl").read_text(encoding="utf-8").splitlines()]
    assert [json.loads(line)["labels"] for line in (tmp_path / "pred.jsonl").read_text(encoding="utf-8").splitlines()] == run_predictions


def _assert_same_run(resumed, whole) -> None:
    """The resumed run ends as the uninterrupted one: the same history (timings aside), test scores and ViT weights."""
    history = [timeless(run.metrics["stages"]["target"]["history"]) for run in (resumed, whole)]
    assert history[0] == history[1] and resumed.metrics["test"] == whole.metrics["test"]
    a, b = _vit_weights(whole.run_dir / "model"), _vit_weights(resumed.run_dir / "model")
    assert a and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_an_interrupted_finetune_run_resumes_to_the_same_result(setup, tmp_path):
    """16 posts, batch 4: 4 steps per epoch; cut inside the second epoch, after the epoch-1 checkpoint and one at step 6."""
    config = _config(setup, "save_every_steps=2", "model.vit_workers=1")
    whole = train_run(config, tmp_path / "whole")
    with pytest.raises(Interrupt):
        train_run(config, tmp_path / "cut", hooks=[stop_at(7)])
    resumed = train_run(config, tmp_path / "cut", resume=True)
    _assert_same_run(resumed, whole)


def test_a_saved_vit_and_a_clip_folder_read_their_preprocessing_with_one_reader(setup, tmp_path, monkeypatch):
    """Loading a saved fine-tuned ViT and loading a CLIP folder read ``preprocessor_config.json`` the same way, errors included."""
    import shutil

    from xlingual.errors import ModelNotFoundError
    from xlingual.features import clip as clip_module
    from xlingual.features.clip import PREPROCESSOR_FILE

    _, encoder, clip = setup
    options = {"encoder": str(encoder), "vit_tokens": 5, "visual_dim": 32, "max_length": 64, "vit": "finetune", "vit_weights": str(clip)}
    Mner2Model.build(options).save_pretrained(tmp_path / "model")
    saved_vit, clip_copy = tmp_path / "model" / "vit", Path(shutil.copytree(clip, tmp_path / "clip"))
    read, reader = [], clip_module.read_preprocessor_settings
    monkeypatch.setattr(clip_module, "read_preprocessor_settings", lambda path: read.append(Path(path).resolve()) or reader(path))
    loaded = Mner2Model.from_pretrained(tmp_path / "model")
    assert read == [(saved_vit / PREPROCESSOR_FILE).resolve()]
    assert load_clip_preprocessing(str(clip_copy)) == loaded.vit_preprocessing and read[1:] == [(clip_copy / PREPROCESSOR_FILE).resolve()]

    for damage in (b"{not json", b"[1, 2]", b"\xff\xfe{}"):
        errors = []
        for folder, load in ((saved_vit, lambda: Mner2Model.from_pretrained(tmp_path / "model")),
                             (clip_copy, lambda: load_clip_preprocessing(str(clip_copy)))):
            (folder / PREPROCESSOR_FILE).write_bytes(damage)
            with pytest.raises(ModelNotFoundError) as err:
                load()
            errors.append(str(err.value).replace(str(folder.resolve()), "<folder>").replace(str(folder), "<folder>"))
        assert errors[0] == errors[1] and errors[0].startswith(f"<folder>/{PREPROCESSOR_FILE}: ") and "\n" not in errors[0], errors


# -- the reference's other ViT: google/vit-base-patch16-224's kind -------------------------------

@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory) -> Path:
    return build_tiny_vit(tmp_path_factory.mktemp("tiny-vit") / "vit")


@pytest.mark.parametrize("size", [(64, 64), (96, 40), (40, 120)])
def test_a_plain_vit_gets_its_own_preprocessing(tiny_vit, tmp_path, size):
    """ViTImageProcessor's steps (square resize, no crop, mean/std 0.5), not CLIP's, whatever the aspect."""
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    path = write_images(tmp_path, ["a.jpg"], size=size) / "a.jpg"
    ours = preprocess_image(path, "clip-vit-b32", clip=load_clip_preprocessing(str(tiny_vit)))
    from PIL import Image

    theirs = ViTImageProcessorPil.from_pretrained(tiny_vit)(images=Image.open(path).convert("RGB"))["pixel_values"][0]
    assert ours.shape == tuple(theirs.shape) == (3, 64, 64)
    np.testing.assert_allclose(ours, np.asarray(theirs), atol=1e-5)


def test_a_plain_vit_fills_the_cache_and_is_finetuned(setup, tiny_vit, tmp_path):
    """The ViT's last_hidden_state (after its final LayerNorm, as ViTModel returns it) in the cache; 2M-NER fine-tunes it,
    saves it and loads it back to the same outputs."""
    from transformers import ViTModel

    data_dir, encoder, _ = setup
    cache_dir = tmp_path / "vit-cache"
    extract_for_data_dir(data_dir, "clip-vit-b32", weights=str(tiny_vit), device="cpu", batch_size=8, cache_dir=cache_dir)
    cache = FeatureCache.open(cache_dir)
    name = _posts(data_dir, 1)[0].images[0]
    pixels = preprocess_image(DataDir(data_dir).images_dir("mmnerd") / name, "clip-vit-b32", clip=load_clip_preprocessing(str(tiny_vit)))
    with torch.no_grad():
        expected = ViTModel.from_pretrained(tiny_vit).eval()(pixel_values=torch.from_numpy(pixels)[None]).last_hidden_state[0]
    np.testing.assert_allclose(cache.get(name).astype(np.float32), expected.numpy(), rtol=1e-2, atol=1e-2)  # float16 in the cache

    options = {"encoder": str(encoder), "vit_tokens": 5, "visual_dim": 32, "max_length": 64, "vit": "finetune", "vit_weights": str(tiny_vit)}
    model = Mner2Model.build(options)
    batch = model.collate(model.encode(_posts(data_dir), _visual(model, data_dir)))
    model.train()
    model(batch)["loss"].backward()
    assert all(p.grad is not None for p in model.vit.parameters())  # no unused pooler
    model.save_pretrained(tmp_path / "model")
    loaded = Mner2Model.from_pretrained(tmp_path / "model")
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.compute(batch).emissions, model.compute(batch).emissions)


def test_a_finetune_run_needs_the_vit_weights_and_no_clip_cache(tmp_path):
    from xlingual.train.inputs import missing_inputs

    def missing(*extra: str) -> list[str]:
        config = load_config("tgt_only", "2mner", None, [f"data.data_dir={tmp_path}", *extra], source=[], target="mmnerd")
        return [item.what for item in missing_inputs(config)]

    frozen, finetune = missing(), missing("model.vit=finetune", f"model.vit_weights={tmp_path / 'no-vit'}")
    assert any("clip-vit-b32 features" in what for what in frozen) and not any("model.vit_weights" in what for what in frozen)
    assert not any("clip-vit-b32 features" in what for what in finetune)
    assert any("resnet152 features" in what for what in finetune) and any("model.vit_weights" in what for what in finetune)


KILLED_AT_STEP = '''
import json, os, signal, sys
from xlingual.train.config import load_config
from xlingual.train.run import train_run

overrides, run_dir, step = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def die(loop):
    if loop.global_step == step:
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind: the loader workers die with their parent

train_run(load_config("tgt_only", "2mner", None, overrides, source=[], target="mmnerd"), run_dir, hooks=[die])
'''


def test_a_finetune_run_killed_with_sigkill_resumes_to_the_uninterrupted_result(setup, tmp_path):
    """kill -9 at step 7 (loader workers running): the resume starts from step 6's checkpoint and ends where an uninterrupted run ends."""
    import os
    import signal
    import subprocess
    import sys

    data_dir, encoder, clip = setup
    overrides = _overrides(data_dir, encoder, clip, "save_every_steps=2", "model.vit_workers=1")
    config = load_config("tgt_only", "2mner", None, overrides, source=[], target="mmnerd")
    whole = train_run(config, tmp_path / "whole")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_STEP, json.dumps(overrides), str(tmp_path / "cut"), "7"],
                            capture_output=True, text=True, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    cut = RunFolder(tmp_path / "cut")
    assert not cut.metrics.exists()
    saved = json.loads(cut.stage("target").loop_state.read_text(encoding="utf-8"))
    assert saved["global_step"] == 6  # the resume starts there, not from scratch
    resumed = train_run(config, tmp_path / "cut", resume=True)
    _assert_same_run(resumed, whole)

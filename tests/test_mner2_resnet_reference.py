"""2M-NER with ``model.resnet=reference``: ResNet-152 runs on a fresh random crop of the raw image every step, frozen,
its BatchNorm in the model's mode (batch statistics while training, which move its running statistics).

Tiny models throughout: torchvision's ``ResNet(BasicBlock, [1, 1, 1, 1])`` (512 channels) in place of ResNet-152,
a tiny BERT, generated MMNERD splits with drawn JPEGs (some larger than 224, so crops differ) and a random clip-vit-b32
cache of tiny tokens; everything offline.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from extraction_helpers import write_random_cache
from resume_helpers import Interrupt, stop_at, timeless
from xlingual.cli import app
from xlingual.data.datasets import load_split
from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.evaluation.model_source import model_image_seed
from xlingual.features.backbones import BACKBONES
from xlingual.features.cache import FeatureCache
from xlingual.features.pixels import DeferredCrop, crop_lookup
from xlingual.features.preprocess import IMAGENET_MEAN, IMAGENET_STD, INPUT_SIZE, keyed_rng, reference_resnet_input
from xlingual.models.base import EpochItems, load_deferred
from xlingual.models.mner2 import Mner2Config, Mner2Model
from xlingual.testing.synthetic import write_images
from xlingual.testing.tiny_bert import build_tiny_bert
from xlingual.train.config import load_config
from xlingual.train.run import train_run
from xlingual.workspace import DataDir, RunFolder

from tests.test_train_2mner import write_generated_mmnerd

TINY = ["model.vit_tokens=5", "model.visual_dim=32", "model.resnet_dim=512", "model.max_length=64", "batch_size=4",
        "eval_batch_size=8", "lr=1e-3", "epochs=2", "patience=null", "model.resnet=reference", "model.resnet_weights=random"]


def _tiny_resnet():
    from torchvision.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [1, 1, 1, 1])


@pytest.fixture(autouse=True)
def tiny_resnet(monkeypatch):
    """Every ResNet-152 these tests build is the tiny one (512 channels)."""
    monkeypatch.setitem(BACKBONES, "resnet152", replace(BACKBONES["resnet152"], channels=512, build_full=_tiny_resnet))


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    """An MMNERD-only data directory (images, a clip-vit-b32 cache of 5x32 tokens, no resnet152 cache) and a tiny BERT."""
    root = tmp_path_factory.mktemp("resnet-reference")
    data_dir = root / "data"
    write_generated_mmnerd(data_dir)
    layout = DataDir(data_dir)
    train = load_split(data_dir, "mmnerd", "train", with_images=False)
    write_images(layout.images_dir("mmnerd"), [f"{post.id}.jpg" for post in train[::2]], seed=7, size=(264, 240))  # croppable
    write_random_cache(layout.features("clip-vit-b32"), layout.images_dir("mmnerd"), "clip-vit-b32", (5, 32))
    tokens = sorted({t for split in ("train", "dev", "test") for s in load_split(data_dir, "mmnerd", split, with_images=False) for t in s.tokens})
    return data_dir, build_tiny_bert(root / "tiny-bert", tokens)


# -- the crop ------------------------------------------------------------------------------------

def _coordinate_image(path: Path, width: int, height: int) -> np.ndarray:
    """A lossless image whose every pixel says where it is (R: x mod 256, G: y mod 256, B: the high parts)."""
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    pixels = np.stack([x % 256, y % 256, (x // 256) * 16 + y // 256], axis=-1).astype(np.uint8)
    Image.fromarray(pixels).save(path, format="PNG")
    return pixels


def _pixels_of(array: np.ndarray) -> np.ndarray:
    """The 8-bit (H, W, 3) image a normalised (3, H, W) input was made from."""
    values = array.transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    return np.rint(values * 255).astype(np.int64)


def _window(source: np.ndarray, out: np.ndarray) -> tuple[int, int, bool]:
    """(left, top, flipped) of the 224 window of ``source`` that ``out`` is; fails when it is none."""
    for flipped in (False, True):
        view = out[:, ::-1] if flipped else out
        if source.shape[:2] == (INPUT_SIZE, INPUT_SIZE) and np.array_equal(view, source):
            return 0, 0, flipped
        left = int(view[0, 0, 0]) + 256 * (int(view[0, 0, 2]) // 16)
        top = int(view[0, 0, 1]) + 256 * (int(view[0, 0, 2]) % 16)
        if top + INPUT_SIZE <= source.shape[0] and left + INPUT_SIZE <= source.shape[1] \
                and np.array_equal(view, source[top:top + INPUT_SIZE, left:left + INPUT_SIZE]):
            return left, top, flipped
    raise AssertionError("the input is not a 224 window of the image, flipped or not")


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 700), height=st.integers(1, 700), seed=st.integers(0, 2**31), key=st.text(max_size=12))
def test_the_crop_is_a_224_window_of_the_unresized_image_and_small_images_are_resized_first(tmp_path_factory, width, height, seed, key):
    path = tmp_path_factory.mktemp("crop") / "image.png"
    source = _coordinate_image(path, width, height)
    if width < INPUT_SIZE or height < INPUT_SIZE:  # the reference: resized to 224x224 (bilinear) first, then cropped
        source = np.asarray(Image.fromarray(source).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)).astype(np.int64)
    out = reference_resnet_input(path, keyed_rng(seed, key))
    assert out.shape == (3, INPUT_SIZE, INPUT_SIZE) and out.dtype == np.float32
    _window(source, _pixels_of(out))


def test_windows_and_flips_are_drawn_over_the_whole_image(tmp_path):
    """Over 200 draws of one 300x260 image: flipped about half the time, the windows spread over every offset range."""
    path = tmp_path / "image.png"
    source = _coordinate_image(path, 300, 260)
    draws = [_window(source, _pixels_of(reference_resnet_input(path, keyed_rng(0, f"post{i}")))) for i in range(200)]
    flips = sum(flipped for _, _, flipped in draws)
    assert 70 <= flips <= 130, flips
    lefts, tops = {left for left, _, _ in draws}, {top for _, top, _ in draws}
    assert min(lefts) < 10 and max(lefts) > 300 - INPUT_SIZE - 10 and min(tops) < 10 and max(tops) > 260 - INPUT_SIZE - 10


def test_the_same_seed_epoch_and_post_give_the_same_crop_and_another_epoch_another(tmp_path):
    path = tmp_path / "image.png"
    source = _coordinate_image(path, 400, 380)
    crop = DeferredCrop(path, seed=5, key="post-1\0image.png")

    def view(each: DeferredCrop) -> tuple[int, int, bool]:
        return _window(source, _pixels_of(each.load()))

    assert view(crop.for_epoch(3)) == view(crop.for_epoch(3)) == view(DeferredCrop(path, 5, "post-1\0image.png", 3))
    epochs = [view(crop.for_epoch(epoch)) for epoch in range(6)]
    assert len(set(epochs)) == 6  # another epoch, another window (376 x 156 offsets: a repeat in six is unlikely and would be a bug here)
    assert view(crop) not in epochs  # evaluation draws its own view
    assert view(replace(crop, seed=6).for_epoch(3)) != view(crop.for_epoch(3))
    assert view(replace(crop, key="post-2\0image.png").for_epoch(3)) != view(crop.for_epoch(3))


def test_the_training_items_are_read_as_their_epoch_draws_them(tmp_path):
    """EpochItems gives each deferred input its epoch's draw; items without one are passed as they are."""
    path = tmp_path / "image.png"
    _coordinate_image(path, 400, 380)
    plain = {"resnet": np.zeros(3), "has_image": True}
    items = EpochItems([{"resnet_pixels": DeferredCrop(path, 1, "a"), "has_image": True}, plain])
    items.set_epoch(4)
    assert items[0]["resnet_pixels"] == DeferredCrop(path, 1, "a", 4) and items[1] is plain
    (read,) = load_deferred([items[0]])
    np.testing.assert_array_equal(read["resnet_pixels"], DeferredCrop(path, 1, "a", 4).load())


def test_the_lookup_keys_each_crop_by_seed_and_post(setup, tmp_path):
    data_dir, _ = setup
    post = load_split(data_dir, "mmnerd", "train")[0]
    crop, has = crop_lookup([tmp_path, DataDir(data_dir).images_dir("mmnerd")], seed=9)(post)
    assert has and crop == DeferredCrop(DataDir(data_dir).images_dir("mmnerd") / post.images[0], 9, f"{post.id}\0{post.images[0]}")
    post.images = ["missing.jpg"]
    zeros, has = crop_lookup([tmp_path], seed=9)(post)
    assert not has and zeros.shape == (3, INPUT_SIZE, INPUT_SIZE) and not zeros.any()


# -- the model -----------------------------------------------------------------------------------

def _model(encoder: Path, **extra) -> Mner2Model:
    options = {"encoder": str(encoder), "vit_tokens": 5, "visual_dim": 32, "resnet_dim": 512, "max_length": 64,
               "resnet": "reference", "resnet_weights": "random", **extra}
    return Mner2Model.build(options)


def _batch(model: Mner2Model, data_dir: Path, count: int = 6, seed: int = 0):
    layout = DataDir(data_dir)
    posts = load_split(data_dir, "mmnerd", "train")[:count]
    lookup = Mner2Model.visual_combiner({}, [layout.images_dir("mmnerd")], model=model)([FeatureCache.open(layout.features("clip-vit-b32"))], "all", seed)
    return model.collate(model.encode(posts, lookup))


def _buffers(model: Mner2Model) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in model.resnet.named_buffers()}


def test_training_steps_move_the_batchnorm_statistics_and_never_the_resnet_weights(setup, tmp_path):
    data_dir, encoder = setup
    torch.manual_seed(0)
    model = _model(encoder)
    batch = _batch(model, data_dir)
    assert batch["resnet_pixels"].shape == (6, 3, INPUT_SIZE, INPUT_SIZE) and "resnet" not in batch
    weights = {name: value.clone() for name, value in model.resnet.named_parameters()}
    assert weights and not any(value.requires_grad for value in model.resnet.parameters())
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    assert not {id(p) for p in model.resnet.parameters()} & {id(p) for group in optimizer.param_groups for p in group["params"]}
    before = _buffers(model)
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        model(batch)["loss"].backward()
        optimizer.step()
    moved = _buffers(model)
    assert all(not torch.equal(before[name], moved[name]) for name in before if name.endswith(("running_mean", "running_var")))
    assert all(torch.equal(value, weights[name]) for name, value in model.resnet.named_parameters())
    assert all(p.grad is None for p in model.resnet.parameters())

    model.eval()  # evaluation reads the running statistics and leaves them
    with torch.no_grad():
        emissions = model.compute(batch).emissions
    assert all(torch.equal(value, moved[name]) for name, value in model.resnet.named_buffers())

    model.save_pretrained(tmp_path / "model")
    loaded = Mner2Model.from_pretrained(tmp_path / "model")
    assert all(torch.equal(value, moved[name]) for name, value in loaded.resnet.named_buffers())
    assert all(torch.equal(value, weights[name]) for name, value in loaded.resnet.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(loaded.compute(batch).emissions, emissions)


def test_the_resnet_vector_is_avgpool_of_layer4_of_the_crop_and_image_less_posts_leave_the_statistics(setup):
    """The vector equals torchvision's own ResNet forward up to its avgpool on the same pixels, in either mode;
    a post without an image gets a zero vector and is not in the BatchNorm's batch."""
    data_dir, encoder = setup
    model = _model(encoder)
    pixels = _batch(model, data_dir, count=3)["resnet_pixels"]
    full = _tiny_resnet()
    for name, module in zip(("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"), model.resnet):
        setattr(full, name, module)  # the model's own modules: one set of weights and statistics
    full.fc = torch.nn.Identity()  # torchvision's forward then ends with flatten(avgpool(layer4))
    present = {"resnet_pixels": pixels, "has_image": torch.ones(3, dtype=torch.bool)}
    for mode in (True, False):
        model.train(mode)
        full.train(mode)
        with torch.no_grad():
            torch.testing.assert_close(model._resnet_vector(present), full(pixels))

    model.train()
    before = _buffers(model)
    image_less = {"resnet_pixels": torch.randn(2, 3, INPUT_SIZE, INPUT_SIZE), "has_image": torch.zeros(2, dtype=torch.bool)}
    assert not model._resnet_vector(image_less).any()
    assert all(torch.equal(value, before[name]) for name, value in model.resnet.named_buffers())


def test_bad_options_are_one_line_errors(setup):
    _, encoder = setup
    with pytest.raises(ConfigError, match=r"^model.resnet: choose cached or reference, not 'train'$"):
        Mner2Config.from_dict({"resnet": "train"})
    with pytest.raises(ConfigError, match="use_resnet=false"):
        Mner2Config.from_dict({"resnet": "reference", "use_resnet": False})
    with pytest.raises(ConfigError, match="gives 512 channels, the config says 2048"):
        Mner2Model.build({"encoder": str(encoder), "vit_tokens": 5, "visual_dim": 32, "resnet": "reference", "resnet_weights": "random"})
    assert Mner2Config().resnet == "cached" and not Mner2Config().runs_resnet
    result = CliRunner().invoke(app, ["train", "--config", "tgt_only", "--model", "2mner", "--target", "mmnerd", "--dry-run",
                                      "--set", "model.resnet=finetune"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "model.resnet" in result.output and "Traceback" not in result.output, result.output


def test_a_reference_run_reads_no_resnet_cache(tmp_path):
    from xlingual.train.inputs import missing_inputs

    def missing(*extra: str) -> list[str]:
        config = load_config("tgt_only", "2mner", None, [f"data.data_dir={tmp_path}", *extra], source=[], target="mmnerd")
        return [item.what for item in missing_inputs(config)]

    cached, reference = missing(), missing("model.resnet=reference")
    assert any("resnet152 features" in what for what in cached) and any("clip-vit-b32 features" in what for what in cached)
    assert not any("resnet152 features" in what for what in reference) and any("clip-vit-b32 features" in what for what in reference)


# -- through xl train: trains, saves, resumes, predicts -------------------------------------------

def _overrides(data_dir: Path, encoder: Path, *extra: str) -> list[str]:
    return [f"data.data_dir={data_dir}", f"model.encoder={encoder}", *TINY, *extra]


def _resnet_state(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(folder / "model.safetensors")).items() if k.startswith("resnet.")}


def test_xl_train_runs_the_resnet_and_xl_predict_and_evaluate_use_the_saved_one(setup, tmp_path, monkeypatch):
    """Every training post is read once per epoch with that epoch's crop, dev and test with their own; the saved model
    carries the drifted statistics and the unchanged weights, and xl evaluate / xl predict reproduce the run's test."""
    data_dir, encoder = setup
    out = tmp_path / "run"
    args = ["train", "--config", "tgt_only", "--model", "2mner", "--target", "mmnerd", "--output", str(out), "--json"]
    for item in _overrides(data_dir, encoder, "model.vit_workers=0"):  # decoded in this process, so the reads are seen
        args += ["--set", item]
    reads, load = Counter(), DeferredCrop.load
    monkeypatch.setattr(DeferredCrop, "load", lambda self: reads.update([(self.key.split("\0")[0], self.round)]) or load(self))
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    train_ids = [post.id for post in load_split(data_dir, "mmnerd", "train")]
    assert all(reads[(post, epoch)] == 1 for post in train_ids for epoch in (0, 1))
    evaluated = {post.id for split in ("dev", "test") for post in load_split(data_dir, "mmnerd", split)}
    assert {(post, "eval") for post in evaluated} <= set(reads) and {round for _, round in reads} == {0, 1, "eval"}
    assert {post for post, round in reads if round == "eval"} == evaluated
    assert not DataDir(data_dir).features("resnet152").exists()  # the run read the images, not a ResNet cache
    model_dir = RunFolder(out).model
    saved = _resnet_state(model_dir)
    fresh = {f"resnet.{k}": v for k, v in _initial_resnet().state_dict().items()}  # what the run started from
    assert saved.keys() == fresh.keys()
    drifted = [k for k in saved if k.endswith("running_mean")]
    assert drifted and all(not torch.equal(saved[k], fresh[k]) for k in drifted)
    assert all(torch.equal(saved[k], fresh[k]) for k in saved if k.endswith(("weight", "bias")))  # frozen
    history = json.loads(RunFolder(out).metrics.read_text(encoding="utf-8"))["stages"]["target"]["history"]
    assert len(history) == 2 and all(np.isfinite(h["train_loss"]) for h in history)

    layout = DataDir(data_dir)
    test_file = layout.split_file("mmnerd", "test")
    # no --seed: the test crops are drawn with the seed of the run the model was trained in (19 here), so the run's scores come back
    assert model_image_seed(model_dir) == 19 and model_image_seed(model_dir, 3) == 3 and model_image_seed(tmp_path) == 0
    base = ["--model", str(model_dir), "--features", str(layout.features("clip-vit-b32")), "--image-dir", str(layout.images_dir("mmnerd"))]
    scored = CliRunner().invoke(app, ["evaluate", *base, "--data", str(test_file), "--json"])
    assert scored.exit_code == 0, scored.output
    test_f1 = json.loads(RunFolder(out).metrics.read_text(encoding="utf-8"))["test"]["conlleval"]["f1"]
    assert json.loads(scored.output)["data"]["conlleval"]["f1"] == pytest.approx(test_f1)
    predicted = CliRunner().invoke(app, ["predict", *base, "--input", str(test_file), "--device", "cpu",
                                         "--output", str(tmp_path / "pred.txt"), "--jsonl", str(tmp_path / "pred.jsonl")])
    assert predicted.exit_code == 0, predicted.output
    run_predictions = [json.loads(line)["labels"] for line in RunFolder(out).prediction("test", ".jsonl").read_text(encoding="utf-8").splitlines()]
    assert [json.loads(line)["labels"] for line in (tmp_path / "pred.jsonl").read_text(encoding="utf-8").splitlines()] == run_predictions
    without = CliRunner().invoke(app, ["evaluate", "--model", str(model_dir), "--features", str(layout.features("clip-vit-b32")),
                                       "--data", str(tmp_path / "pred.txt")])
    assert without.exit_code == 2 and "--image-dir" in without.output


def _initial_resnet() -> torch.nn.Module:
    from xlingual.features.backbones import load_backbone

    return load_backbone("resnet152", "random")


def test_an_interrupted_reference_run_resumes_to_the_same_result(setup, tmp_path):
    """16 posts, batch 4: 4 steps per epoch; cut inside the second epoch, after the epoch-1 checkpoint and one at step 6.
    The resumed run ends with the uninterrupted run's history, test scores and BatchNorm statistics."""
    data_dir, encoder = setup
    config = load_config("tgt_only", "2mner", None, _overrides(data_dir, encoder, "save_every_steps=2", "model.vit_workers=1"),
                         source=[], target="mmnerd")
    whole = train_run(config, tmp_path / "whole")
    with pytest.raises(Interrupt):
        train_run(config, tmp_path / "cut", hooks=[stop_at(7)])
    resumed = train_run(config, tmp_path / "cut", resume=True)
    history = [timeless(run.metrics["stages"]["target"]["history"]) for run in (resumed, whole)]
    assert history[0] == history[1] and resumed.metrics["test"] == whole.metrics["test"]
    a, b = _resnet_state(whole.run_dir / "model"), _resnet_state(resumed.run_dir / "model")
    assert a and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)



def test_the_resnet_weights_come_from_the_feature_pipelines_weight_handling(setup, tmp_path, monkeypatch):
    """A local .pth of the whole torchvision model is loaded (and frozen); 'default' without the file, offline, and a
    missing file are one-line errors naming model.resnet_weights."""
    _, encoder = setup
    torch.manual_seed(3)
    source = _tiny_resnet()
    torch.save(source.state_dict(), tmp_path / "resnet.pth")
    model = _model(encoder, resnet_weights=str(tmp_path / "resnet.pth"))
    assert torch.equal(model.resnet[0].weight, source.conv1.weight) and torch.equal(model.resnet[7][0].conv2.weight, source.layer4[0].conv2.weight)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("XLINGUAL_OFFLINE", "1")
    for weights, error in (("default", "model.resnet_weights default: torchvision's resnet152 weights are not in"),
                           (str(tmp_path / "none.pth"), f"model.resnet_weights {tmp_path / 'none.pth'}: no such file")):
        with pytest.raises((ConfigError, ModelNotFoundError)) as err:
            _model(encoder, resnet_weights=weights)
        assert str(err.value).startswith(error) and "\n" not in str(err.value)


TINY_RESNET = '''
from dataclasses import replace
from torchvision.models.resnet import BasicBlock, ResNet
from xlingual.features.backbones import BACKBONES
BACKBONES["resnet152"] = replace(BACKBONES["resnet152"], channels=512, build_full=lambda: ResNet(BasicBlock, [1, 1, 1, 1]))
'''


def test_a_reference_run_killed_with_sigkill_resumes_to_the_uninterrupted_result(setup, tmp_path):
    """kill -9 at step 7 (a loader worker decoding crops): the resume starts from step 6's checkpoint, its BatchNorm
    statistics included, and ends where an uninterrupted run ends."""
    import os
    import signal
    import subprocess
    import sys

    from tests.test_mner2_vit_finetune import KILLED_AT_STEP

    data_dir, encoder = setup
    overrides = _overrides(data_dir, encoder, "save_every_steps=2", "model.vit_workers=1")
    config = load_config("tgt_only", "2mner", None, overrides, source=[], target="mmnerd")
    whole = train_run(config, tmp_path / "whole")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, "-c", TINY_RESNET + KILLED_AT_STEP, json.dumps(overrides), str(tmp_path / "cut"), "7"],
                            capture_output=True, text=True, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    cut = RunFolder(tmp_path / "cut")
    assert not cut.metrics.exists()
    assert json.loads(cut.stage("target").loop_state.read_text(encoding="utf-8"))["global_step"] == 6
    resumed = train_run(config, tmp_path / "cut", resume=True)
    history = [timeless(run.metrics["stages"]["target"]["history"]) for run in (resumed, whole)]
    assert history[0] == history[1] and resumed.metrics["test"] == whole.metrics["test"]
    a, b = _resnet_state(whole.run_dir / "model"), _resnet_state(resumed.run_dir / "model")
    assert a and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

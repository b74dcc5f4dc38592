"""The frozen image encoders: two CNNs giving a 7x7 grid of region features, and CLIP's ViT giving tokens.

ACN reads VGG16's last pooling layer (pool5, 512 channels); UMT reads
ResNet-152's last convolutional block (layer4, 2048 channels). Both give a
(C, 7, 7) map on a 224x224 input, stored as (49, C) with region r = 7*row + col.
2M-NER reads CLIP ViT-B/32's 50 output tokens of 768 (:mod:`xlingual.features.clip`,
loaded through transformers, with its own weights options); the functions
below dispatch on the backbone, so extraction and the cache treat all three alike.

For the CNNs:

Weights come from one of three places, and the cache records which
(:func:`weights_identity`), so features of different weights never mix:

* ``"default"``: torchvision's ImageNet weights, the ones the original code
  used (``IMAGENET1K_V1`` for both: ``vgg16-397923af.pth``,
  ``resnet152-b121ed2d.pth``). Read from ``TORCH_HOME`` when present,
  downloaded once otherwise; without a network this fails at once with a
  message naming the alternatives.
* a path to a local ``.pth`` state dict of the full torchvision model;
* ``"random"``: random initialisation under the seed, for smoke runs and speed
  measurements.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.features.choices import Backbone
from xlingual.features.clip import DEFAULT_CLIP_MODEL, ClipSpec, clip_region_shape, clip_weights_identity, load_clip, load_clip_config, load_clip_preprocessing
from xlingual.features.preprocess import ClipPreprocessing
from xlingual.io import file_digest

logger = logging.getLogger(__name__)

GRID = 7
REGIONS = GRID * GRID


@dataclass(frozen=True)
class BackboneSpec:
    """What the cache and the models need to know about one backbone."""

    name: str
    channels: int
    default_weights_url: str
    build_full: Callable[[], nn.Module]
    """Builds the whole torchvision classifier (random weights), so full state dicts load strictly."""
    truncate: Callable[[nn.Module], nn.Module]
    """Keeps the part that outputs the (C, 7, 7) map."""
    summary: str

    @property
    def region_shape(self) -> tuple[int, int]:
        return (REGIONS, self.channels)


def _classifier(name: str) -> nn.Module:
    """torchvision's whole classifier ``name`` (``vgg16``, ``resnet152``) with random weights."""
    from torchvision import models

    return getattr(models, name)(weights=None)


def _vgg_pool5(model: nn.Module) -> nn.Module:
    # ``features`` ends with the fifth max-pool: (512, 7, 7) for a 224 input.
    return nn.Sequential(model.features, nn.AdaptiveAvgPool2d(GRID))


def _resnet_layer4(model: nn.Module) -> nn.Module:
    # Everything up to layer4; the adaptive pool is an identity for 224 inputs (as in UMT).
    body = [model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3, model.layer4]
    return nn.Sequential(*body, nn.AdaptiveAvgPool2d(GRID))


TORCHVISION_CHECKPOINTS = "https://download.pytorch.org/models"
"""Where torchvision's ``IMAGENET1K_V1`` files lie: the weights the original code used."""


def _cnn(backbone: Backbone, channels: int, checkpoint: str, truncate: Callable[[nn.Module], nn.Module], summary: str) -> BackboneSpec:
    """A torchvision CNN whose name is the backbone's, with its ImageNet checkpoint file."""
    return BackboneSpec(backbone.value, channels, f"{TORCHVISION_CHECKPOINTS}/{checkpoint}", partial(_classifier, backbone.value), truncate, summary)


BACKBONES: dict[str, BackboneSpec | ClipSpec] = {
    Backbone.VGG16.value: _cnn(Backbone.VGG16, 512, "vgg16-397923af.pth", _vgg_pool5, "VGG16 pool5, 49x512 (ACN)"),
    Backbone.RESNET152.value: _cnn(Backbone.RESNET152, 2048, "resnet152-b121ed2d.pth", _resnet_layer4, "ResNet-152 layer4, 49x2048 (UMT)"),
    Backbone.CLIP_VIT_B32.value: ClipSpec(Backbone.CLIP_VIT_B32.value, tokens=50, channels=768, default_model=DEFAULT_CLIP_MODEL,
                                          summary="CLIP ViT-B/32 last_hidden_state, 50x768 tokens (2M-NER)"),
}


def get_backbone(name: str) -> BackboneSpec | ClipSpec:
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone '{name}' (choose from {', '.join(BACKBONES)})")
    return BACKBONES[name]


def region_shape(backbone: str, weights: str) -> tuple[int, int]:
    """The (regions, C) array a cache of this backbone and these weights holds per image."""
    spec = get_backbone(backbone)
    return clip_region_shape(spec, weights) if isinstance(spec, ClipSpec) else spec.region_shape


def input_transform(backbone: str, weights: str) -> ClipPreprocessing | None:
    """The weights' own preprocessing where a backbone has one (CLIP); None for the CNNs (:mod:`.preprocess`)."""
    return load_clip_preprocessing(weights) if isinstance(get_backbone(backbone), ClipSpec) else None


def ensure_weights(backbone: str, weights: str) -> None:
    """Fail now, before any file is hashed, when the weights cannot be had (download once where needed)."""
    spec = get_backbone(backbone)
    if isinstance(spec, ClipSpec):
        load_clip_config(weights)
    elif weights == "default":
        fetch_default_weights(spec)
    elif weights != "random" and not Path(weights).is_file():
        raise _no_such_file(weights)


def _offline() -> bool:
    return any(os.environ.get(var, "") not in ("", "0", "false") for var in ("XLINGUAL_OFFLINE", "HF_HUB_OFFLINE"))


def default_weights_path(spec: BackboneSpec) -> Path:
    """Where torchvision keeps the downloaded file (``$TORCH_HOME/hub/checkpoints/<file>``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(spec.default_weights_url).path).name


WEIGHTS_OPTION = "--weights"
"""How errors name the weights option: ``xl features extract``'s flag, or the model option that passes it on (``model.resnet_weights``)."""


def _unreachable(spec: BackboneSpec, why: str, option: str = WEIGHTS_OPTION) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"{option} default: torchvision's {spec.name} weights are not in {default_weights_path(spec)} and cannot be "
        f"downloaded ({why}); copy the file there, pass {option} PATH (a local .pth), or {option} random for a smoke run"
    )


def _no_such_file(weights: str, option: str = WEIGHTS_OPTION) -> ConfigError:
    return ConfigError(f"{option} {weights}: no such file (use 'default', 'random' or a path to a .pth state dict)")


def fetch_default_weights(spec: BackboneSpec, option: str = WEIGHTS_OPTION) -> Path:
    """The cached torchvision file, downloading it once when a network is reachable; fails fast otherwise."""
    target = default_weights_path(spec)
    if target.is_file():
        return target
    if _offline():
        raise _unreachable(spec, "offline mode is set", option)
    host = urlparse(spec.default_weights_url).hostname or ""
    try:  # a cheap reachability probe, so a machine without network fails in seconds, not minutes
        socket.create_connection((host, 443), timeout=5).close()
    except OSError as err:
        raise _unreachable(spec, f"{host} unreachable: {err}", option) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s to %s", spec.default_weights_url, target)
    try:
        torch.hub.download_url_to_file(spec.default_weights_url, str(target), progress=True)
    except Exception as err:  # urllib raises many kinds; all mean the same to the user
        raise _unreachable(spec, f"download failed: {err}", option) from None
    return target


def weights_identity(backbone: str, weights: str, seed: int) -> str:
    """A string that differs whenever the weights differ; stored in the cache to refuse mixing."""
    spec = get_backbone(backbone)
    if isinstance(spec, ClipSpec):
        return clip_weights_identity(weights, seed)
    if weights == "random":
        return f"random:seed={seed}"
    if weights == "default":
        return f"torchvision:{Path(urlparse(spec.default_weights_url).path).name}"
    path = Path(weights)
    if not path.is_file():
        raise _no_such_file(weights)
    return f"file:sha256={file_digest(path)[:16]}"


def _read_state_dict(path: Path, option: str = WEIGHTS_OPTION) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelNotFoundError(f"{option} {path}: cannot read as a PyTorch state dict ({type(err).__name__}: {err})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelNotFoundError(f"{option} {path}: expected a state dict, found {type(state).__name__}")
    return state


def _init_random(extractor: nn.Module, seed: int) -> None:
    """torchvision's initialisation of the kept layers, under ``seed``; residual branches start at zero.

    Zeroing each ResNet block's last BatchNorm scale (torchvision's
    ``zero_init_residual``) keeps random ResNet-152 activations finite: without
    it they grow through the 50 blocks past float16's range.
    """
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for module in extractor.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
                module.reset_running_stats()
        for module in extractor.modules():
            last_norm = getattr(module, "bn3", None)
            if isinstance(last_norm, nn.BatchNorm2d):
                nn.init.zeros_(last_norm.weight)
    finally:
        torch.random.set_rng_state(generator_state)


def load_backbone(backbone: str, weights: str = "default", seed: int = 0, option: str = WEIGHTS_OPTION) -> nn.Module:
    """The frozen feature extractor in eval mode: input (B, 3, 224, 224), output (B, C, 7, 7) for a CNN, (B, 50, 768) for CLIP.

    ``option`` is how errors name ``weights`` (the option the user set)."""
    spec = get_backbone(backbone)
    if isinstance(spec, ClipSpec):
        return load_clip(weights, seed)
    if weights == "default":
        path: Path | None = fetch_default_weights(spec, option)
    elif weights == "random":
        path = None
    else:
        path = Path(weights)
        if not path.is_file():
            raise _no_such_file(weights, option)
    with torch.device("meta"):  # no time spent initialising layers (VGG's classifier alone is 120M) that are replaced or cut
        model = spec.build_full()
    if path is None:
        extractor = spec.truncate(model).to_empty(device="cpu")
        _init_random(extractor, seed)
    else:
        state = _read_state_dict(path, option)
        try:
            model.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as err:
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            detail = lines[1] if len(lines) > 1 else lines[0]
            raise ModelNotFoundError(f"{option} {path}: not a torchvision {spec.name} state dict ({detail[:200]})") from None
        extractor = spec.truncate(model).float()
    extractor.eval()
    for parameter in extractor.parameters():
        parameter.requires_grad_(False)
    return extractor

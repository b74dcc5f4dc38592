"""CLIP ViT-B/32 as a frozen image encoder: every output token, for 2M-NER.

What is stored per image: ``last_hidden_state`` of transformers'
``CLIPVisionModel``, all tokens (the CLS token first, then the 7x7 patches in
row-major order: 50 x 768 for ViT-B/32). That is the encoder's output before
CLIP's post-layernorm, which only the pooled output passes through; it is
what the 2M-NER reference code (wangdsh/MMNERD ``model/mmner.py``) reads:
``vit_out.last_hidden_state``, all 50 tokens, flattened for the contrastive
head and attended over by the words.

``--weights`` names the model, and the cache records which
(:func:`clip_weights_identity`), so features of different weights never mix:

* ``"default"``: ``openai/clip-vit-base-patch32`` from the model hub (read from
  the Hugging Face cache when present);
* a local folder written by ``save_pretrained`` (a ``CLIPVisionModel``, or a
  whole ``CLIPModel`` whose vision tower is taken, as the hub checkpoint is);
* any other hub id of a CLIP model;
* ``"random"``: a full-size ViT-B/32 (``CLIPVisionConfig()``'s defaults) with
  transformers' initialisation under the seed, for smoke runs and speed
  measurements.

The image preprocessing is the model's own (its ``preprocessor_config.json``,
see :class:`~xlingual.features.preprocess.ClipPreprocessing`); without one,
CLIP's defaults at the model's input size.

transformers is imported only here and only when a CLIP backbone is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.features.choices import DEFAULT_CLIP_MODEL
from xlingual.features.preprocess import ClipPreprocessing
from xlingual.io import file_digest

if TYPE_CHECKING:
    from transformers import CLIPVisionConfig

    from xlingual.hub import ModelSource

logger = logging.getLogger(__name__)

PREPROCESSOR_FILE = "preprocessor_config.json"
CLIP_MODEL_TYPES = ("clip_vision_model", "clip")
"""A vision tower's own config, or a whole CLIP model's (whose ``vision_config`` is read)."""
VIT_MODEL_TYPES = ("vit",)
"""A plain ViT (``google/vit-base-patch16-224``: 197 tokens), the 2M-NER reference's other image encoder; read with
transformers' ``ViTModel`` (no pooler) and ViTImageProcessor's defaults."""
VISION_MODEL_TYPES = CLIP_MODEL_TYPES + VIT_MODEL_TYPES
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class ClipSpec:
    """What the cache and the models need to know about a CLIP vision backbone."""

    name: str
    tokens: int
    """Output tokens of the default model: 1 CLS + (224 / 32)^2 patches."""
    channels: int
    default_model: str
    summary: str

    @property
    def region_shape(self) -> tuple[int, int]:
        return (self.tokens, self.channels)


def clip_source(weights: str) -> str | None:
    """The hub id or folder to load, or None for random weights; a file (e.g. a .pth) is refused."""
    if weights == "random":
        return None
    if weights == "default":
        return DEFAULT_CLIP_MODEL
    path = Path(weights)
    if path.is_file():
        raise ConfigError(
            f"--weights {weights}: a file; the CLIP backbone takes 'default', a hub id, a folder written by "
            "save_pretrained, or 'random'"
        )
    return weights


def _folder_digest(folder: Path) -> str:
    """SHA-256 over the files that decide the outputs: config, preprocessing and every weight file."""
    names = ["config.json", PREPROCESSOR_FILE] + sorted(
        p.name for p in folder.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES
    )
    combined = hashlib.sha256()
    for name in names:
        path = folder / name
        if path.is_file():
            combined.update(f"{name}\0{file_digest(path)}\0".encode())
    return combined.hexdigest()


def clip_weights_identity(weights: str, seed: int) -> str:
    """``random:seed=N``, ``hub:<id>`` or ``folder:sha256=<16 hex>``: differs whenever the weights differ.

    A hub id is recorded as such (like torchvision's file name for the CNNs),
    so a complete cache is usable on a machine that has no copy of the model.
    """
    source = clip_source(weights)
    if source is None:
        return f"random:seed={seed}"
    folder = Path(source)
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(f"--weights {weights}: folder has no config.json (save the model with save_pretrained)")
        return f"folder:sha256={_folder_digest(folder)[:16]}"
    return f"hub:{source}"


def _resolve(weights: str) -> "ModelSource | None":
    """Where to load the weights from (None for random), offline-first: a hub id is looked up in the local
    Hugging Face cache before the network is tried, so a missing model fails in seconds, not after retries."""
    from xlingual.hub import resolve_model

    source = clip_source(weights)
    if source is None:
        return None
    try:
        return resolve_model(source)
    except ModelNotFoundError as err:
        reason = str(err).split("; ")[0]
        raise ModelNotFoundError(
            f"--weights {weights}: {reason}; pass a hub id or a save_pretrained folder of a CLIP model "
            "(offline: a local folder), or --weights random for a smoke run"
        ) from None


def _unloadable(weights: str, what: str, err: Exception) -> ModelNotFoundError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ModelNotFoundError(
        f"--weights {weights}: cannot load the CLIP {what} ({reason[:200]}); pass a hub id or a save_pretrained folder "
        "of a CLIP model (offline: a local folder), or --weights random for a smoke run"
    )


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' load report lists the text tower a whole CLIPModel checkpoint carries as "unexpected";
    that is the normal case here, and what matters (nothing missing) is checked after loading."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def load_clip_config(weights: str) -> "CLIPVisionConfig":
    """The vision config (full-size ViT-B/32 for ``random``; a ``ViTConfig`` for a plain ViT); fails fast when the model
    cannot be reached or is neither CLIP nor a ViT."""
    from transformers import CLIPVisionConfig, ViTConfig

    source = _resolve(weights)
    if source is None:
        return CLIPVisionConfig()
    try:
        with _quiet_transformers():
            config = CLIPVisionConfig.from_pretrained(source.location, local_files_only=source.local_files_only)
    except Exception as err:  # OSError offline or missing, ValueError/JSON errors for a damaged file: one line either way
        raise _unloadable(weights, "config", err) from None
    if config.model_type in VIT_MODEL_TYPES:
        with _quiet_transformers():
            return ViTConfig.from_pretrained(source.location, local_files_only=source.local_files_only)
    if config.model_type not in CLIP_MODEL_TYPES:
        raise ModelNotFoundError(f"--weights {weights}: a '{config.model_type}' model, not CLIP ({' or '.join(CLIP_MODEL_TYPES)}) "
                                 f"or a ViT ({' or '.join(VIT_MODEL_TYPES)})")
    return config


def vision_family(config: Any) -> str:
    """``vit`` for a plain ViT's config, ``clip`` for CLIP's: whose preprocessing defaults apply."""
    return "vit" if config.model_type in VIT_MODEL_TYPES else "clip"


def vision_model_class(config: Any) -> tuple[type, dict[str, Any]]:
    """The transformers class that holds ``config``'s vision model, and the keywords it is built or loaded with.

    CLIP's vision tower is ``CLIPVisionModel``; a plain ViT is ``ViTModel``
    without its pooler (the tokens are read, never the pooled output, and an
    unused pooler would get no gradient when the ViT is fine-tuned).
    """
    from transformers import CLIPVisionModel, ViTModel

    if vision_family(config) == "vit":
        return ViTModel, {"add_pooling_layer": False}
    return CLIPVisionModel, {}


def vision_model_from_config(config: Any) -> nn.Module:
    """A randomly initialised vision model of ``config`` (CLIP's vision tower, or a ViT without pooler)."""
    model_class, options = vision_model_class(config)
    return model_class(config, **options)


def clip_region_shape(spec: ClipSpec, weights: str) -> tuple[int, int]:
    """(tokens, width) the cache will hold: the spec's for the default model and random weights, else from the config."""
    if weights in ("default", "random"):
        return spec.region_shape
    return vision_token_shape(load_clip_config(weights))


def vision_token_shape(config: Any) -> tuple[int, int]:
    """(tokens, width) a ViT with this vision config gives: one [CLS] and one token per patch."""
    return ((config.image_size // config.patch_size) ** 2 + 1, config.hidden_size)


def _preprocessor_settings(source: "ModelSource", weights: str) -> dict[str, Any] | None:
    """The model's ``preprocessor_config.json`` as a dict, or None when it has none."""
    if source.is_local_dir:
        path: Path | None = Path(source.location) / PREPROCESSOR_FILE
        if not path.is_file():
            return None
    else:
        from transformers.utils import cached_file

        try:
            found = cached_file(source.location, PREPROCESSOR_FILE, local_files_only=source.local_files_only,
                                _raise_exceptions_for_missing_entries=False)
        except (OSError, ValueError) as err:
            raise _unloadable(weights, "image preprocessing", err) from None
        if found is None:
            return None
        path = Path(found)
    return read_preprocessor_settings(path)


def read_preprocessor_settings(path: Path) -> dict[str, Any]:
    """A ``preprocessor_config.json`` as a dict: a model's, or the one a saved 2M-NER model keeps beside its fine-tuned ViT."""
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: bad JSON, or bytes that are not UTF-8
        raise ModelNotFoundError(f"{path}: unreadable image preprocessing settings ({err})") from None
    if not isinstance(settings, dict):
        raise ModelNotFoundError(f"{path}: expected a JSON object")
    return settings


def load_clip_preprocessing(weights: str) -> ClipPreprocessing:
    """The model's own preprocessing; CLIP's defaults at the model's input size when it ships none.

    Refuses settings whose output size is not the model's input size (the
    position embeddings fit one size only).
    """
    source = _resolve(weights)
    config = load_clip_config(weights)
    settings = _preprocessor_settings(source, weights) if source is not None else None
    family = vision_family(config)
    if settings is None:
        settings = {"size": config.image_size, "crop_size": config.image_size}
        if source is not None:
            logger.info("%s: no %s; %s's default preprocessing at %dx%d", source.name, PREPROCESSOR_FILE, family.upper(),
                        config.image_size, config.image_size)
        return ClipPreprocessing.from_config(settings, "defaults", family)
    where = f"{source.name}/{PREPROCESSOR_FILE}"
    steps = ClipPreprocessing.from_config(settings, where, family)
    output = steps.crop or steps.resize_to
    if output != (config.image_size, config.image_size):
        raise ModelNotFoundError(f"{where}: makes {output} inputs but the model takes {config.image_size}x{config.image_size}")
    return steps


class ClipTokens(nn.Module):
    """A CLIP vision model whose forward returns every output token: (B, 3, S, S) -> (B, tokens, width)."""

    def __init__(self, vision: nn.Module) -> None:
        super().__init__()
        self.vision = vision

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.vision(pixel_values=pixel_values).last_hidden_state


def load_clip(weights: str, seed: int = 0) -> ClipTokens:
    """The frozen CLIP vision encoder (or a plain ViT's, :data:`VIT_MODEL_TYPES`) in eval mode, float32."""
    source = _resolve(weights)
    if source is None:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            vision = vision_model_from_config(load_clip_config(weights))
        finally:
            torch.random.set_rng_state(generator_state)
    else:
        config = load_clip_config(weights)  # refuses other model types before transformers fills their gaps with random weights
        model_class, options = vision_model_class(config)
        try:
            with _quiet_transformers():
                vision, loading = model_class.from_pretrained(
                    source.location, local_files_only=source.local_files_only, dtype=torch.float32, output_loading_info=True, **options,
                )
        except Exception as err:  # OSError, safetensors' own errors for a damaged file, size mismatches: one line
            raise _unloadable(weights, "vision model", err) from None
        missing = [*loading.get("missing_keys", ()), *loading.get("mismatched_keys", ())]
        if missing:
            raise ModelNotFoundError(
                f"--weights {weights}: {len(missing)} weights of the CLIP vision model are not in the checkpoint "
                f"(first: {sorted(map(str, missing))[0]}); they would be random"
            )
    model = ClipTokens(vision.float())
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


__all__ = [
    "DEFAULT_CLIP_MODEL", "ClipSpec", "ClipTokens", "clip_region_shape", "vision_token_shape", "clip_source", "clip_weights_identity",
    "VIT_MODEL_TYPES", "load_clip", "load_clip_config", "load_clip_preprocessing", "read_preprocessor_settings", "vision_family",
    "vision_model_class", "vision_model_from_config",
]

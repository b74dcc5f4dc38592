"""What every MNER model in xlingual shares, implemented once.

The engine in :mod:`xlingual.train` knows only :class:`MnerModel`, so ACN, UMT
and future models train, evaluate, save and predict through one code path:

* ``encode(samples, visual)`` turns samples into per-sample feature dicts once
  per dataset: the model's own text encoding (``_encode_text``) plus, for a
  multimodal model, each post's region features and whether it had an image;
* ``collate(items)`` pads a list of those into a batch of tensors (the model
  pads its text fields in ``_collate_text``; regions are padded here);
* ``forward(batch)`` returns a dict with ``loss`` (a scalar) when the batch has
  labels;
* ``decode(batch)`` returns one label list per sample, aligned to the sample's
  original tokens, in the canonical schema; tokens the model never saw
  (cut by truncation, or with no word piece) are predicted ``O``;
* ``save_pretrained(dir)`` / ``from_pretrained(dir)`` store config, weights
  (safetensors) and vocabularies in one folder and rebuild the model from it,
  in evaluation mode, for either variant (text-only or multimodal) of the
  saved weights.

A model supplies its layers, its text encoding and the hooks marked abstract
below; adding one is one module, one :class:`ModelConfig` subclass and one
line in :data:`xlingual.models.MODEL_CLASSES` (see docs/models.md).
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import nn

from xlingual.data.labels import CANONICAL_LABELS
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, DataFormatError, ModelNotFoundError
from xlingual.models.serialization import load_model_weights, read_model_config, save_model_folder
from xlingual.models.vocab import Vocabulary

logger = logging.getLogger(__name__)

VisualLookup = Callable[[Sample], tuple[np.ndarray, bool]]
"""Returns a sample's visual input, (regions, channels) float32, and whether it had a usable image."""


NON_MODEL_KEYS = frozenset({"type", "model_type", "name", "images", "backbone"})
"""Keys a training config may carry beside a model's own options; model configs ignore them."""

ConfigT = TypeVar("ConfigT", bound="ModelConfig")
_CANONICAL = frozenset(CANONICAL_LABELS)


@dataclasses.dataclass
class ModelConfig:
    """Base of every model's config dataclass (the ``model`` section of a training config).

    Subclasses are dataclasses with the model's options as fields; every model
    has ``use_image`` (multimodal or text-only) and ``visual_dim`` (channels
    of its region features).
    """

    fixed_on_load: ClassVar[frozenset[str]] = frozenset()
    """Options that fix weight shapes: ``from_pretrained`` refuses to override them."""

    @classmethod
    def from_dict(cls: type[ConfigT], values: Mapping[str, Any]) -> ConfigT:
        """Build and validate; an unknown key is a one-line ``model.<key>`` error.

        Rejecting unknown keys (instead of ignoring them) is what makes a typo in
        ``--set model.max_lenght=128`` fail loudly rather than train the wrong model.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known - NON_MODEL_KEYS)
        if unknown:
            raise ConfigError(f"model.{unknown[0]}: unknown option (known: {', '.join(sorted(known))})")
        config = cls(**{k: v for k, v in values.items() if k in known})
        config.validate()
        return config

    def validate(self) -> None:
        """Raise a ``model.<key>`` :class:`ConfigError` for a value the model cannot use."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def gate_by_image(signal: torch.Tensor, has_image: torch.Tensor) -> torch.Tensor:
    """``signal`` (B, ...) with the rows of image-less posts zeroed: such a post contributes no visual signal.

    Without this, a post with no image would attend over zero region features
    and still receive a (learnt, image-independent) visual contribution.
    """
    return signal * has_image.to(signal.dtype).view(-1, *([1] * (signal.dim() - 1)))


_CANONICAL = frozenset(CANONICAL_LABELS)


def canonical_label_ids(sample: Sample, labels: Vocabulary, count: int) -> np.ndarray:
    """Ids in ``labels`` of the sample's first ``count`` labels; a label outside the canonical BIO set is a one-line error naming the token."""
    ids = []
    for position, label in enumerate(sample.labels[:count]):
        if label not in _CANONICAL:
            raise DataFormatError(None, None, f"sample {sample.id}, token {position + 1}: label '{label}' is not canonical BIO ({', '.join(CANONICAL_LABELS)})")
        ids.append(labels.id(label))
    return np.array(ids, dtype=np.int64)


def labels_at_positions(tag_ids: Sequence[int], positions: Sequence[int], labels: Vocabulary) -> list[str]:
    """One canonical label per original token: token ``i`` reads ``tag_ids[positions[i]]``.

    A position of -1 (or past the decoded path) is a token the model never saw
    (cut by truncation, no word piece); it is predicted ``O``, as is any
    non-canonical tag (padding, ``X``, ``[CLS]``, ``[SEP]``). Tags are kept as
    decoded otherwise (an ``I-`` after ``O`` stays, so strict IOB2 scoring sees it).
    """
    out = []
    for position in positions:
        label = labels.label(tag_ids[position]) if 0 <= position < len(tag_ids) else "O"
        out.append(label if label in _CANONICAL else "O")
    return out


class MnerModel(nn.Module, ABC):
    """Base class of the MNER models (see the module docstring for the contract)."""

    model_type: ClassVar[str] = ""
    """The name in ``MODEL_CLASSES`` and in a saved ``config.json``."""
    config_class: ClassVar[type[ModelConfig]]
    visual_modules: ClassVar[tuple[str, ...]] = ()
    """Names of the child modules only the multimodal variant has; every other weight is shared with the text-only one."""
    region_hint: ClassVar[str] = ""
    """Which image features the model reads, shown when a feature cache has the wrong shape."""

    config: Any  # an instance of ``config_class``

    @classmethod
    def visual_lookup_from(cls, caches: Sequence[Any], mode: str = "all", seed: int = 0) -> VisualLookup:
        """The model's visual lookup from its open feature caches (``FeatureCache``), in the order the run's config names them.

        Most models read one cache's regions per post; a model that reads
        several (2M-NER) overrides this, so training, ``predict`` and
        ``evaluate`` build its inputs the same way.
        """
        from xlingual.features import visual_lookup

        if len(caches) != 1:
            raise ConfigError(f"{cls.model_type} reads one feature cache, got {len(caches)} ({', '.join(str(c.cache_dir) for c in caches)})")
        return visual_lookup(caches[0], mode=mode, seed=seed)

    # ------------------------------------------------------------------ what a model supplies

    @classmethod
    @abstractmethod
    def build(cls, config: dict[str, Any], vocab_samples: Sequence[Sample]) -> "MnerModel":
        """A new, untrained model from the ``model`` section of a training config.

        ``vocab_samples`` are all samples the model will ever see in this run
        (every stage, every split): ACN builds its word/character vocabularies
        from them, so a pre-trained ACN fine-tunes with no vocabulary change.
        """

    @classmethod
    @abstractmethod
    def _from_saved(cls, config: Any, extras: dict[str, Any], directory: Path) -> "MnerModel":
        """An instance with the saved ``config`` and vocabularies (``extras``), weights not yet loaded."""

    @classmethod
    def label_maps(cls) -> dict[str, list[str]]:
        """The label vocabularies saved in ``config.json`` extras; a folder with different ones is refused."""
        return {}

    def _extras(self) -> dict[str, Any]:
        """What else ``config.json`` stores beside the label maps (e.g. ACN's word and character vocabularies)."""
        return {}

    def _save_files(self, directory: Path) -> None:
        """Files a model folder needs beside config and weights (e.g. UMT's encoder config and tokenizer)."""

    @abstractmethod
    def _encode_text(self, samples: Sequence[Sample]) -> list[dict[str, Any]]:
        """The model's text features per sample (ids, labels, token bookkeeping)."""

    @abstractmethod
    def _collate_text(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The padded text fields of a batch."""

    @abstractmethod
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ...

    @abstractmethod
    def _viterbi(self, batch: dict[str, torch.Tensor]) -> tuple[list[list[int]], Vocabulary]:
        """The best tag path per post (ids in the returned vocabulary), one tag per model position."""

    @abstractmethod
    def _token_positions(self, batch: dict[str, torch.Tensor]) -> list[list[int]]:
        """Per post, the model position of each original token (-1 for one the model did not see)."""

    def _expected_regions(self) -> int | None:
        """The number of regions every post must have, or None when any number will do."""
        return None

    # ------------------------------------------------------------------ data

    def encode(self, samples: Sequence[Sample], visual: VisualLookup | None = None) -> list[dict[str, Any]]:
        """Text features and (multimodal) region features per sample.

        With ``use_image`` and no ``visual`` lookup, every post is image-less:
        zero features and no visual signal (see :func:`gate_by_image`).
        """
        if self.config.use_image and visual is None and samples:
            logger.warning("%s is multimodal but no image features were given: %d posts are treated as having no image",
                           self.model_type.upper(), len(samples))
        items = self._encode_text(samples)
        if self.config.use_image:
            for item, sample in zip(items, samples):
                item["regions"], item["has_image"] = self._regions(sample, visual)
        return items

    def _regions(self, sample: Sample, visual: VisualLookup | None) -> tuple[np.ndarray | None, bool]:
        """A post's region features as the lookup returns them (a memory-mapped cache stays on disk until collation).

        An image-less post keeps no features (``None``): collation gives it
        zero regions whatever the lookup returned, so nothing but its text
        decides its prediction.
        """
        if visual is None:
            return None, False
        regions, has_image = visual(sample)
        regions = np.asarray(regions)
        count = self._expected_regions()
        if regions.ndim != 2 or regions.shape[1] != self.config.visual_dim or (count is not None and regions.shape[0] != count):
            expected = f"({'regions' if count is None else count}, {self.config.visual_dim})"
            raise ConfigError(f"model.visual_dim: sample {sample.id} has image features of shape {tuple(regions.shape)}, "
                              f"{self.model_type.upper()} expects {expected}; {self.region_hint}")
        return (regions, True) if has_image else (None, False)

    def collate(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The padded batch: the model's text fields, then ``regions`` (B, R, C) and ``has_image`` (B,)."""
        batch = self._collate_text(items)
        if self.config.use_image:
            batch["regions"], batch["has_image"] = self._collate_regions(items)
        return batch

    def _collate_regions(self, items: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Posts without features get zero regions (and ``has_image`` False); all posts of a batch share one shape."""
        shapes = {tuple(item["regions"].shape) for item in items if item["regions"] is not None}
        if len(shapes) > 1:
            raise ConfigError(f"model.visual_dim: posts in one batch have visual features of different shapes {sorted(shapes)}")
        shape = shapes.pop() if shapes else (self._expected_regions() or 1, self.config.visual_dim)
        regions = np.zeros((len(items), *shape), dtype=np.float32)
        for row, item in enumerate(items):
            if item["regions"] is not None:
                regions[row] = item["regions"]
        has_image = torch.tensor([bool(item["has_image"]) for item in items], dtype=torch.bool)
        return torch.from_numpy(regions), has_image

    # ------------------------------------------------------------------ decoding

    @torch.no_grad()
    def decode(self, batch: dict[str, torch.Tensor]) -> list[list[str]]:
        """Viterbi labels per original token (see :func:`labels_at_positions`)."""
        paths, labels = self._viterbi(batch)
        return [labels_at_positions(path, positions, labels) for path, positions in zip(paths, self._token_positions(batch))]

    @torch.no_grad()
    def predict(self, samples: Sequence[Sample], visual: VisualLookup | None = None, batch_size: int = 32) -> list[list[str]]:
        """Labels for ``samples``, in order; the model's training mode is restored afterwards."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        items = self.encode(samples, visual)
        out: list[list[str]] = []
        for start in range(0, len(items), batch_size):
            batch = self.collate(items[start : start + batch_size])
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            out.extend(self.decode(batch))
        self.train(was_training)
        return out

    # ------------------------------------------------------------------ persistence

    def save_pretrained(self, directory: str | Path) -> None:
        """Config, weights and vocabularies (plus the model's own files) in one folder: reloading needs nothing else."""
        directory = Path(directory)
        self._save_files(directory)
        extras = {**self.label_maps(), **self._extras()}
        save_model_folder(directory, self.model_type, self.config.to_dict(), self.state_dict(), extras)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides: Any) -> "MnerModel":
        """Rebuild a saved model, in evaluation mode; ``overrides`` change config fields that do not fix weight shapes.

        ``use_image`` may be overridden either way: a multimodal checkpoint
        loads as text-only (its visual branch is dropped) and a text-only one
        as multimodal (the visual branch starts from its initialisation).
        A folder that is not a model of this type is a :class:`ModelNotFoundError`.
        Returned in ``eval()`` mode, as transformers does: a loaded model
        predicts deterministically until ``train()`` is called.
        """
        directory = Path(directory)
        saved = read_model_config(directory)
        name = cls.model_type.upper()
        if saved.get("model_type") != cls.model_type:
            raise ModelNotFoundError(f"{directory}: holds a '{saved.get('model_type')}' model, not {name}")
        fixed = sorted(set(overrides) & cls.config_class.fixed_on_load)
        if fixed:
            raise ConfigError(f"model.{fixed[0]}: cannot be changed when loading a trained {name} (it fixes weight shapes)")
        extras = saved.get("extras", {})
        for key, expected in cls.label_maps().items():
            if extras.get(key, expected) != expected:
                raise ModelNotFoundError(f"{directory}: saved {key} {extras.get(key)} differ from {name}'s {expected}")
        config = cls.config_class.from_dict({**saved["config"], **overrides})
        model = cls._from_saved(config, extras, directory)
        model._load_weights(load_model_weights(directory), directory)
        return model.eval()

    def _load_weights(self, state: dict[str, torch.Tensor], directory: Path) -> None:
        """Load ``state``; only the visual branch may be absent (text-only checkpoint) or extra (text-only model)."""
        prefixes = tuple(f"{name}." for name in self.visual_modules)
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as err:  # a tensor of another shape
            detail = str(err).strip().splitlines()[-1].strip()
            raise ModelNotFoundError(f"{directory}: weights do not match the config ({detail})") from None
        multimodal = self.config.use_image
        bad = [k for k in missing if not (multimodal and k.startswith(prefixes))]
        bad += [k for k in unexpected if not (not multimodal and k.startswith(prefixes))]
        if bad:
            raise ModelNotFoundError(f"{directory}: weights do not match the config (e.g. {bad[0]}); was an option that shapes the weights changed?")
        if missing:
            logger.warning("%s: text-only %s loaded as multimodal; the visual branch starts from its initialisation", directory, self.model_type.upper())
        if unexpected:
            logger.info("%s: visual branch weights ignored (use_image is off)", directory)


__all__ = ["ModelConfig", "MnerModel", "NON_MODEL_KEYS", "VisualLookup", "gate_by_image", "labels_at_positions"]

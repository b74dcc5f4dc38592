"""What every MNER model in xlingual offers to the training engine.

The engine in :mod:`xlingual.train` knows only this interface, so ACN, UMT
and future models train, evaluate, save and predict through one code path:

* ``encode(samples, visual)`` turns samples into per-sample feature dicts once
  per dataset (tokenisation, vocabulary lookup, label alignment, visual input);
* ``collate(items)`` pads a list of those into a batch of tensors;
* ``forward(batch)`` returns a dict with ``loss`` (a scalar) when the batch has
  labels;
* ``decode(batch)`` returns one label list per sample, aligned to the sample's
  original tokens (tokens cut by truncation are predicted ``O``), in the
  canonical schema;
* ``save_pretrained(dir)`` / ``from_pretrained(dir)`` store config, weights
  (safetensors) and the label map / vocabularies in one folder.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from xlingual.data.sample import Sample
from xlingual.errors import ConfigError

VisualLookup = Callable[[Sample], tuple[np.ndarray, bool]]
"""Returns a sample's visual input, (regions, channels) float32, and whether it had a usable image."""


NON_MODEL_KEYS = frozenset({"type", "model_type", "name", "images", "backbone"})
"""Keys a training config may carry beside a model's own options; model configs ignore them."""


class _ValidatedConfig(Protocol):
    def validate(self) -> None: ...


ConfigT = TypeVar("ConfigT", bound=_ValidatedConfig)


def config_from_dict(cls: type[ConfigT], values: Mapping[str, Any], model_name: str) -> ConfigT:
    """Build and validate a model config dataclass; an unknown key is a one-line ``model.<key>`` error.

    Rejecting unknown keys (instead of ignoring them) is what makes a typo in
    ``--set model.max_lenght=128`` fail loudly rather than train the wrong model.
    """
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known - NON_MODEL_KEYS)
    if unknown:
        raise ConfigError(f"model.{unknown[0]}: unknown {model_name} option (known: {', '.join(sorted(known))})")
    config = cls(**{k: v for k, v in values.items() if k in known})
    config.validate()
    return config


class MnerModel(nn.Module, ABC):
    """Base class of the MNER models (see the module docstring for the contract)."""

    model_type: str = ""

    @classmethod
    @abstractmethod
    def build(cls, config: dict[str, Any], vocab_samples: Sequence[Sample]) -> "MnerModel":
        """A new, untrained model from the ``model`` section of a training config.

        ``vocab_samples`` are all samples the model will ever see in this run
        (every stage, every split): ACN builds its word/character vocabularies
        from them, so a pre-trained ACN fine-tunes with no vocabulary change.
        """

    @abstractmethod
    def encode(self, samples: Sequence[Sample], visual: VisualLookup | None = None) -> list[dict[str, Any]]:
        ...

    @abstractmethod
    def collate(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ...

    @abstractmethod
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ...

    @abstractmethod
    def decode(self, batch: dict[str, torch.Tensor]) -> list[list[str]]:
        ...

    @abstractmethod
    def save_pretrained(self, directory: str | Path) -> None:
        ...

    @classmethod
    @abstractmethod
    def from_pretrained(cls, directory: str | Path, **overrides: Any) -> "MnerModel":
        ...

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

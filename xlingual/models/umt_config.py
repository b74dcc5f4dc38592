"""UMT's options: the ``model`` section of a UMT training config.

Kept apart from the model's layers so a training config is checked without
importing torch (:mod:`xlingual.models.config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from xlingual.errors import ConfigError
from xlingual.models.config import ModelConfig


@dataclass
class UmtConfig(ModelConfig):
    """UMT's settings (the ``model`` section of a training config); defaults follow docs/models.md, UMT."""

    encoder: str = "bert-base-cased"
    """Hub id or local folder of any ``AutoModel`` encoder (bert-base-chinese, bert-base-multilingual-cased…)."""
    max_length: int = 128
    """Word pieces per post including [CLS]/[SEP]: 128 for Twitter, 250 for CMNER."""
    use_image: bool = True
    freeze_bottom_layers: int = 0
    """Freeze the embeddings and the bottom N encoder layers (3 for mBERT cross-lingual runs); 0 freezes nothing."""
    cross_heads: int = 12
    visual_dim: int = 2048
    num_visual_regions: int = 49
    extra_linear: bool = False
    """The CMNER copy's Linear(H, H) on the encoder output (docs/models.md, UMT deviations)."""
    scrambled_regions: bool = False
    """Reproduce the CMNER copy's reshape of (2048, 7, 7) maps straight to (49, 2048) (docs/models.md, UMT deviations)."""
    loss_reduction: str = "mean"
    """CRF loss over the batch: "mean" (original UMT) or "sum" (CMNER copy)."""
    aux_weight: float = 0.5
    """lambda: weight of the span-detection CRF loss."""
    alpha: float = 0.5
    """Weight of the main emissions against the converted span emissions."""
    dropout: float = 0.1

    fixed_on_load: ClassVar[frozenset[str]] = frozenset({"encoder", "visual_dim", "extra_linear"})
    """The encoder is rebuilt from the saved folder; the other two fix weight shapes."""

    def pretrained_weights(self) -> dict[str, str]:
        return {"model.encoder": self.encoder}

    def validate(self) -> None:
        if self.max_length < 3:
            raise ConfigError(f"model.max_length must be at least 3, not {self.max_length}")
        if self.loss_reduction not in ("mean", "sum"):
            raise ConfigError(f"model.loss_reduction must be 'mean' or 'sum', not {self.loss_reduction!r}")
        if self.freeze_bottom_layers < 0:
            raise ConfigError(f"model.freeze_bottom_layers must be >= 0, not {self.freeze_bottom_layers}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"model.alpha must be in [0, 1], not {self.alpha}")


__all__ = ["UmtConfig"]

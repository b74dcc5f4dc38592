"""ACN's options: the ``model`` section of an ACN training config.

Kept apart from the model's layers so a training config is checked without
importing torch (:mod:`xlingual.models.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from xlingual.errors import ConfigError
from xlingual.models.config import ModelConfig


@dataclass
class AcnConfig(ModelConfig):
    """ACN's hyper-parameters (defaults: the CMNER reference, docs/models.md, ACN).

    ``max_length`` of ``None`` is resolved at build time: 250 when any sample
    is Chinese (CMNER posts are counted in characters), else 35. ``word_dim``
    is taken from the vectors file when one is given.
    """

    word_vectors: str | list[str] | None = None
    freeze_embeddings: bool = True
    word_dim: int = 300
    char_dim: int = 30
    char_filters: int = 32
    char_kernels: list[int] = field(default_factory=lambda: [2, 3, 4])
    char_out: int = 50
    max_word_len: int = 30
    hidden: int = 200
    max_length: int | None = None
    dropout: float = 0.25
    use_image: bool = True
    visual_dim: int = 512
    mask_padding: bool = True
    max_words: int | None = None
    max_chars: int | None = None
    seed: int = 444

    fixed_on_load: ClassVar[frozenset[str]] = frozenset(
        {"word_dim", "char_dim", "char_filters", "char_kernels", "char_out", "hidden", "visual_dim", "max_words", "max_chars"})

    def validate(self) -> None:
        positive = ("word_dim", "char_dim", "char_filters", "char_out", "max_word_len", "hidden", "visual_dim")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ConfigError(f"model.{name}: must be a positive integer, got {getattr(self, name)!r}")
        if self.hidden % 2:
            raise ConfigError(f"model.hidden: must be even (two LSTM directions), got {self.hidden}")
        if self.max_length is not None and self.max_length <= 0:
            raise ConfigError(f"model.max_length: must be positive, got {self.max_length}")
        if not self.char_kernels or any(k <= 0 for k in self.char_kernels):
            raise ConfigError(f"model.char_kernels: must be positive widths, got {self.char_kernels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout: must be in [0, 1), got {self.dropout}")


__all__ = ["AcnConfig"]

"""2M-NER's options: the ``model`` section of a 2M-NER training config.

Kept apart from the model's layers so a training config is checked without
importing torch (:mod:`xlingual.models.config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from xlingual.features.choices import DEFAULT_CLIP_MODEL, Backbone
from xlingual.errors import ConfigError
from xlingual.models.config import ModelConfig


BRANCHES = ("vit", "resnet")
"""2M-NER's visual branches, in the reference's concatenation order."""

VIT_MODES = ("frozen", "finetune")
"""``model.vit``: the ViT's tokens read from a feature cache, or the ViT run on the images and trained with the model."""

RESNET_MODES = ("cached", "reference")
"""``model.resnet``: the ResNet vector read from a feature cache, or ResNet-152 run on a random crop of the image every step."""

CLIP_BACKBONE = Backbone.CLIP_VIT_B32.value
RESNET_BACKBONE = Backbone.RESNET152.value
DEFAULT_VIT_WEIGHTS = DEFAULT_CLIP_MODEL


@dataclass
class Mner2Config(ModelConfig):
    """2M-NER's settings (the ``model`` section of a training config); defaults follow the reference code."""

    encoder: str = "bert-base-multilingual-cased"
    max_length: int = 512
    """Word pieces per post incl. [CLS]/[SEP]. The reference never truncates, i.e. mBERT's 512; batches pad to their longest post."""
    use_image: bool = True
    """False: the text-only model (the training layer sets this from ``images: none``)."""
    use_vit: bool = True
    """The CLIP ViT-B/32 branch (cross-attention + its contrastive term); off with use_resnet on is "ResNet only"."""
    use_resnet: bool = True
    """The ResNet-152 branch; off with use_vit on is "ViT only"."""
    contrastive: bool = True
    """The NT-Xent alignment terms; off trains on the CRF loss alone (same 2*alpha scale)."""
    alpha: float = 0.8
    """Weight of the CRF loss against the sum of the contrastive terms."""
    temperature: float = 0.5
    vit_tokens: int = 50
    visual_dim: int = 768
    """Channels of the ViT tokens (the base's name for a model's region channels)."""
    resnet_dim: int = 2048
    cross_heads: int | None = None
    """Heads of the ViT cross-attention; None: the encoder's (12 for mBERT, as the reference)."""
    dropout: float = 0.1
    faithful_query_bug: bool = False
    """Reproduce the reference's queries projected with the key weights (needs visual_dim == hidden)."""
    faithful_word_offset: bool = False
    """Reproduce the reference's word gather, one piece too early: [CLS] for the first word, the
    previous word's last piece for the others."""
    vit: str = "frozen"
    """``frozen`` (default, a departure for speed): the ViT tokens come from the clip-vit-b32 feature cache.
    ``finetune`` (the reference): CLIP's ViT is part of the model, runs on each post's raw image every step
    and is optimised with everything else; the run reads the images, not the clip-vit-b32 cache."""
    vit_weights: str = DEFAULT_VIT_WEIGHTS
    """The ViT ``finetune`` starts from: a hub id, a ``save_pretrained`` folder of a CLIP model, or ``random``."""
    vit_workers: int = 2
    """DataLoader worker processes decoding the training images ahead of the step (0: in the loop); used whenever the
    model reads raw images (``vit: finetune`` or ``resnet: reference``)."""
    resnet: str = "cached"
    """``cached`` (default): the ResNet-152 vector is the resnet152 feature cache's, computed once in eval mode
    (``xl features extract``, crop policy ``clean`` or ``faithful``). ``reference`` (the reference's
    ``dataset/data.py`` and ``trainer.py``): torchvision's ResNet-152 is part of the model, frozen (no gradient, not
    optimised) but run every step on a fresh random 224 crop + flip of the raw image (an image smaller than 224 on a side
    resized to 224x224 first), at train *and* at dev/test time, with BatchNorm in the model's mode: batch statistics
    while training, which moves its running statistics; those drifted statistics are used at evaluation and saved
    with the model. The crops are keyed by (seed, epoch, post) while training and (seed, post) at evaluation
    (``xl predict --seed``): reproducible, but test scores vary with the seed because the test crops are random."""
    resnet_weights: str = "default"
    """The ResNet ``reference`` runs: ``default`` (torchvision's ImageNet file, as ``xl features extract --weights``),
    a local ``.pth`` state dict of torchvision's ResNet-152, or ``random``."""

    fixed_on_load: ClassVar[frozenset[str]] = frozenset({"encoder", "visual_dim", "vit_tokens", "resnet_dim", "vit", "vit_weights",
                                                         "resnet", "resnet_weights"})
    """The encoder (and a fine-tuned ViT, a running ResNet) are rebuilt from the saved folder; the visual shapes fix weight shapes."""

    def pretrained_weights(self) -> dict[str, str]:
        weights = {"model.encoder": self.encoder}
        if self.finetunes_vit and self.vit_weights != "random":
            weights["model.vit_weights"] = self.vit_weights
        return weights

    def cached_backbones(self, backbones: tuple[str, ...]) -> tuple[str, ...]:
        """Without the clip-vit-b32 cache when the ViT is fine-tuned, without the resnet152 cache when the ResNet runs (they read the images)."""
        computed = {name for name, runs in ((CLIP_BACKBONE, self.finetunes_vit), (RESNET_BACKBONE, self.runs_resnet)) if runs}
        return tuple(name for name in backbones if name not in computed)

    def validate(self) -> None:
        if self.max_length < 3:
            raise ConfigError(f"model.max_length must be at least 3, not {self.max_length}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"model.alpha must be in [0, 1], not {self.alpha}")
        if self.temperature <= 0:
            raise ConfigError(f"model.temperature must be positive, not {self.temperature}")
        for name in ("vit_tokens", "visual_dim", "resnet_dim"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name} must be positive, not {getattr(self, name)}")
        if self.use_image and not (self.use_vit or self.use_resnet):
            raise ConfigError("model.use_vit and model.use_resnet are both off: set model.use_image=false for the text-only model")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), not {self.dropout}")
        if self.vit not in VIT_MODES:
            raise ConfigError(f"model.vit: choose {' or '.join(VIT_MODES)}, not '{self.vit}'")
        if self.vit == "finetune" and self.use_image and not self.use_vit:
            raise ConfigError("model.vit=finetune trains the ViT branch, which model.use_vit=false removes")
        if self.resnet not in RESNET_MODES:
            raise ConfigError(f"model.resnet: choose {' or '.join(RESNET_MODES)}, not '{self.resnet}'")
        if self.resnet == "reference" and self.use_image and not self.use_resnet:
            raise ConfigError("model.resnet=reference runs the ResNet branch, which model.use_resnet=false removes")
        if self.vit_workers < 0:
            raise ConfigError(f"model.vit_workers must be 0 or more, not {self.vit_workers}")

    @property
    def branches(self) -> tuple[str, ...]:
        """The active visual branches, in the reference's concatenation order (ViT, then ResNet)."""
        if not self.use_image:
            return ()
        return tuple(name for name, on in zip(BRANCHES, (self.use_vit, self.use_resnet)) if on)

    @property
    def finetunes_vit(self) -> bool:
        """The ViT is a trained part of the model (``vit: finetune`` with the ViT branch on)."""
        return self.vit == "finetune" and "vit" in self.branches

    @property
    def runs_resnet(self) -> bool:
        """ResNet-152 is part of the model and runs on each post's image (``resnet: reference`` with the ResNet branch on)."""
        return self.resnet == "reference" and "resnet" in self.branches

    @property
    def reads_images(self) -> bool:
        """The model reads the raw images (a fine-tuned ViT or a running ResNet), not only feature caches."""
        return self.finetunes_vit or self.runs_resnet

    @property
    def uses_contrastive(self) -> bool:
        return self.contrastive and bool(self.branches)


__all__ = ["BRANCHES", "CLIP_BACKBONE", "DEFAULT_VIT_WEIGHTS", "RESNET_BACKBONE", "RESNET_MODES", "VIT_MODES", "Mner2Config"]

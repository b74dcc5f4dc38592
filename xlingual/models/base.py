"""What every MNER model in xlingual shares, implemented once.

The engine in :mod:`xlingual.train` knows only :class:`MnerModel`, so ACN, UMT
and future models train, evaluate, save and predict through one code path:

* ``encode(samples, visual)`` turns samples into per-sample feature dicts once
  per dataset: the model's own text encoding (``_encode_text``) plus, for a
  multimodal model, each post's visual inputs (``visual_inputs``: one
  ``regions`` array by default, named arrays for a model that reads several),
  shape-checked, and whether it had an image;
* ``collate(items)`` pads a list of those into a batch of tensors (the model
  pads its text fields in ``_collate_text``; visual inputs are batched here,
  zeros for a post without an image);
* ``forward(batch)`` returns a dict with ``loss`` (a scalar) when the batch has
  labels;
* ``decode(batch)`` returns one label list per sample, aligned to the sample's
  original tokens, each label one of the model's own (``label_names``);
  tokens the model never saw (cut by truncation, or with no word piece) are
  predicted ``O``;
* ``save_pretrained(dir)`` / ``from_pretrained(dir)`` store config, weights
  (safetensors) and vocabularies in one folder and rebuild the model from it,
  in evaluation mode, for either variant (text-only or multimodal) of the
  saved weights.

A model's labels come from the data: ``build`` takes
:func:`~xlingual.data.labels.label_inventory` of the run's samples (exactly
the nine canonical labels for the built-in datasets, other types' pairs after
them), ``config.json`` keeps them as the model's label maps and
``from_pretrained`` rebuilds the model with them (a folder saved before label
maps were stored has the canonical nine).

A model supplies its layers, its text encoding and the hooks marked abstract
below; adding one is one module, one :class:`ModelConfig` subclass and one
line in :data:`xlingual.models.MODEL_CLASSES` (see docs/models.md).
"""

from __future__ import annotations


import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from xlingual.data.labels import CANONICAL_LABELS, inventory_of
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, DataFormatError, ImageError, ModelNotFoundError
from xlingual.models.card import ModelCard, write_card
from xlingual.models.config import NON_MODEL_KEYS, ModelConfig
from xlingual.models.serialization import load_model_weights, read_model_config, save_model_folder
from xlingual.models.vocab import Vocabulary

logger = logging.getLogger(__name__)

class DeferredArray(ABC):
    """A visual input read when its batch is collated, not when the dataset is encoded (a raw image to decode).

    Its ``shape`` is known without reading, so ``encode`` checks it like an
    array's; :func:`load_deferred` reads it (in the training DataLoader's
    workers), raising :class:`~xlingual.errors.ImageError` for a file that
    cannot be read. :class:`xlingual.features.pixels.DeferredPixels` is one.
    A base class rather than a runtime-checked protocol: collation tests every
    value of every item, every step, and a class check costs a thirtieth.
    """

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]: ...

    @abstractmethod
    def load(self) -> np.ndarray: ...

    def for_epoch(self, epoch: int) -> "DeferredArray":
        """The input as training epoch ``epoch`` reads it: itself, unless it is drawn anew each epoch (a random crop)."""
        return self


VisualLookup = Callable[[Sample], tuple[np.ndarray | DeferredArray | Mapping[str, np.ndarray | DeferredArray], bool]]
"""Returns a sample's visual input and whether it had a usable image.

The input is one array for a model that reads one (ACN, UMT: (regions, channels)
float32), or one array per name for a model that reads several (2M-NER: ``vit``
and ``resnet``; ``vit_pixels`` instead of ``vit`` when it fine-tunes its ViT,
a :class:`DeferredArray`); see :class:`VisualInput`.
"""


def load_deferred(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` with every :class:`DeferredArray` read: the training DataLoader's collation, run in its workers.

    New dicts are returned (the encoded dataset keeps its deferred entries,
    so memory does not grow with the epochs). An input that cannot be read
    makes its post image-less (``has_image`` off, so collation gives it
    zeros in every visual input), as a broken image is in a feature cache.
    """
    out = []
    for item in items:
        if not any(isinstance(value, DeferredArray) for value in item.values()):
            out.append(item)
            continue
        item = dict(item)
        for key, value in item.items():
            if isinstance(value, DeferredArray):
                try:
                    item[key] = value.load()
                except ImageError as err:
                    logger.warning("%s; the post is treated as having no image", err)
                    item[key], item["has_image"] = None, False
        out.append(item)
    return out


class EpochItems(torch.utils.data.Dataset):
    """A model's encoded training items as the DataLoader reads them in one epoch (:meth:`set_epoch`).

    An item holding a :class:`DeferredArray` is returned with each such value
    as that epoch reads it (:meth:`DeferredArray.for_epoch`), so an input
    drawn anew every epoch (2M-NER's reference ResNet crops) depends on
    (seed, epoch, post) only: the same in a resumed epoch, in any worker
    process. Other items are returned as they are.
    """

    def __init__(self, items: Sequence[dict[str, Any]]) -> None:
        self.items = items
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        if not any(isinstance(value, DeferredArray) for value in item.values()):
            return item
        return {key: value.for_epoch(self.epoch) if isinstance(value, DeferredArray) else value for key, value in item.items()}


def _array_or_deferred(value: Any) -> np.ndarray | DeferredArray:
    return value if isinstance(value, DeferredArray) else np.asarray(value)


@dataclasses.dataclass(frozen=True)
class VisualInput:
    """One array a multimodal model reads per post: its name and the shape the model needs.

    The name is both the key in the lookup's mapping (when the model reads
    several inputs) and the batch key ``collate`` writes it to, so the model's
    layers read ``batch[name]``. Each entry of ``shape`` is a size, or a word
    (e.g. ``"regions"``) for an axis of any size, on which the posts of one
    batch must agree; such an axis is 1 in a batch with no image at all.
    """

    name: str
    shape: tuple[int | str, ...]
    option: str
    """The model option(s) that set the shape, named first in a shape error (``model.visual_dim``)."""
    hint: str
    """Which features give this input, the end of a shape error."""
    label: str = ""
    """What errors call these features (``"{label} features"``); the name when empty."""

    @property
    def called(self) -> str:
        return self.label or self.name

    def matches(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.shape) and all(isinstance(want, str) or want == got for want, got in zip(self.shape, shape))

    def empty_shape(self) -> tuple[int, ...]:
        """One post's shape in a batch where no post has the input: free axes are 1."""
        return tuple(1 if isinstance(size, str) else size for size in self.shape)

    def expected(self) -> str:
        """The shape as errors show it: ``(regions, 512)``, ``(2048,)``."""
        sizes = [str(size) for size in self.shape]
        return f"({', '.join(sizes)}{',' if len(sizes) == 1 else ''})"


def gate_by_image(signal: torch.Tensor, has_image: torch.Tensor) -> torch.Tensor:
    """``signal`` (B, ...) with the rows of image-less posts zeroed: such a post contributes no visual signal.

    Without this, a post with no image would attend over zero region features
    and still receive a (learnt, image-independent) visual contribution.
    """
    return signal * has_image.to(signal.dtype).view(-1, *([1] * (signal.dim() - 1)))


def checked_labels(sample: Sample, label_names: Sequence[str], count: int | None = None) -> list[str]:
    """The sample's first ``count`` labels (all with ``None``); one outside ``label_names`` (the model's) is a one-line error naming the token.

    Training data must only carry labels the model was built with: a label
    the model has no state for cannot be learnt, and silently reading it as
    another label would teach the model a wrong one.
    """
    labels = list(sample.labels if count is None else sample.labels[:count])
    known = frozenset(label_names)
    for position, label in enumerate(labels):
        if label not in known:
            allowed = "canonical BIO" if tuple(label_names) == CANONICAL_LABELS else "one of the model's labels"
            raise DataFormatError(None, None, f"sample {sample.id}, token {position + 1}: label '{label}' is not {allowed} ({', '.join(label_names)})")
    return labels


def sample_label_ids(sample: Sample, labels: Vocabulary, count: int, label_names: Sequence[str]) -> np.ndarray:
    """Ids in ``labels`` of the sample's first ``count`` labels, checked by :func:`checked_labels`."""
    return np.array(labels.ids(checked_labels(sample, label_names, count)), dtype=np.int64)


def labels_at_positions(tag_ids: Sequence[int], positions: Sequence[int], labels: Vocabulary, label_names: Collection[str]) -> list[str]:
    """One label of ``label_names`` (the model's) per original token: token ``i`` reads ``tag_ids[positions[i]]``.

    A position of -1 (or past the decoded path) is a token the model never saw
    (cut by truncation, no word piece); it is predicted ``O``, as is any tag
    that is not one of the model's labels (padding, ``X``, ``[CLS]``,
    ``[SEP]``). Tags are kept as decoded otherwise (an ``I-`` after ``O``
    stays, so strict IOB2 scoring sees it).
    """
    out = []
    for position in positions:
        label = labels.label(tag_ids[position]) if 0 <= position < len(tag_ids) else "O"
        out.append(label if label in label_names else "O")
    return out


def unlabelled(samples: Sequence[Sample]) -> list[Sample]:
    """Copies of ``samples`` labelled all ``O``: what prediction encodes, so gold labels (of any type) never reach a model."""
    return [dataclasses.replace(sample, labels=["O"] * len(sample.tokens)) for sample in samples]


class MnerModel(nn.Module, ABC):
    """Base class of the MNER models (see the module docstring for the contract)."""

    model_type: ClassVar[str] = ""
    """The name in ``MODEL_CLASSES`` and in a saved ``config.json``."""
    config_class: ClassVar[type[ModelConfig]]
    visual_modules: ClassVar[tuple[str, ...]] = ()
    """Names of the child modules only the multimodal variant has; every other weight is shared with the text-only one."""
    region_hint: ClassVar[str] = ""
    """Which image features the model reads, shown when its lookup gives the wrong shape or structure."""
    named_visual_inputs: ClassVar[bool] = False
    """True: the model's lookup returns a mapping from input name to array (2M-NER, even with one branch on);
    False: one bare array, the model's single visual input (ACN, UMT)."""

    config: Any  # an instance of ``config_class``
    label_names: tuple[str, ...]
    """The model's labels (``O``, then ``B-``/``I-`` pairs, as :func:`~xlingual.data.labels.inventory_of` orders them): all it can predict."""

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

    @property
    def loader_workers(self) -> int:
        """Worker processes of the training DataLoader: 0 (the loop's process) unless the model reads deferred inputs."""
        return 0

    @classmethod
    def visual_combiner(cls, options: Mapping[str, Any], image_folders: Sequence[Path],
                        model: "MnerModel | None" = None) -> Callable[[Sequence[Any], str, int], VisualLookup]:
        """What turns the run's open feature caches (and ``mode``, ``seed``) into the model's lookup.

        ``options`` is the model section (training) or ``model.config`` (a
        trained ``model``, passed too); ``image_folders`` are where the
        posts' images lie. The default reads caches only
        (:meth:`visual_lookup_from`); a model that reads raw images (2M-NER
        fine-tuning its ViT) builds its lookup from the folders as well.
        """
        return cls.visual_lookup_from

    # ------------------------------------------------------------------ what a model supplies

    @classmethod
    @abstractmethod
    def build(cls, config: dict[str, Any], vocab_samples: Sequence[Sample]) -> "MnerModel":
        """A new, untrained model from the ``model`` section of a training config.

        ``vocab_samples`` are all samples the model will ever see in this run
        (every stage, every split): every model takes its labels from them
        (:func:`~xlingual.data.labels.label_inventory`), and ACN builds its
        word/character vocabularies from them, so a pre-trained model
        fine-tunes with no vocabulary change.
        """

    @classmethod
    @abstractmethod
    def _from_saved(cls, config: Any, extras: dict[str, Any], directory: Path, label_names: Sequence[str]) -> "MnerModel":
        """An instance with the saved ``config``, vocabularies (``extras``) and labels, weights not yet loaded."""

    @classmethod
    def label_maps_for(cls, label_names: Sequence[str]) -> dict[str, list[str]]:
        """The label vocabularies ``config.json`` stores for a model with these labels (its specials included)."""
        return {}

    def label_maps(self) -> dict[str, list[str]]:
        """This model's label vocabularies, as saved in ``config.json`` extras."""
        return self.label_maps_for(self.label_names)

    @classmethod
    def _saved_label_names(cls, extras: Mapping[str, Any], directory: Path) -> list[str]:
        """The labels a saved folder's label maps name; a map that is not what this model would save for them is refused.

        A folder saved before label maps were stored has the canonical nine.
        The maps are re-derived from the types they name and must match
        exactly, so a reordered or edited map (which would decode every tag
        as the wrong label) cannot load.
        """
        keys = cls.label_maps_for(CANONICAL_LABELS)
        saved = {key: extras[key] for key in keys if key in extras}
        if not saved:
            return list(CANONICAL_LABELS)
        label_names = inventory_of(label for labels in saved.values() for label in labels if isinstance(label, str))
        expected = cls.label_maps_for(label_names)
        for key, value in saved.items():
            if value != expected[key]:
                raise ModelNotFoundError(f"{directory}: saved {key} {value} differ from {cls.model_type.upper()}'s label map for their types {expected[key]}")
        return label_names

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
        """The number of regions every post must have, or None when any number will do (the default ``regions`` input)."""
        return None

    def visual_inputs(self) -> tuple[VisualInput, ...]:
        """The arrays the multimodal variant reads per post; ``encode`` checks them and ``collate`` batches them under their names.

        The default is one ``regions`` array of ``_expected_regions()`` (or any
        number of) regions by ``config.visual_dim`` channels, which the lookup
        returns as a bare array. A model reading several arrays (2M-NER)
        overrides this and sets ``named_visual_inputs``: its lookup returns a
        mapping from these names.
        """
        count = self._expected_regions()
        return (VisualInput("regions", ("regions" if count is None else count, self.config.visual_dim),
                            option="model.visual_dim", hint=self.region_hint, label="image"),)

    # ------------------------------------------------------------------ data

    def encode(self, samples: Sequence[Sample], visual: VisualLookup | None = None) -> list[dict[str, Any]]:
        """Text features and (multimodal) each visual input per sample, under the input's name, plus ``has_image``.

        With ``use_image`` and no ``visual`` lookup, every post is image-less:
        zero features and no visual signal (see :func:`gate_by_image`).
        """
        if self.config.use_image and visual is None and samples:
            logger.warning("%s is multimodal but no image features were given: %d posts are treated as having no image",
                           self.model_type.upper(), len(samples))
        items = self._encode_text(samples)
        if self.config.use_image:
            inputs = self.visual_inputs()
            for item, sample in zip(items, samples):
                arrays, item["has_image"] = self._visual_arrays(sample, visual, inputs)
                for spec in inputs:
                    item[spec.name] = None if arrays is None else arrays[spec.name]
        return items

    def _visual_arrays(self, sample: Sample, visual: VisualLookup | None,
                       inputs: Sequence[VisualInput]) -> tuple[dict[str, np.ndarray] | None, bool]:
        """A post's visual inputs as the lookup returns them (a memory-mapped cache stays on disk until collation), shape-checked.

        Every post's shapes are checked, with or without an image, so a wrong
        feature cache fails on the first post. An image-less post then keeps
        nothing (``None``): collation gives it zeros whatever the lookup
        returned, so nothing but its text decides its prediction.
        """
        if visual is None:
            return None, False
        features, has_image = visual(sample)
        if not self.named_visual_inputs:
            (single,) = inputs
            arrays = {single.name: _array_or_deferred(features)}
        elif not isinstance(features, Mapping):
            raise ConfigError(f"sample {sample.id}: image features are one array of shape {np.shape(features)}; {self.region_hint}")
        else:
            absent = [spec.name for spec in inputs if spec.name not in features]
            if absent:
                raise ConfigError(f"sample {sample.id}: image features have no '{absent[0]}' array (got {', '.join(map(str, features)) or 'none'}); {self.region_hint}")
            arrays = {spec.name: _array_or_deferred(features[spec.name]) for spec in inputs}
        for spec in inputs:
            shape = tuple(arrays[spec.name].shape)
            if not spec.matches(shape):
                raise ConfigError(f"{spec.option}: sample {sample.id} has {spec.called} features of shape {shape}, "
                                  f"{self.model_type.upper()} expects {spec.expected()}; {spec.hint}")
        return (arrays, True) if has_image else (None, False)

    def collate(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The padded batch: the model's text fields, then (multimodal) one tensor per visual input (B, *shape) and ``has_image`` (B,).

        Deferred inputs not yet read (evaluation batches) are read here (:func:`load_deferred`).
        """
        items = load_deferred(items)
        batch = self._collate_text(items)
        if self.config.use_image:
            for spec in self.visual_inputs():
                batch[spec.name] = self._collate_input(spec, [item[spec.name] if item["has_image"] else None for item in items])
            batch["has_image"] = torch.tensor([bool(item["has_image"]) for item in items], dtype=torch.bool)
        return batch

    @staticmethod
    def _collate_input(spec: VisualInput, arrays: Sequence[np.ndarray | None]) -> torch.Tensor:
        """Posts without features get zeros; all posts of a batch share one shape (float32, whatever the cache stores)."""
        shapes = {tuple(array.shape) for array in arrays if array is not None}
        if len(shapes) > 1:
            raise ConfigError(f"{spec.option}: posts in one batch have {spec.called} features of different shapes {sorted(shapes)}")
        shape = shapes.pop() if shapes else spec.empty_shape()
        out = np.zeros((len(arrays), *shape), dtype=np.float32)
        for row, array in enumerate(arrays):
            if array is not None:
                out[row] = array
        return torch.from_numpy(out)

    # ------------------------------------------------------------------ decoding

    @torch.no_grad()
    def decode(self, batch: dict[str, torch.Tensor]) -> list[list[str]]:
        """Viterbi labels per original token (see :func:`labels_at_positions`)."""
        paths, labels = self._viterbi(batch)
        names = frozenset(self.label_names)
        return [labels_at_positions(path, positions, labels, names) for path, positions in zip(paths, self._token_positions(batch))]

    @torch.no_grad()
    def predict(self, samples: Sequence[Sample], visual: VisualLookup | None = None, batch_size: int = 32) -> list[list[str]]:
        """Labels for ``samples``, in order, each one of ``label_names``; the model's training mode is restored afterwards.

        The samples' own labels are ignored (never encoded), so a file whose
        gold labels include types the model lacks is still predicted (and its
        scores show those types as missed).
        """
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        items = self.encode(unlabelled(samples), visual)
        out: list[list[str]] = []
        for start in range(0, len(items), batch_size):
            batch = self.collate(items[start : start + batch_size])
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            out.extend(self.decode(batch))
        self.train(was_training)
        return out

    # ------------------------------------------------------------------ persistence

    def save_pretrained(self, directory: str | Path, card: ModelCard | None = None) -> None:
        """Config, weights and vocabularies (plus the model's own files) in one folder: reloading needs nothing else.

        The folder also gets a ``README.md`` model card (:mod:`xlingual.models.card`)
        from what ``card`` says (a training run passes its facts), read by nothing.
        """
        directory = Path(directory)
        self._save_files(directory)
        extras = {**self.label_maps(), **self._extras()}
        save_model_folder(directory, self.model_type, self.config.to_dict(), self.state_dict(), extras)
        write_card(directory, card, self.model_type, self.label_names)

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
        label_names = cls._saved_label_names(extras, directory)
        config = cls.config_class.from_dict({**saved["config"], **overrides})
        model = cls._from_saved(config, extras, directory, label_names)
        model._load_weights(load_model_weights(directory), directory)
        return model.eval()

    def _load_weights(self, state: dict[str, torch.Tensor], directory: Path) -> None:
        """Load ``state``; only weights :meth:`_optional_weight` allows may be missing or extra (the visual branch).

        A weight named in ``reshaped_by_switches`` whose shape differs from
        the model's is left out, so that layer starts fresh. Any other
        missing, extra or reshaped weight is refused.
        """
        own = self.state_dict()
        state = {k: v for k, v in state.items() if not (k in self.reshaped_by_switches and k in own and own[k].shape != v.shape)}
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as err:  # a tensor of another shape
            detail = str(err).strip().splitlines()[-1].strip()
            raise ModelNotFoundError(f"{directory}: weights do not match the config ({detail})") from None
        bad = [k for k in missing if not self._optional_weight(k, missing=True)]
        bad += [k for k in unexpected if not self._optional_weight(k, missing=False)]
        if bad:
            raise ModelNotFoundError(f"{directory}: weights do not match the config (e.g. {bad[0]}); was an option that shapes the weights changed?")
        if missing:
            logger.warning("%s: %s not in the checkpoint; they start from their initialisation", directory, self._modules_of(missing))
        if unexpected:
            logger.info("%s: weights of switched-off parts ignored (%s)", directory, self._modules_of(unexpected))

    reshaped_by_switches: ClassVar[tuple[str, ...]] = ()
    """Weights whose shape an option that may change on load sets (2M-NER's fusion layer): one of another shape starts fresh."""

    def _optional_weight(self, key: str, missing: bool) -> bool:
        """Whether a checkpoint may lack (``missing``) or carry extra this weight: the visual branch's, missing only
        from a text-only checkpoint loaded as multimodal, extra only in one loaded as text-only."""
        return key.startswith(tuple(f"{name}." for name in self.visual_modules)) and self.config.use_image == missing

    def _modules_of(self, keys: Sequence[str]) -> str:
        """The visual modules ``keys`` belong to, as the load messages name them."""
        return ", ".join(sorted({name for key in keys for name in self.visual_modules if key.startswith(f"{name}.")}))

__all__ = ["DeferredArray", "EpochItems", "ModelConfig", "MnerModel", "NON_MODEL_KEYS", "VisualInput", "VisualLookup", "checked_labels", "gate_by_image", "load_deferred",
           "labels_at_positions", "sample_label_ids", "unlabelled"]

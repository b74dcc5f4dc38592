"""Datasets: the :class:`Sample` record, the dataset registry, file formats, label schemas, images, statistics."""

from xlingual.data.datasets import SPLITS, DatasetSpec, available_datasets, get_dataset, load_split
from xlingual.data.formats import detect_format, parse_file, read_samples, write_samples
from xlingual.data.images import ImageIndex, attach_images
from xlingual.data.labels import ENTITY_TYPES, BioPolicy, spans
from xlingual.data.labels import Span
from xlingual.data.sample import Sample

__all__ = [
    "DATASETS", "SPLITS", "ENTITY_TYPES", "BioPolicy", "DatasetSpec", "ImageIndex", "Sample", "Span",
    "attach_images", "available_datasets", "detect_format", "get_dataset", "load_split", "parse_file",
    "read_samples", "spans", "write_samples",
]


def __getattr__(name: str) -> object:
    """``DATASETS``, read and checked when first asked for (:func:`xlingual.data.datasets.builtin_datasets`)."""
    if name == "DATASETS":
        from xlingual.data.datasets import builtin_datasets

        return builtin_datasets()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

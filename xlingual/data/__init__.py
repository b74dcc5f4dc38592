"""Datasets: the :class:`Sample` record, file formats, label schemas, images, statistics."""

from xlingual.data.datasets import DATASETS, SPLITS, get_dataset, load_split
from xlingual.data.formats import detect_format, parse_file, read_samples, write_samples
from xlingual.data.images import ImageIndex, attach_images
from xlingual.data.labels import ENTITY_TYPES, BioPolicy, spans
from xlingual.data.labels import Span
from xlingual.data.sample import Sample

__all__ = [
    "DATASETS", "SPLITS", "ENTITY_TYPES", "BioPolicy", "ImageIndex", "Sample", "Span",
    "attach_images", "detect_format", "get_dataset", "load_split", "parse_file",
    "read_samples", "spans", "write_samples",
]

"""The datasets xlingual knows: language, format, split files, public sources.

Where their files lie in a data directory is :mod:`xlingual.workspace`'s
business (``DataDir.split_file``, ``DataDir.images_dir``). Splits are called
``train``, ``dev`` and ``test`` everywhere in the library; the file names
(Twitter's ``valid.txt``) are a detail of each dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from xlingual.data.formats import read_samples
from xlingual.data.images import attach_images
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, XlingualError
from xlingual.workspace import DataDir

SPLITS: tuple[str, ...] = ("train", "dev", "test")


@dataclass(frozen=True)
class RemoteFile:
    url: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """A known dataset: its language, format, split files and public sources."""

    name: str
    lang: str
    format: str
    text_subdir: str
    split_files: dict[str, str]
    images_subdir: str
    remote: dict[str, RemoteFile]
    images_hint: str



_UMT = "https://raw.githubusercontent.com/jefferyYu/UMT/master/data"
_CMNER = "https://raw.githubusercontent.com/Jyz99/CMNER/main/text"
_MMNERD = "https://raw.githubusercontent.com/wangdsh/MMNERD/dda173b4088b4f05576da24ec787c81aba687082/train_valid_test/train_valid_test_en"
"""Pinned to the commit whose files the checksums below describe (2024-02-04), not a branch that may move."""

DATASETS: dict[str, DatasetSpec] = {
    "twitter2015": DatasetSpec(
        name="twitter2015", lang="en", format="twitter", text_subdir="twitter2015",
        split_files={"train": "train.txt", "dev": "valid.txt", "test": "test.txt"},
        images_subdir="twitter2015/images",
        remote={
            "train.txt": RemoteFile(f"{_UMT}/twitter2015/train.txt", 670884, "a6246e37aa1c8acd738747fa8257e01775f2a1cc0d4f36f82f9d41d6246ad6fa"),
            "valid.txt": RemoteFile(f"{_UMT}/twitter2015/valid.txt", 168308, "9dcc7f9df7331de3c9cdf67a3450e041c41c6254b5e43925c576e2dfaaabe2ad"),
            "test.txt": RemoteFile(f"{_UMT}/twitter2015/test.txt", 550697, "edb2665b89bfe58bca06a2c10b9b31cbfa95456135b6a4cbf55c872e48d9b8f9"),
        },
        images_hint="Images: download 'twitter15_images' from the link in the jefferyYu/UMT README and unpack the .jpg files into {images}",
    ),
    "twitter2017": DatasetSpec(
        name="twitter2017", lang="en", format="twitter", text_subdir="twitter2017",
        split_files={"train": "train.txt", "dev": "valid.txt", "test": "test.txt"},
        images_subdir="twitter2017/images",
        remote={
            "train.txt": RemoteFile(f"{_UMT}/twitter2017/train.txt", 474906, "801e149e8635b19d66b4ec1212c329be340ada501b35c5fa55455fb6f53633be"),
            "valid.txt": RemoteFile(f"{_UMT}/twitter2017/valid.txt", 101346, "41b5db90cb32059c14c2c3ccd50845fb77f1e3d3e4f7d0c210a61bc507d8a73e"),
            "test.txt": RemoteFile(f"{_UMT}/twitter2017/test.txt", 102522, "a7d9e172ae85bd3e35276eb2b01ce223321bdc92a47b234e24305d72e7a05243"),
        },
        images_hint="Images: download 'twitter17_images' from the link in the jefferyYu/UMT README and unpack the .jpg files into {images}",
    ),
    "cmner": DatasetSpec(
        name="cmner", lang="zh", format="cmner", text_subdir="cmner/text",
        split_files={"train": "train.txt", "dev": "dev.txt", "test": "test.txt"},
        images_subdir="cmner/images",
        remote={
            "train.txt": RemoteFile(f"{_CMNER}/train.txt", 2520671, "a382775c2969e891c82f0c85a7a63dca19f019d6d4324f3b70424d5f447d50d5"),
            "dev.txt": RemoteFile(f"{_CMNER}/dev.txt", 859418, "7c93b6ceee8f33868fefbbd1d104dbef3afe795009148f25155272cbfbce6990"),
            "test.txt": RemoteFile(f"{_CMNER}/test.txt", 843689, "4fc1f132b5902d6e34fbb33a5637d04b45255a8003dbbe9306ca86bb1572c302"),
        },
        images_hint="Images: the Jyz99/CMNER README points to a cloud drive (images/weibo_images); unpack the <wid>_<id>.jpg files into {images}",
    ),
    "mmnerd": DatasetSpec(
        # 2M-NER's dataset (Wang et al. 2024): the English text splits are public (19,968 / 2,463 / 2,533 posts,
        # Twitter format; 2,982 of the posts carry Twitter2017 IMGIDs, 2,936 with Twitter2017's tokens); the images and
        # the French, German and Spanish splits are not.
        name="mmnerd", lang="en", format="twitter", text_subdir="mmnerd",
        split_files={"train": "train.txt", "dev": "valid.txt", "test": "test.txt"},
        images_subdir="mmnerd/images",
        remote={
            "train.txt": RemoteFile(f"{_MMNERD}/train_conll_format.txt", 3986045, "09460256b558b0f6a828a495dbd113c6e278546d271150d01118b41aade2536f"),
            "valid.txt": RemoteFile(f"{_MMNERD}/valid_conll_format.txt", 490249, "58185cc1f77ea7f590c1d632c102b1cc7727013a637560dfc9d4eca0128241fd"),
            "test.txt": RemoteFile(f"{_MMNERD}/test_conll_format.txt", 507637, "187de233e976ee35b84c890eddfc7abe7a4c9b346afae7a113e0216c2f574608"),
        },
        images_hint=(
            "Images: not public; the MMNERD authors share the images (and the fr/de/es splits) on request by e-mail to "
            "wangdsh@pku.edu.cn (github.com/wangdsh/MMNERD README). Put each post's <IMGID>.jpg into {images}"
        ),
    ),
}

DatasetName = Enum("DatasetName", {name.upper(): name for name in DATASETS}, type=str)  # type: ignore[misc]
"""The known datasets as a choice (``xl data download DATASET``), generated from :data:`DATASETS`."""

SOURCE_DATASET_BY_LANG: dict[str, str] = {"en": "twitter2015", "zh": "cmner"}
"""The dataset each language's experiments start from (CMNER paper, §5)."""


def get_dataset(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset '{name}' (choose from {', '.join(DATASETS)})")
    return DATASETS[name]


def load_split(data_dir: str | Path, dataset: str, split: str, with_images: bool = True, bio: str = "repair") -> list[Sample]:
    """Read one split of a known dataset from ``data_dir``; attach images when its image folder exists.

    ``bio="keep"`` reads the labels as written (scoring); the default repairs orphan ``I-`` tags (training).
    """
    spec = get_dataset(dataset)
    layout = DataDir(data_dir)
    path = layout.split_file(dataset, split)
    if not path.exists():
        raise XlingualError(f"{path}: not found (run 'xl data download {dataset} --to {data_dir}' or pass --data-dir)")
    samples = read_samples(path, spec.format, bio)
    images = layout.images_dir(dataset)
    if with_images and images.is_dir():
        attach_images(samples, images)
    return samples

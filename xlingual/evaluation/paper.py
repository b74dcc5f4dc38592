"""The CMNER paper's published numbers (Ji et al. 2024, Tables 2-4), printed beside ours.

Keys: (model, direction, setting, images). Table 2's rows are target-only
runs on CMNER (direction en-zh) with images none / one / all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperRow:
    precision: float
    recall: float
    f1: float
    per_type_f1: dict[str, float] | None = None


TABLE2: dict[tuple[str, str], PaperRow] = {
    ("acn", "none"): PaperRow(73.37, 72.55, 72.93, {"PER": 78.62, "LOC": 67.15, "ORG": 73.80, "MISC": 73.87}),
    ("acn", "one"): PaperRow(76.04, 71.33, 73.62, {"PER": 79.02, "LOC": 67.39, "ORG": 75.01, "MISC": 73.55}),
    ("acn", "all"): PaperRow(76.26, 72.34, 74.22, {"PER": 78.41, "LOC": 68.45, "ORG": 75.69, "MISC": 75.66}),
    ("umt", "none"): PaperRow(87.24, 90.78, 88.98, {"PER": 93.07, "LOC": 87.73, "ORG": 89.07, "MISC": 82.57}),
    ("umt", "one"): PaperRow(87.49, 91.31, 89.36, {"PER": 93.84, "LOC": 88.33, "ORG": 89.34, "MISC": 82.00}),
    ("umt", "all"): PaperRow(87.92, 91.14, 89.50, {"PER": 93.67, "LOC": 88.12, "ORG": 89.70, "MISC": 83.08}),
}

CROSS_LINGUAL: dict[tuple[str, str, str], PaperRow] = {
    ("acn", "en-zh", "tgt_only"): PaperRow(76.03, 73.07, 74.52),
    ("acn", "en-zh", "src"): PaperRow(78.93, 72.54, 75.60),
    ("acn", "en-zh", "tgt"): PaperRow(82.31, 70.97, 76.22),
    ("acn", "en-zh", "src_tgt"): PaperRow(79.43, 74.21, 76.73),
    ("umt", "en-zh", "tgt_only"): PaperRow(87.08, 90.16, 88.60),
    ("umt", "en-zh", "src"): PaperRow(86.97, 90.47, 88.69),
    ("umt", "en-zh", "tgt"): PaperRow(87.88, 90.03, 88.95),
    ("umt", "en-zh", "src_tgt"): PaperRow(88.05, 90.53, 89.27),
    ("acn", "zh-en", "tgt_only"): PaperRow(63.72, 63.89, 63.81),
    ("acn", "zh-en", "src"): PaperRow(66.48, 61.71, 64.00),
    ("acn", "zh-en", "tgt"): PaperRow(68.71, 63.15, 65.81),
    ("acn", "zh-en", "src_tgt"): PaperRow(69.98, 62.65, 66.11),
    ("umt", "zh-en", "tgt_only"): PaperRow(71.67, 75.23, 73.41),
    ("umt", "zh-en", "src"): PaperRow(73.26, 76.44, 74.81),
    ("umt", "zh-en", "tgt"): PaperRow(73.23, 76.65, 74.90),
    ("umt", "zh-en", "src_tgt"): PaperRow(73.82, 76.93, 75.34),
}

SETTING_LABELS = {"tgt_only": "−", "src": "SRC", "tgt": "TGT", "src_tgt": "SRC&TGT", "joint": "JOINT", "joint_tgt": "JOINT&TGT"}
"""The paper's names for its settings, and ours for the multilingual ones (one model trained on both datasets)."""
SETTING_MEANINGS = {
    "tgt_only": "trained on the target dataset only",
    "src": "pre-trained on the source dataset, then fine-tuned on the target",
    "tgt": "pre-trained on the source translated into the target language, then fine-tuned on the target",
    "src_tgt": "pre-trained on the source and its translation, then fine-tuned on the target",
    "joint": "one model trained on the target and source datasets together",
    "joint_tgt": "as JOINT, plus the source translated into the target language",
}
"""What each label of :data:`SETTING_LABELS` means, for the legend under every report table."""
IMAGE_LABELS = {"none": "text", "one": "text + one image", "all": "text + all images"}

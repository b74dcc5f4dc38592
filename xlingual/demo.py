"""``xl demo``: the whole pipeline on the package's sample data with tiny, locally built models.

Offline and a few minutes on two CPU cores: translate (a tiny Marian model
through the real transformers backend) -> project labels (SPAN placeholders)
-> train and align tiny fastText vectors -> extract random-weight VGG16
features of a few synthetic images -> train ACN in two configurations and a
tiny UMT -> report. Every stage is an ordinary library call writing into the
layout real runs use, so a user sees where each artefact lands.

The models are tiny and start from random weights, but they are trained for
real (a few hundred steps, dev-selected) on the made-up sample, whose
entities recur across splits as they do in real posts: the printed scores are
honestly obtained on the sample's test posts. They are demo numbers all the
same (a handful of made-up test posts), labelled as such in the report and
chart, and say nothing about the methods on the real datasets.

Stages reuse what an earlier (interrupted) demo in the same folder finished.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xlingual.data.datasets import load_split
from xlingual.embeddings.paths import ALIGNMENT_SUSPECT, suspect_reasons
from xlingual.evaluation.purpose import DEMO, DEMO_LABEL, DEMO_NOTE
from xlingual.workspace import REPORT_NAME, AlignedPaths, DataDir, TranslationFolder
from xlingual.data.sample_data import write_sample_data_dir

logger = logging.getLogger(__name__)

DIRECTION = ("en", "zh")
SOURCE_DATASET = "twitter2015"
"""The dataset the demo translates (the sample's English side)."""

REAL_RUN_COMMANDS = [
    "xl data download twitter2015 --data-dir data && xl data download cmner --data-dir data   # then unpack the images (see the printed hints)",
    "xl translate --src en --tgt zh --data-dir data            # Helsinki-NLP/opus-mt-en-zh",
    "xl translate --src zh --tgt en --data-dir data            # Helsinki-NLP/opus-mt-zh-en",
    "xl features extract --data-dir data --backbone vgg16      # ACN (see docs/features.md)",
    "xl features extract --data-dir data --backbone resnet152  # UMT",
    "xl embeddings train --corpus data/twitter2015/train.txt --lang en --output data/embeddings/fasttext.en.vec",
    "xl embeddings train --corpus data/cmner/text/train.txt --lang zh",
    "xl embeddings align --src-emb data/embeddings/fasttext.en.vec --tgt-emb data/embeddings/fasttext.zh.vec --src-lang en --tgt-lang zh --dico en-zh.txt",
    "xl experiment --direction en-zh --models acn,umt --configs all --seeds 3 --output runs/en-zh",
    "xl experiment --direction zh-en --models acn,umt --configs all --seeds 3 --output runs/zh-en",
    "xl report runs/ --output report",
]


@dataclass
class StageOutcome:
    """What one demo stage did and where its outputs are."""

    name: str
    summary: str
    outputs: list[Path] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class DemoResult:
    work_dir: Path
    stages: list[StageOutcome]
    report_dir: Path | None = None


def copy_sample_data(work_dir: Path) -> Path:
    return write_sample_data_dir(work_dir / "data")


# -- stages -------------------------------------------------------------------

GLOSSARY_MODEL = "glossary-en-zh"
"""The translation the demo trains on: the sample's glossary, word by word (see stage_translate)."""


def stage_translate(work_dir: Path, data_dir: Path) -> StageOutcome:
    """Translate + project Twitter2015's sample en->zh twice, through xl translate's code.

    Once with a tiny Marian model (the real transformers backend, random
    weights: it shows the mechanics and reports why nearly every post fails
    verification), once with the sample's word-by-word glossary plug-in, whose
    output keeps the placeholders and so gives the training stage a real
    projected corpus.
    """
    from xlingual.projection.corpus import ProjectionSettings
    from xlingual.stage_inputs import default_translation_dir, translate_source_dataset
    from xlingual.testing.tiny_mt import build_tiny_marian
    from xlingual.translate import DecodingOptions, load_translator

    src, tgt = DIRECTION
    model_dir = work_dir / "models" / "tiny-marian-en-zh"
    if not (model_dir / "config.json").is_file():
        build_tiny_marian(model_dir, src, tgt, train_steps=0)  # untrained: training it costs minutes on 2 CPUs
    marian_out = default_translation_dir(data_dir, SOURCE_DATASET, src, tgt, str(model_dir))
    translator = load_translator(src, tgt, str(model_dir), "transformers", None, DecodingOptions(beam_size=1, max_length=24), "cpu", work_dir=TranslationFolder(marian_out).work_dir)
    marian = translate_source_dataset(data_dir, SOURCE_DATASET, translator, ProjectionSettings(src, tgt, model_name=str(model_dir)), marian_out).report

    glossary_out = default_translation_dir(data_dir, SOURCE_DATASET, src, tgt, GLOSSARY_MODEL)
    glossary = load_translator(src, tgt, plugin="xlingual.translate.glossary:sample_en_zh")
    kept = translate_source_dataset(data_dir, SOURCE_DATASET, glossary, ProjectionSettings(src, tgt, model_name=GLOSSARY_MODEL), glossary_out).report
    summary = (f"translated the {marian.get('samples_in', '?')} Twitter2015 sample posts en->zh; the tiny random Marian model's output "
               f"verified for {marian.get('samples_out', '?')} (failures and reasons in {REPORT_NAME}), the glossary plug-in's "
               f"(--translator xlingual.translate.glossary:sample_en_zh) for {kept.get('samples_out', '?')}: training uses the latter")
    return StageOutcome("translate + project", summary, [model_dir, marian_out, glossary_out, TranslationFolder(glossary_out).preview])


def stage_embeddings(work_dir: Path, data_dir: Path) -> StageOutcome:
    """Tiny fastText vectors per language on the sample train splits, aligned into one space."""
    from xlingual.embeddings import TrainOptions, train_vectors
    from xlingual.embeddings.align import align

    options = TrainOptions(dim=16, epoch=5, min_count=1, threads=1)  # one thread: the same vectors, hence the same scores, every run
    layout = DataDir(data_dir)
    vec_en = train_vectors([layout.split_file("twitter2015", "train")], layout.monolingual_vectors("en"), "en", options=options)
    vec_zh = train_vectors([layout.split_file("cmner", "train")], layout.monolingual_vectors("zh"), "zh", unit="char", options=options)
    aligned = layout.aligned(*DIRECTION)
    out = aligned.root
    dictionary = write_rank_dictionary(vec_en, vec_zh, work_dir / "models" / "seed-dictionary.en-zh.txt")
    if not aligned.tgt_vectors.is_file():
        align(vec_en, vec_zh, out, dico=str(dictionary))
    summary = ("trained 16-d fastText vectors (en words, zh characters) and aligned en->zh by Procrustes "
               "on a made-up seed dictionary (the sample shares no spelling across languages)")
    reasons = suspect_reasons(aligned)
    if reasons is not None:
        summary += (f"; the alignment check flags them as failed ({len(reasons)} check(s), see {AlignedPaths.SUMMARY}), as expected: "
                    "a few hundred words of made-up posts cannot be aligned. The demo trains on them anyway, only to exercise "
                    "that path; real vectors flagged like this are not to be trained on")
    return StageOutcome("embeddings", summary, [vec_en, vec_zh, dictionary, out])


def explained_by_demo(record: logging.LogRecord) -> bool:
    """A log record the demo's own summary explains (the failed-alignment warnings), which its console leaves out."""
    return bool(getattr(record, ALIGNMENT_SUSPECT, False))


def write_rank_dictionary(src_vec: Path, tgt_vec: Path, out: Path, size: int = 30) -> Path:
    """A MUSE-format seed dictionary pairing the two files' words by frequency rank.

    Meaningless as a lexicon; it only exercises the supervised alignment path
    on data with no shared words. Real runs use MUSE's en-zh dictionaries.
    """
    def words(path: Path) -> list[str]:
        with open(path, encoding="utf-8") as handle:
            handle.readline()
            return [line.split(" ", 1)[0] for line, _ in zip(handle, range(size))]

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{a} {b}\n" for a, b in zip(words(src_vec), words(tgt_vec))), encoding="utf-8")
    return out


def write_synthetic_images(data_dir: Path, per_dataset: int = 6) -> list[Path]:
    """The sample data has no pictures: draw a few coloured squares named after real sample posts."""
    from PIL import Image

    written = []
    rng = np.random.default_rng(0)
    for dataset, naming in (("twitter2015", "{id}.jpg"), ("cmner", "{id}_0.jpg")):
        folder = DataDir(data_dir).images_dir(dataset)
        folder.mkdir(parents=True, exist_ok=True)
        samples = load_split(data_dir, dataset, "train", with_images=False) + load_split(data_dir, dataset, "test", with_images=False)
        for sample in samples[:per_dataset]:
            path = folder / naming.format(id=sample.id)
            if not path.is_file():
                Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
            written.append(path)
    return written


def stage_features(data_dir: Path) -> StageOutcome:
    from xlingual.features import extract_features

    images = write_synthetic_images(data_dir)
    cache = DataDir(data_dir).features("vgg16")
    for dataset in ("twitter2015", "cmner"):
        folder = DataDir(data_dir).images_dir(dataset)
        extract_features(folder, sorted(p.name for p in images if p.parent == folder), cache, "vgg16", weights="random", batch_size=8, device="cpu")
    return StageOutcome("features", f"wrote {len(images)} synthetic images, extracted random-weight VGG16 region features (49 x 512) once into a cache", [cache])


DEMO_TRAINING = ["batch_size=4", "eval_batch_size=8", "lr=1e-2", "patience=null"]
"""Both models: small batches and a high learning rate suit tiny models on a few dozen posts; every epoch runs."""
DEMO_ACN = ["model.word_dim=16", "model.char_dim=8", "model.char_filters=4", "model.char_out=8", "model.hidden=16",
            "epochs=25", *DEMO_TRAINING]
DEMO_UMT = ["model.freeze_bottom_layers=0", "model.cross_heads=2", "model.max_length=128", "images=none", "epochs=30", *DEMO_TRAINING]


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Train the tiny models on one thread: their operations are too small to share, and on a
    busy two-core machine two threads made training about 15 times slower (threads waiting on each other)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def stage_train(work_dir: Path, data_dir: Path, runs_dir: Path) -> StageOutcome:
    """ACN tgt_only and src_tgt (aligned vectors, VGG features), and a tiny text-only UMT."""
    from xlingual.train.config import load_config
    from xlingual.train.run import train_run

    outputs = []
    lines = []
    base = [f"data.data_dir={data_dir}", f"data.translation_model={GLOSSARY_MODEL}"]
    with one_torch_thread():
        for setting in ("tgt_only", "src_tgt"):
            config = load_config(setting, "acn", "en-zh", base + DEMO_ACN)
            result = train_run(config, runs_dir / config.run_name, resume=True, purpose=DEMO)
            outputs.append(result.run_dir)
            lines.append(f"ACN {setting}: test F1 {result.test_f1:.2f}")
        umt = _train_tiny_umt(work_dir, data_dir, runs_dir, base)
    outputs.append(umt.run_dir)
    lines.append(f"UMT tgt_only (text only): test F1 {umt.test_f1:.2f}")
    tests = len(load_split(data_dir, "cmner", "test", with_images=False))
    return StageOutcome("train", "; ".join(lines) + f" (demo numbers: tiny models scored on the sample's {tests} made-up CMNER test posts)", outputs)


def _train_tiny_umt(work_dir: Path, data_dir: Path, runs_dir: Path, base: list[str]):
    from xlingual.testing.tiny_bert import build_tiny_bert
    from xlingual.train.config import load_config
    from xlingual.train.run import train_run

    encoder = work_dir / "models" / "tiny-bert"
    if not (encoder / "config.json").is_file():
        tokens = {t for split in ("train", "dev", "test") for s in load_split(data_dir, "cmner", split, with_images=False) for t in s.tokens}
        build_tiny_bert(encoder, sorted(tokens))
    config = load_config("tgt_only", "umt", "en-zh", base + [f"model.encoder={encoder}", *DEMO_UMT])
    return train_run(config, runs_dir / config.run_name, resume=True, purpose=DEMO)


def stage_report(runs_dir: Path, report_dir: Path) -> StageOutcome:
    from xlingual.evaluation.report import write_report

    report = write_report([runs_dir], report_dir, note=DEMO_NOTE, label=DEMO_LABEL, paper=False)  # the runs say so too
    return StageOutcome("report", f"Tables 2-4 (Markdown, LaTeX, CSV) and a bar chart from {report.runs} run folders, "
                        "marked as demo numbers and without the paper's columns", [report_dir])


def run_demo(work_dir: str | Path = "demo-output", on_stage: Callable[[StageOutcome], None] | None = None) -> DemoResult:
    """Run every stage in order; ``on_stage`` sees each outcome as it finishes (the CLI prints it)."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    data_dir = copy_sample_data(work)
    runs_dir = work / "runs"
    report_dir = work / "report"
    steps: list[tuple[str, Callable[[], StageOutcome]]] = [
        ("translate + project", lambda: stage_translate(work, data_dir)),
        ("embeddings", lambda: stage_embeddings(work, data_dir)),
        ("features", lambda: stage_features(data_dir)),
        ("train", lambda: stage_train(work, data_dir, runs_dir)),
        ("report", lambda: stage_report(runs_dir, report_dir)),
    ]
    outcomes = []
    for _name, step in steps:
        started = time.time()
        outcome = step()
        outcome.seconds = time.time() - started
        outcomes.append(outcome)
        if on_stage:
            on_stage(outcome)
    return DemoResult(work, outcomes, report_dir)


__all__ = ["DEMO_NOTE", "REAL_RUN_COMMANDS", "DemoResult", "StageOutcome", "explained_by_demo", "run_demo"]

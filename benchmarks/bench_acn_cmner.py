"""ACN text-only on the real CMNER data, on this machine's CPU: test P/R/F1, time per epoch, total time.

The CMNER paper reports 72.93 F1 for ACN with text only (Table 2), trained 24
epochs with 300-d fastText wiki.zh vectors. No pretrained vectors can be
downloaded here, so this script trains 300-d character vectors on CMNER's
own train text (xlingual.embeddings.train_vectors), then trains ACN through
the same code path as ``xl train --config tgt_only --model acn
--direction en-zh --set images=none``. The default epoch count is reduced
so a run stays near ten minutes on 2 CPU cores; pass ``--epochs 24`` for the
paper's budget.

Usage:
    python benchmarks/bench_acn_cmner.py [--data-dir ../shared/data] [--epochs 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from _record import add_results_option, recorder

REPO = Path(__file__).resolve().parents[1]
PAPER_F1 = 72.93


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, " \
           f"{'GPU ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "xlingual-bench" / "acn-cmner")
    parser.add_argument("--fresh", action="store_true", help="Delete the previous run folder first (otherwise it resumes).")
    add_results_option(parser)
    args = parser.parse_args()
    out = recorder(__file__, args, f"{args.epochs} epoch{'s' if args.epochs != 1 else ''} (the paper trains 24), real CMNER, "
                                   "300-d character vectors trained here")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)

    from xlingual.workspace import DataDir
    from xlingual.embeddings import TrainOptions, train_vectors
    from xlingual.train.config import load_config
    from xlingual.train.run import train_run

    train_file = DataDir(args.data_dir).split_file("cmner", "train")
    if not train_file.is_file():
        raise SystemExit(f"{train_file}: CMNER not found; pass --data-dir")
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    vectors = train_vectors([train_file], args.work / "cmner-char.zh.vec", "zh", unit="char", options=TrainOptions(dim=300, epoch=5, min_count=1))
    vector_seconds = time.time() - started

    run_dir = args.work / f"run-{args.epochs}ep"
    if args.fresh:
        shutil.rmtree(run_dir, ignore_errors=True)
    config = load_config("tgt_only", "acn", "en-zh", [
        f"data.data_dir={args.data_dir}", "images=none", f"model.word_vectors={vectors}",
        f"target.epochs={args.epochs}", "target.patience=null",
    ])
    result = train_run(config, run_dir, resume=True)
    metrics = result.metrics
    history = metrics["stages"]["target"]["history"]
    epoch_seconds = [b["seconds"] - a["seconds"] for a, b in zip([{"seconds": 0.0}] + history[:-1], history)]
    test = metrics["test"]["conlleval"]
    figures = {
        "machine": machine(),
        "epochs": args.epochs,
        "vector_training_s": round(vector_seconds, 1),
        "seconds_per_epoch_incl_dev_eval": [round(s, 1) for s in epoch_seconds],
        "train_total_s": metrics.get("train_seconds"),
        "best_dev_f1": metrics["stages"]["target"]["best_dev_f1"],
        "best_epoch": metrics["stages"]["target"]["best_epoch"],
        "test": {k: round(test[k], 2) for k in ("precision", "recall", "f1")},
        "test_per_type_f1": {k: round(v, 2) for k, v in test["per_type_f1"].items()},
        "test_strict_f1": round(metrics["test"]["strict"]["f1"], 2),
        "paper_f1": PAPER_F1,
        "ratio_to_paper": round(test["f1"] / PAPER_F1, 3),
    }
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    label = f"ACN text-only on CMNER test after {args.epochs} epoch{'s' if args.epochs != 1 else ''}"
    out.record(f"{label}: F1 (P {test['precision']:.2f}, R {test['recall']:.2f})", test["f1"], "",
               test["f1"] / PAPER_F1, f"the paper's {PAPER_F1} (24 epochs)")
    if epoch_seconds:
        out.record(f"{label}: time per epoch incl. dev evaluation", sum(epoch_seconds) / len(epoch_seconds), "s")
    print(f"ACN text-only on CMNER test ({args.epochs} epochs, {figures['machine']}): "
          f"P {test['precision']:.2f} R {test['recall']:.2f} F1 {test['f1']:.2f} vs paper {PAPER_F1} "
          f"({figures['ratio_to_paper']:.3f} of it); {statistics_line(epoch_seconds)}")


def statistics_line(epoch_seconds: list[float]) -> str:
    if not epoch_seconds:
        return "no epochs run"
    return f"{sum(epoch_seconds) / len(epoch_seconds):.0f} s per epoch (incl. dev evaluation)"


if __name__ == "__main__":
    main()

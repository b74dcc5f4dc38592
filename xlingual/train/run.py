"""One training run end to end: stages, model selection, test evaluation and the run folder.

The run folder's layout is :class:`xlingual.workspace.RunFolder`'s (``xl report``
and ``xl evaluate`` read only that folder).

On several processes (``accelerate launch`` / ``torchrun``) every process
trains and checks the folder, and the main process alone writes it; the
folder must be on a file system every process sees.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from xlingual.data.datasets import DatasetSpec
from xlingual.data.formats import write_samples
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, TrainingDivergedError
from xlingual.evaluation.evaluate import check_run_outputs
from xlingual.io import atomic_write_json
from xlingual.output_set import MANIFEST_KEY, describe_files
from xlingual.lock import LOCK_NAME, output_lock
from xlingual.models import load_model, model_class
from xlingual.models.base import MnerModel, VisualLookup
from xlingual.train.config import TrainConfig, config_digest, save_config
from xlingual.models.card import ModelCard, invocation, write_card
from xlingual.train.config.schema import dataset_lang
from xlingual.train.engine import StageTrainer, process_state
from xlingual.train.plugins import StepHook, TrainerPlugin
from xlingual.train.inputs import RunInputs, check_inputs, resolve_inputs
from xlingual.evaluation.metrics import score_all_modes
from xlingual.evaluation.purpose import PURPOSE_KEY
from xlingual.workspace import FAILURE_NAME, RunFolder, other_test_split

logger = logging.getLogger(__name__)

@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    skipped: bool = False

    @property
    def test_f1(self) -> float:
        return self.metrics["test"]["conlleval"]["f1"]


def environment_record(config: TrainConfig, processes: int = 1) -> dict[str, Any]:
    """What a reader needs to reproduce the numbers: versions, device, code revision, seed."""
    import importlib.metadata as md

    import torch

    versions = {}
    for name in ("xlingual", "torch", "transformers", "accelerate", "numpy", "seqeval", "pytorch-crf", "fasttext-numpy2", "torchvision"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        revision = None
    return {
        "versions": versions, "python": sys.version.split()[0], "platform": platform.platform(),
        "device": device, "cuda_devices": torch.cuda.device_count(), "cpu_threads": torch.get_num_threads(), "processes": processes,
        "git_revision": revision, "seed": config.seed, "run_id": config_digest(config), "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


class _RunLogFile(logging.FileHandler):
    """``run.log``: a record that cannot be written (a full disk) is one warning line, once, not a traceback per record.

    The run goes on (its results are written atomically and fail loudly on
    their own); only the log copy is incomplete.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            err = sys.exc_info()[1]
            sys.stderr.write(f"warning: {self.baseFilename}: cannot write the run log ({getattr(err, 'strerror', None) or err}); "
                             "later lines go to the console only\n")


class _RunLog:
    """Copies the library's log records into ``run.log`` for the duration of a run."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.handler: logging.Handler = _RunLogFile(path) if enabled else logging.NullHandler()
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.handler.setLevel(logging.INFO)
        self.logger = logging.getLogger("xlingual")

    def __enter__(self) -> "_RunLog":
        self.previous_level = self.logger.level
        if self.logger.getEffectiveLevel() > logging.INFO:
            self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.previous_level)
        self.handler.close()


def _seed_everything(seed: int) -> None:
    from accelerate.utils import set_seed

    set_seed(seed)


def read_run_json(path: Path) -> dict[str, Any]:
    """A JSON record of a run folder (metrics, environment, failure); a garbled one is a one-line error naming it."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"{path}: not readable JSON ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(values).__name__}")
    return values


def _check_identity(path: Path, run_id: str) -> None:
    """Refuse a file of the run folder that another run (another resolved config) wrote: the folder mixes two runs."""
    saved = read_run_json(path).get("run_id") if path.is_file() else None
    if saved is not None and saved != run_id:
        raise ConfigError(f"{path}: written by another run (run id {saved}, this config {run_id}); the folder mixes two runs: "
                          "use another --output")


def _prepare_run_dir(run_dir: Path, config: TrainConfig, resume: bool, processes: int = 1, writer: bool = True) -> bool:
    """Check the run folder and (``writer``: the main process) create it; True when a finished run is found (nothing to do).

    Every record the run folder holds carries the run identity
    (:func:`xlingual.train.config.config_digest`); a resume checks the
    saved config, environment and metrics against it (the stages check
    their training state), so a folder with files of two runs is refused.
    """
    folder = RunFolder(run_dir)
    run_id = config_digest(config)
    if folder.failure.is_file():
        error = read_run_json(folder.failure).get("error", f"see {FAILURE_NAME}")
        raise ConfigError(f"{run_dir}: this run failed ({error}); it is never resumed: train into another --output")
    if folder.finished:
        if resume:
            _check_identity(folder.metrics, run_id)
            check_run_outputs(run_dir)  # a kept run's predictions are the ones its metrics score
            return True
        raise ConfigError(f"{run_dir}: a finished run is already there (pass --resume to keep it, or another --output)")
    if folder.state.is_dir() and not resume:
        raise ConfigError(f"{run_dir}: an unfinished run is there; pass --resume to continue it, or choose another --output")
    if resume and folder.config.is_file():
        from xlingual.train.config import config_from_dict, read_yaml

        saved = config_from_dict(read_yaml(folder.config), where=str(folder.config))
        if saved.to_dict() != config.to_dict():
            raise ConfigError(f"{folder.config}: the saved config differs from this one; resume with the same options or use another --output")
    if resume:
        _check_identity(folder.environment, run_id)
    if writer:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, folder.config)
        atomic_write_json(folder.environment, environment_record(config, processes))
    return False


def predict_and_write(model: MnerModel, samples: Sequence[Sample], visual: VisualLookup | None, batch_size: int,
                      folder: RunFolder, split: str, dataset: DatasetSpec) -> dict[str, Any]:
    """Predict a split, write it in the dataset's format and label spelling (+ JSONL with gold), return its scores."""
    predictions = model.predict(list(samples), visual, batch_size=batch_size)
    predicted = [Sample(s.id, list(s.tokens), list(p), list(s.images), s.lang, {**s.meta, "gold": list(s.labels)}) for s, p in zip(samples, predictions)]
    write_samples(folder.prediction(split, ".txt"), predicted, dataset.format, schema=dataset.schema)
    write_samples(folder.prediction(split, ".jsonl"), predicted, "jsonl")
    return {mode: scores.to_dict() for mode, scores in score_all_modes([s.labels for s in samples], predictions).items()}


def train_run(config: TrainConfig, run_dir: str | Path, resume: bool = False, hooks: Sequence[StepHook] = (),
              partial: bool = False, purpose: str | None = None, plugins: Sequence[TrainerPlugin] = ()) -> RunResult:
    """Train, select on dev, evaluate on test; everything lands in ``run_dir``.

    ``plugins`` (:class:`~xlingual.train.plugins.TrainerPlugin` instances)
    join every stage's loop after the built-in ones, in the order given; the
    same instances see each stage (``stage_start`` marks a new one).

    With ``resume`` a finished run is returned as is, and an interrupted one
    continues from its last checkpoint to the same result it would have had;
    a checkpoint that lacks part of its state is refused unless ``partial``
    (``--resume-partial``). The main process holds the folder's lock
    (:mod:`xlingual.lock`) throughout: a second writer is refused at once.
    A NaN or infinite loss stops the run with
    :class:`~xlingual.errors.TrainingDivergedError` and leaves ``failed.json``
    instead of ``metrics.json``. ``purpose`` (``"demo"``) is recorded in
    ``metrics.json`` for a run that is not research, so every report of it
    keeps it apart from the paper (:mod:`xlingual.evaluation.purpose`).

    Nothing that looks like a run is left by a run that never trained: the
    inputs are checked before the folder is created (all missing ones named
    at once), and a folder this call created is removed again when the run
    fails before training began (a model option the model refuses, data that
    does not parse).
    """
    processes = process_state()  # under accelerate launch / torchrun: joins the process group
    run_dir = Path(run_dir)
    if not (resume and RunFolder(run_dir).finished):
        check_inputs(config)  # every missing input named at once, before anything is created
    existed = run_dir.exists()
    progress = _Progress()
    with output_lock(run_dir) if processes.is_main_process else nullcontext():
        ours = processes.is_main_process and not existed  # created under this lock: every file in it is this run's
        try:
            return _train_run(config, run_dir, resume, hooks, partial, processes, purpose, plugins, progress)
        except BaseException:
            if ours and not progress.training_began:
                _remove_unstarted(run_dir)
            raise


@dataclass
class _Progress:
    training_began: bool = False
    """Set just before the first stage trains: from then on the folder is a run (its log, checkpoints, ``failed.json``)."""


def _remove_unstarted(run_dir: Path) -> None:
    """Remove a run folder this process created, whose run failed before training began, so nothing looks like a run.

    Called only for a folder that did not exist before this process and held
    nothing but this process's lock once it was held: every file in it is
    this run's (its config, environment, log, merged word vectors). The lock
    file stays until the lock is released, which removes it and the folder
    it created: deleting it while held would let a second process take a new
    lock there that this one's release would then remove.
    """
    logger.info("%s: removed (the run failed before training began)", run_dir)
    for child in run_dir.iterdir():
        if child.name == LOCK_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def run_card(config: TrainConfig) -> ModelCard:
    """What a model card says about the run that trained the model (no path, no time: identical runs give identical cards)."""
    datasets = tuple((name, dataset_lang(name, config.data)) for name in (*config.source_datasets, config.target_dataset))
    return ModelCard(run=config.run_name, setting=config.setting, direction=config.direction, datasets=datasets,
                     target_dataset=config.target_dataset, images=config.images, seed=config.seed, command=invocation())


def _train_run(config: TrainConfig, run_dir: Path, resume: bool, hooks: Sequence[StepHook], partial: bool, processes,
               purpose: str | None, plugins: Sequence[TrainerPlugin], progress: _Progress) -> RunResult:
    folder = RunFolder(run_dir)
    finished = _prepare_run_dir(run_dir, config, resume, processes.num_processes, writer=processes.is_main_process)
    processes.wait_for_everyone()  # the folder exists before any process writes into it
    if finished:
        logger.info("%s: finished run found, skipping", run_dir)
        return RunResult(run_dir, read_run_json(folder.metrics), skipped=True)
    started = time.time()
    with _RunLog(folder.log, enabled=processes.is_main_process):
        logger.info("run %s -> %s", config.run_name, run_dir)
        with processes.main_process_first():  # files the inputs write into the run folder are written once
            inputs = resolve_inputs(config, run_dir)
        _seed_everything(config.seed)
        model = model_class(config.model_type).build(inputs.model_config, inputs.vocab_samples())
        card = run_card(config)
        stage_summaries = {}
        for stage_data in inputs.stages:
            stage_config = config.pretrain if stage_data.name == "pretrain" else config.target
            best_dir = folder.best_model(stage_data.name)
            trainer = StageTrainer(config, stage_config, stage_data.name, run_dir, best_dir, hooks, plugins,
                                   card=replace(card, trained_on=stage_data.description))
            if stage_data.name == "target" and folder.pretrain_model.is_dir():
                model = load_model(folder.pretrain_model)  # fine-tune the best pre-trained model
                _seed_everything(config.seed + 1)
            progress.training_began = True
            try:
                loop = trainer.train(model, stage_data.train, stage_data.dev, inputs.visual, resume=resume, partial=partial)
            except TrainingDivergedError as err:
                if processes.is_main_process:
                    atomic_write_json(folder.failure, {"run_id": config_digest(config), "stage": stage_data.name, "error": str(err),
                                                       "failed": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
                raise
            stage_summaries[stage_data.name] = {
                "data": stage_data.description, "train_samples": len(stage_data.train), "dev_samples": len(stage_data.dev),
                "best_dev_f1": loop.best_dev_f1, "best_epoch": loop.best_epoch, "best_step": loop.best_step,
                "steps": loop.global_step, "epochs_run": loop.epoch, "history": loop.history,
            }
        if not processes.is_main_process:  # the main process scores test and writes the results
            processes.wait_for_everyone()
            return RunResult(run_dir, json.loads(folder.metrics.read_text(encoding="utf-8")))
        target = stage_summaries["target"]
        final_card = replace(card, trained_on=target["data"]).selected_by("target", target["best_epoch"], target["best_step"],
                                                                          target["best_dev_f1"])
        metrics = _final_evaluation(config, inputs, run_dir, final_card)
        metrics["stages"] = stage_summaries
        metrics["run_id"] = config_digest(config)
        metrics["train_seconds"] = round(time.time() - started, 2)
        if purpose is not None:
            metrics[PURPOSE_KEY] = purpose
        atomic_write_json(folder.metrics, metrics)
        processes.wait_for_everyone()
        logger.info("test F1 %.2f (P %.2f R %.2f), conlleval; strict F1 %.2f -> %s", metrics["test"]["conlleval"]["f1"],
                    metrics["test"]["conlleval"]["precision"], metrics["test"]["conlleval"]["recall"], metrics["test"]["strict"]["f1"], run_dir)
    return RunResult(run_dir, metrics)


def _final_evaluation(config: TrainConfig, inputs: RunInputs, run_dir: Path, card: ModelCard) -> dict[str, Any]:
    """Score the best model on dev and every test set and write the predictions; its card gains the test scores."""
    folder = RunFolder(run_dir)
    best = load_model(folder.model)
    batch = config.target.eval_batch_size
    layout = config.data.layout
    target = layout.dataset(config.target_dataset)
    metrics: dict[str, Any] = {
        "run": config.run_name, "model_type": config.model_type, "direction": config.direction,
        "setting": config.setting, "images": config.images, "seed": config.seed,
        "target_dataset": config.target_dataset, "test_samples": len(inputs.test),
        "dev": predict_and_write(best, inputs.target.dev, inputs.visual, batch, folder, "dev", target),
        "test": predict_and_write(best, inputs.test, inputs.visual, batch, folder, "test", target),
    }
    if config.datasets is not None:  # a run that names its datasets says which (a direction says it by itself)
        metrics["source_datasets"] = list(config.source_datasets)
    tests = {config.target_dataset: metrics["test"]}
    for dataset, samples in inputs.other_tests.items():
        tests[dataset] = predict_and_write(best, samples, inputs.visual, batch, folder, other_test_split(dataset), layout.dataset(dataset))
    metrics["tests"] = tests
    if len(tests) > 1:  # the multilingual table's macro average: each language's test set counts once
        metrics["test_macro_f1"] = sum(t["conlleval"]["f1"] for t in tests.values()) / len(tests)
    splits = ["dev", "test", *(other_test_split(dataset) for dataset in inputs.other_tests)]
    written = [folder.prediction(split, suffix).relative_to(run_dir).as_posix() for split in splits for suffix in (".txt", ".jsonl")]
    metrics[MANIFEST_KEY] = describe_files(run_dir, written)  # metrics.json, written last, is the manifest of the run's outputs
    scores = {f"{dataset} test {name} (conlleval)": round(test["conlleval"][key], 4)
              for dataset, test in tests.items() for name, key in (("F1", "f1"), ("precision", "precision"), ("recall", "recall"))}
    write_card(folder.model, card.with_metrics(scores), best.model_type, best.label_names)
    return metrics


__all__ = ["RunResult", "environment_record", "predict_and_write", "read_run_json", "train_run"]

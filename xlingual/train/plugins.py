"""What happens around the optimiser steps of a stage: logging, dev evaluation, early stopping, checkpoints.

:class:`xlingual.train.engine.StageTrainer` runs the loop (batches, forward,
backward, optimiser step) and calls its plugins at the events of
:data:`EVENTS`, in the spirit of flair's trainer plugins:

* ``stage_start``: before the first step (every plugin, in order);
* ``after_step``: after every optimiser step (loss bookkeeping, logging);
* ``step_boundary``: after a step the stage goes on from (not the last one
  of the step budget): evaluation every ``eval_every_steps``, a checkpoint
  every ``save_every_steps``, the caller's :data:`StepHook` functions;
* ``epoch_end``: at the end of an epoch or of the step budget (evaluation);
* ``epoch_boundary``: after the epoch counter moved on, when another epoch
  follows (checkpoint, step hooks);
* ``stage_end`` once the stage is done, and ``close`` whatever happens
  (both in reverse order: the last plugin set up is the first taken down).

A plugin is a :class:`TrainerPlugin` subclass whose methods named after
events are its hooks. The names are checked when the class is defined: a
public method that looks like a hook (``on_``/``before_``/``after_``/
``stage_``/``step_``/``epoch_`` names, or one close to an event) but is no
event is an error there, so a misspelt hook cannot go uncalled. A plugin
that reads what another one records says so in ``requires``;
:class:`PluginChain` checks, when the engine is built, that each one it
needs comes before it. ``main_process_only`` plugins run on the main process
alone under ``accelerate launch`` / ``torchrun`` (reporting, uploads).

Plugins run in list order; one that sets :attr:`StageRun.stop` (early
stopping) ends the stage, and the plugins after it are not called for that
event. What a resumed stage needs is in :class:`LoopState`, which is saved
with every checkpoint.
"""

from __future__ import annotations

import difflib
import inspect
import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from xlingual.workspace import LOOP_STATE_NAME, RunFolder
from xlingual.data.sample import Sample
from xlingual.errors import CheckpointWriteError, ConfigError
from xlingual.evaluation.metrics import Scores
from xlingual.io import atomic_write_dir, atomic_write_json, replace_dir
from xlingual.models.base import MnerModel, VisualLookup
from xlingual.models.card import ModelCard
from xlingual.progress import progress_bar

if TYPE_CHECKING:
    import torch

    from xlingual.train.config import StageConfig

logger = logging.getLogger(__name__)



@dataclass
class LoopState:
    """Counters of a stage's loop, saved with every checkpoint."""

    stage: str
    epoch: int = 0
    batches_done_in_epoch: int = 0
    global_step: int = 0
    best_dev_f1: float = -1.0
    best_epoch: int = -1
    best_step: int = -1
    evals_without_improvement: int = 0
    epoch_loss_sum: float = 0.0
    epoch_loss_steps: int = 0
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None
    """The identity of the run that saved it (:func:`xlingual.train.config.config_digest`); None from older versions."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


StepHook = Callable[[LoopState], None]
"""Called after every optimiser step (and after any checkpoint of that step).

``epoch_loss_sum`` in the state it sees is brought up to date at logging
points, evaluations and checkpoints only (see :class:`DeviceLossSum`).
"""


@dataclass
class StageRun:
    """What the loop shares with its plugins while one stage trains."""

    name: str
    stage: StageConfig
    accelerator: Any
    wrapped: torch.nn.Module
    """The model as accelerate prepared it (what trains)."""
    model: MnerModel
    """The same model unwrapped (what predicts and is saved)."""
    scheduler: Any
    loop: LoopState
    losses: Any
    """The epoch's running loss sum on the device (:class:`xlingual.train.engine.DeviceLossSum`)."""
    total_steps: int
    steps_per_epoch: int
    started: float = field(default_factory=time.time)
    loss: torch.Tensor | None = None
    """The loss of the last optimiser step."""
    stop: bool = False
    """Set by a plugin to end the stage (early stopping)."""
    watch: Any = None
    """The first non-finite loss or gradient norm (:class:`xlingual.train.engine.NonFiniteWatch`)."""
    dev: Sequence[Sample] = ()
    """The stage's dev samples (what :class:`DevEvaluation` scores)."""
    visual: VisualLookup | None = None
    """The run's visual lookup (None for a text-only model)."""
    step_loss: float | None = None
    """This step's loss summed over processes, where :class:`LossLogging` read it (at its logging points, or at every step
    with ``step_losses``); None at the other steps."""
    dev_predictions: list[list[str]] | None = None
    """The predicted labels of the last dev evaluation (:class:`DevEvaluation`), on the main process; None elsewhere."""
    dev_scores: Scores | None = None
    """The scores of the last dev evaluation (:class:`DevEvaluation`; per type too), on the main process; None elsewhere.
    A plugin that reports them reads these (``requires = (DevEvaluation,)``) rather than scoring the dev set again."""

    def sync_loss(self) -> None:
        """Bring ``loop.epoch_loss_sum`` up to date from the device (a collective on several processes).

        Every point that reads the loss (logging, evaluation, checkpoint)
        comes here first, so this is where a NaN or infinite loss stops the
        stage: before anything computed after it is scored or saved.
        """
        self.loop.epoch_loss_sum = self.losses.read()
        if self.watch is not None:
            self.watch.check()


EVENTS: tuple[str, ...] = ("stage_start", "after_step", "step_boundary", "epoch_end", "epoch_boundary", "stage_end", "close")
"""The points of the stage loop a plugin can act at (see the module docstring), in the order the loop reaches them."""

TEARDOWN_EVENTS = frozenset({"stage_end", "close"})
"""Called on every plugin whatever :attr:`StageRun.stop` says, in reverse order."""

STOPPABLE_EVENTS = frozenset({"after_step", "step_boundary", "epoch_end", "epoch_boundary"})
"""Events whose remaining plugins are skipped once one of them sets :attr:`StageRun.stop`."""

HOOK_LIKE = re.compile(r"^(on|before|after|stage|step|epoch)_|_(start|end|step|boundary)$")
"""Public method names that read as hooks; one that is not in :data:`EVENTS` is refused when its class is defined."""


class TrainerPlugin:
    """One concern of the stage loop: its methods named after :data:`EVENTS` are its hooks, each taking the :class:`StageRun`.

    The base defines no hooks, so a plugin is called at exactly the events
    it names. ``requires`` lists the plugin classes whose records it reads
    (each must come before it in the stage's plugins); ``main_process_only``
    keeps it off every process but the main one in a multi-process run (it
    must then leave :attr:`StageRun.stop` alone: the other processes would
    train on).
    """

    requires: ClassVar[tuple[type[TrainerPlugin], ...]] = ()
    main_process_only: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            if name in EVENTS:
                _check_hook(cls, name, value)
            elif not name.startswith("_") and _is_method(value) and (HOOK_LIKE.search(name) or _closest_event(name, 0.8)):
                guess = _closest_event(name, 0.5)
                hint = f"did you mean {guess}? " if guess else ""
                raise ConfigError(f"plugin {cls.__qualname__}: {name} is not a plugin event ({hint}events: {', '.join(EVENTS)}; "
                                  "start a helper's name with _)")
        requires = cls.__dict__.get("requires", ())
        if not isinstance(requires, tuple) or not all(isinstance(r, type) and issubclass(r, TrainerPlugin) for r in requires):
            raise ConfigError(f"plugin {cls.__qualname__}: requires must be a tuple of TrainerPlugin classes, got {requires!r}")

    @classmethod
    def events(cls) -> tuple[str, ...]:
        """The events this plugin acts at (its own and its bases' hooks), in :data:`EVENTS` order."""
        return tuple(event for event in EVENTS if callable(getattr(cls, event, None)))


def _is_method(value: Any) -> bool:
    return inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod))


def _closest_event(name: str, cutoff: float) -> str | None:
    matches = difflib.get_close_matches(name, EVENTS, n=1, cutoff=cutoff)
    return matches[0] if matches else None


def _check_hook(cls: type, name: str, value: Any) -> None:
    """A hook is a plain method called with the stage's run: ``def {name}(self, run)``."""
    try:
        if not inspect.isfunction(value):
            raise TypeError
        inspect.signature(value).bind(None, None)
    except TypeError:
        raise ConfigError(f"plugin {cls.__qualname__}: the hook {name} must be a method taking the stage's run: "
                          f"def {name}(self, run)") from None


def check_order(plugins: Sequence[TrainerPlugin]) -> None:
    """Refuse plugins of which one needs another (``requires``) that is missing, comes after it, or runs on fewer processes."""
    names = ", ".join(type(plugin).__name__ for plugin in plugins)
    for plugin in plugins:
        if not isinstance(plugin, TrainerPlugin):
            raise ConfigError(f"plugins: {plugin!r} is not a TrainerPlugin (subclass xlingual.train.plugins.TrainerPlugin)")
    for index, plugin in enumerate(plugins):
        name = type(plugin).__name__
        for needed in type(plugin).requires:
            before = [other for other in plugins[:index] if isinstance(other, needed)]
            if not before:
                where = "comes after it" if any(isinstance(other, needed) for other in plugins[index + 1:]) else "is not among them"
                raise ConfigError(f"plugins: {name} requires {needed.__name__} before it, but {needed.__name__} {where} "
                                  f"(plugins in calling order: {names})")
            if not plugin.main_process_only and all(other.main_process_only for other in before):
                raise ConfigError(f"plugins: {name} runs on every process but requires {needed.__name__}, which runs on the "
                                  f"main process only (main_process_only)")


class PluginChain:
    """The plugins of a stage in calling order, checked once (:func:`check_order`), with each event's hooks registered.

    :meth:`dispatch` calls an event's hooks in order (teardown events in
    reverse), skips ``main_process_only`` plugins on the other processes and
    stops at the first hook that sets :attr:`StageRun.stop`.
    """

    def __init__(self, plugins: Sequence[TrainerPlugin]) -> None:
        check_order(plugins)
        self.plugins = tuple(plugins)
        self.hooks: dict[str, tuple[tuple[TrainerPlugin, Callable[[StageRun], None]], ...]] = {}
        for event in EVENTS:
            order = reversed(self.plugins) if event in TEARDOWN_EVENTS else self.plugins
            self.hooks[event] = tuple((plugin, getattr(plugin, event)) for plugin in order if event in type(plugin).events())

    def dispatch(self, event: str, run: StageRun) -> None:
        """Call ``event``'s hooks for this process, up to the first that stops the stage (for the events that can stop)."""
        main = run.accelerator.is_main_process
        stoppable = event in STOPPABLE_EVENTS
        for plugin, hook in self.hooks[event]:
            if stoppable and run.stop:
                return
            if plugin.main_process_only and not main:
                continue
            stopped = run.stop
            hook(run)
            if plugin.main_process_only and run.stop and not stopped:
                raise ConfigError(f"plugin {type(plugin).__name__} runs on the main process only and cannot stop the stage "
                                  "(the other processes would train on); stop from a plugin that runs on every process")


class LossLogging(TrainerPlugin):
    """The progress bar and ten loss lines per epoch in the log; with ``step_losses`` every step's loss in :attr:`StageRun.step_loss`.

    Reading a step's loss makes the host wait for the device (and, on several
    processes, is a collective every process joins), so it is read at the ten
    logging points only, unless a per-step curve (TensorBoard) needs each one.
    """

    def __init__(self, step_losses: bool = False) -> None:
        self.step_losses = step_losses

    def stage_start(self, run: StageRun) -> None:
        self.log_every = max(1, run.steps_per_epoch // 10)
        self.bar = progress_bar(total=run.total_steps, initial=run.loop.global_step, desc=f"train {run.name}", unit="step")

    def after_step(self, run: StageRun) -> None:
        accelerator, loop, loss = run.accelerator, run.loop, run.loss
        self.bar.update(1)
        logged = loop.global_step % self.log_every == 0
        run.step_loss = None  # never a stale value: read at this step or not at all
        if logged or self.step_losses:
            reduced = accelerator.reduce(loss.detach().clone(), reduction="sum") if accelerator.num_processes > 1 else loss
            run.step_loss = float(reduced.item())
        if logged:  # visible progress in non-tty logs; the only per-epoch reads of the loss
            run.sync_loss()
            self.bar.set_postfix(loss=f"{run.step_loss:.3f}")
            logger.info("stage %s epoch %d: step %d/%d, loss %.4f, %.1f s", run.name, loop.epoch, loop.global_step,
                        run.total_steps, run.step_loss, time.time() - run.started)

    def close(self, run: StageRun) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.close()

    def stage_end(self, run: StageRun) -> None:
        logger.info("stage %s done in %.1fs: best dev F1 %.2f at epoch %d", run.name, time.time() - run.started,
                    run.loop.best_dev_f1, run.loop.best_epoch)


class DevEvaluation(TrainerPlugin):
    """Dev micro-F1 at each epoch end (and every ``eval_every_steps``); a strictly better model is saved to ``best_dir``.

    ``score(model, samples, visual, batch_size) -> (scores, predictions)``
    (:class:`~xlingual.evaluation.metrics.Scores`) is given by the trainer;
    the dev samples and visual lookup are the run's (:attr:`StageRun.dev`);
    the result is kept in :attr:`StageRun.dev_scores` and
    :attr:`StageRun.dev_predictions` for the plugins after it. On several processes the main process scores and
    every process takes the same decisions from its broadcast score. The
    saved folder's model card is ``card`` with the stage and its best dev F1.
    """

    def __init__(self, best_dir: Path, score: Callable[..., tuple[Scores, list[list[str]]]], card: ModelCard | None = None) -> None:
        self.best_dir, self.score, self.card = best_dir, score, card

    def step_boundary(self, run: StageRun) -> None:
        every = run.stage.eval_every_steps
        if every and run.loop.global_step % every == 0:
            self.evaluate(run)
            run.wrapped.train()

    def epoch_end(self, run: StageRun) -> None:
        # unless eval_every_steps just scored these very weights (a second look would count against patience)
        if not (run.loop.history and run.loop.history[-1]["step"] == run.loop.global_step):
            self.evaluate(run)

    def evaluate(self, run: StageRun) -> None:
        accelerator, loop = run.accelerator, run.loop
        run.sync_loss()
        run.dev_scores, run.dev_predictions = (self.score(run.model, run.dev, run.visual, run.stage.eval_batch_size)
                                               if accelerator.is_main_process else (None, None))
        f1 = run.dev_scores.f1 if run.dev_scores is not None else 0.0
        if accelerator.num_processes > 1:  # every process takes the same decisions from the main process's score
            from accelerate.utils import broadcast_object_list

            f1 = broadcast_object_list([f1])[0]
        improved = f1 > loop.best_dev_f1
        train_loss = loop.epoch_loss_sum / loop.epoch_loss_steps if loop.epoch_loss_steps else None
        loop.epoch_loss_sum, loop.epoch_loss_steps = 0.0, 0
        loop.history.append({"epoch": loop.epoch, "step": loop.global_step, "train_loss": train_loss, "dev_f1": round(f1, 4),
                             "improved": improved, "seconds": round(time.time() - run.started, 2)})
        logger.info("stage %s epoch %d step %d: train loss %s, dev F1 %.2f%s", run.name, loop.epoch, loop.global_step,
                    f"{train_loss:.4f}" if train_loss is not None else "-", f1, " (best)" if improved else "")
        if improved:
            loop.best_dev_f1, loop.best_epoch, loop.best_step = f1, loop.epoch, loop.global_step
            if accelerator.is_main_process:
                save_best(run.model, self.best_dir, self.card_at(run))
            accelerator.wait_for_everyone()
        run.losses.start(loop.epoch_loss_sum)

    def card_at(self, run: StageRun) -> ModelCard:
        """The model card of the best model so far: the run's facts, the stage, and the dev F1 that selected it."""
        loop = run.loop
        return (self.card or ModelCard()).selected_by(run.name, loop.best_epoch, loop.best_step, loop.best_dev_f1)


class EarlyStopping(TrainerPlugin):
    """Counts dev evaluations without improvement (in the loop state); stops the stage after ``patience`` of them.

    With ``patience`` None (the paper configs) it only counts. It reads the
    evaluations :class:`DevEvaluation` recorded, so it requires it before it.
    """

    requires = (DevEvaluation,)

    def stage_start(self, run: StageRun) -> None:
        self.counted = len(run.loop.history)

    def step_boundary(self, run: StageRun) -> None:
        self.check(run)

    def epoch_end(self, run: StageRun) -> None:
        self.check(run)

    def check(self, run: StageRun) -> None:
        loop = run.loop
        new = loop.history[self.counted:]
        self.counted = len(loop.history)
        for entry in new:
            loop.evals_without_improvement = 0 if entry["improved"] else loop.evals_without_improvement + 1
        patience = run.stage.patience
        if new and patience is not None and loop.evals_without_improvement >= patience:
            run.stop = True


TB_LOSS, TB_LR, TB_EPOCH_LOSS, TB_DEV_F1 = "train/loss", "train/lr", "train/epoch_loss", "dev/f1"
"""The scalar tags :class:`TensorBoardLogging` writes (per type: ``dev/f1/<type>``)."""


class TensorBoardLogging(TrainerPlugin):
    """A stage's curves as TensorBoard event files in ``log_dir`` (``RUN/tensorboard/<stage>/``, :meth:`RunFolder.tensorboard`).

    Per optimiser step: :data:`TB_LOSS` (the step's loss, summed over
    processes) and :data:`TB_LR` (the learning rate the step was taken
    with). Per dev evaluation, at its step: :data:`TB_DEV_F1` (the F1 that
    selected the model, as the loop's history records it), one
    ``dev/f1/<type>`` per entity type of the dev gold or predictions (the
    per-type scores of that evaluation, :attr:`StageRun.dev_scores`), and
    :data:`TB_EPOCH_LOSS` (the mean loss since the previous evaluation).
    It reads the step losses :class:`LossLogging` reads when built with
    ``step_losses`` and the evaluations :class:`DevEvaluation` records, so
    it comes after both; it writes files, so on the main process only. A
    resumed stage appends a new event file that purges the steps after its
    checkpoint (TensorBoard hides them), so a curve has one value per step.
    """

    requires = (LossLogging, DevEvaluation)
    main_process_only = True

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("tensorboard: true needs the tensorboard package: pip install 'xlingual[tensorboard]' "
                              "(make install installs it)") from None
        self.log_dir, self.writer_class = log_dir, SummaryWriter
        self.writer: Any = None

    def stage_start(self, run: StageRun) -> None:
        loop = run.loop
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # a resumed stage: the steps after its checkpoint were logged by the interrupted run and are logged again
        self.writer = self.writer_class(str(self.log_dir), purge_step=loop.global_step + 1 if loop.global_step else None)
        self.logged = len(loop.history)
        self.lr = run.scheduler.get_last_lr()[0]

    def after_step(self, run: StageRun) -> None:
        if run.step_loss is None:
            raise ConfigError("plugins: TensorBoardLogging needs every step's loss: build LossLogging(step_losses=True)")
        step = run.loop.global_step
        self.writer.add_scalar(TB_LOSS, run.step_loss, step)
        self.writer.add_scalar(TB_LR, self.lr, step)
        self.lr = run.scheduler.get_last_lr()[0]  # the rate of the next step

    def step_boundary(self, run: StageRun) -> None:
        self._write_evaluations(run)

    def epoch_end(self, run: StageRun) -> None:
        self._write_evaluations(run)
        self.writer.flush()

    def close(self, run: StageRun) -> None:  # the loop calls it before stage_end, whatever happened
        if self.writer is not None:
            self._write_evaluations(run)
            self.writer.close()
            self.writer = None

    def _write_evaluations(self, run: StageRun) -> None:
        """The dev evaluations recorded since the last call (one at most between two steps)."""
        history = run.loop.history
        for index in range(self.logged, len(history)):
            entry = history[index]
            step = entry["step"]
            self.writer.add_scalar(TB_DEV_F1, entry["dev_f1"], step)
            if entry.get("train_loss") is not None:
                self.writer.add_scalar(TB_EPOCH_LOSS, entry["train_loss"], step)
            if index == len(history) - 1 and run.dev_scores is not None:  # the scores are the last evaluation's
                for etype, f1 in run.dev_scores.per_type_f1.items():
                    self.writer.add_scalar(f"{TB_DEV_F1}/{etype}", f1, step)
        self.logged = len(history)


class StageCheckpoints:
    """The resumable state of one stage in ``run_dir/state/<stage>``, swapped in through a temporary folder."""

    def __init__(self, run_dir: Path, name: str) -> None:
        self.name = name
        self.layout = RunFolder(run_dir).stage(name)
        self.state_dir = self.layout.root

    def read_loop_state(self) -> LoopState | None:
        """The saved loop counters, if any (also from a checkpoint interrupted while being swapped in)."""
        folder = self.saved_folder()
        return read_loop_state(folder / LOOP_STATE_NAME) if folder is not None and (folder / LOOP_STATE_NAME).is_file() else None

    def saved_folder(self) -> Path | None:
        """The folder holding the stage's last checkpoint: ``state/<stage>``, or its ``.old`` twin while one was swapped in.

        A folder with files but no loop state still counts: a resume must say what is missing, not start over.
        """
        for folder in (self.state_dir, self.layout.previous):
            if (folder / LOOP_STATE_NAME).is_file():
                return folder
        for folder in (self.state_dir, self.layout.previous):
            if folder.is_dir() and any(folder.iterdir()):
                return folder
        return None

    def missing_files(self, folder: Path, accelerator) -> list[str]:
        """What an exact resume needs from ``folder`` and does not find there, in a fixed order."""
        return [name for name in required_state_files(accelerator) if not (folder / name).is_file()]

    def save(self, accelerator, loop: LoopState) -> None:
        accelerator.wait_for_everyone()
        tmp = self.layout.incoming
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()  # every process writes its RNG state into the folder
        with _storage_errors_named(tmp):
            accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()  # all RNG states are in before the folder moves
        if accelerator.is_main_process:
            atomic_write_json(tmp / LOOP_STATE_NAME, loop.to_dict())
            replace_dir(tmp, self.state_dir)
        accelerator.wait_for_everyone()

    def load(self, accelerator, partial: bool = False) -> LoopState:
        """Restore the whole training state of the last checkpoint, or refuse with the list of what is missing.

        Without its RNG states, optimiser moments or schedule a resumed run
        trains another model than the uninterrupted one would have, so a
        missing part is an error; ``partial`` (``--resume-partial``) goes on
        with what is there and warns. The loop state is needed either way:
        without it nothing says where the stage stopped.
        """
        folder = self.saved_folder()
        if folder is None:
            raise ConfigError(f"{self.state_dir}: no saved training state to resume from")
        missing = self.missing_files(folder, accelerator)
        if LOOP_STATE_NAME in missing:
            raise ConfigError(f"{folder}: cannot resume without {LOOP_STATE_NAME} (missing: {', '.join(missing)}); train into another --output")
        loop = read_loop_state(folder / LOOP_STATE_NAME)
        if missing and not partial:
            raise ConfigError(f"{folder}: the saved training state is incomplete (missing: {', '.join(missing)}); a resume would not "
                              "give the result of an uninterrupted run. Pass --resume-partial to continue anyway, or train into another --output")
        if missing:
            logger.warning("%s: resuming without %s: the results will differ from an uninterrupted run", folder, ", ".join(missing))
        _load_state(accelerator, folder, missing)
        logger.info("resuming stage %s at epoch %d, batch %d (step %d)", self.name, loop.epoch, loop.batches_done_in_epoch, loop.global_step)
        return loop

    def save_loop_only(self, accelerator, loop: LoopState) -> None:
        """Mark the stage finished without keeping the (large) optimiser state."""
        if accelerator.is_main_process:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            for child in self.state_dir.iterdir():
                if child.name != LOOP_STATE_NAME:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            atomic_write_json(self.state_dir / LOOP_STATE_NAME, loop.to_dict())


@contextmanager
def _storage_errors_named(folder: Path) -> Iterator[None]:
    """A checkpoint that cannot be written (a full disk, a read-only folder) as one line naming its folder.

    ``torch.save`` reports a failed write as a ``RuntimeError`` ("file write
    failed") and safetensors as its own error, neither naming the file; the
    earlier checkpoint is untouched (the new one goes to a temporary folder
    first), so the message says so.
    """
    try:
        yield
    except Exception as err:
        storage = isinstance(err, (OSError, RuntimeError)) or type(err).__name__ == "SafetensorError"
        if not storage:
            raise
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise CheckpointWriteError(f"{folder}: could not save the training state ({reason}); the previous checkpoint is kept: "
                                   "free some space or fix the folder's permissions, then resume with --resume") from err


class Checkpointing(TrainerPlugin):
    """A resumable checkpoint at every epoch boundary and every ``save_every_steps``; the loop state alone at the end."""

    def __init__(self, checkpoints: StageCheckpoints, save_every_steps: int | None) -> None:
        self.checkpoints, self.every = checkpoints, save_every_steps

    def step_boundary(self, run: StageRun) -> None:
        if self.every and run.loop.global_step % self.every == 0:
            run.sync_loss()
            self.checkpoints.save(run.accelerator, run.loop)

    def epoch_boundary(self, run: StageRun) -> None:
        self.checkpoints.save(run.accelerator, run.loop)

    def stage_end(self, run: StageRun) -> None:
        self.checkpoints.save_loop_only(run.accelerator, run.loop)


class StepHooks(TrainerPlugin):
    """The caller's :data:`StepHook` functions, after each step's (and each epoch's) checkpoint."""

    def __init__(self, hooks: Sequence[StepHook]) -> None:
        self.hooks = list(hooks)

    def step_boundary(self, run: StageRun) -> None:
        for hook in self.hooks:
            hook(run.loop)

    epoch_boundary = step_boundary


def read_loop_state(path: Path) -> LoopState:
    """A saved ``loop_state.json``; a garbled or foreign one is a one-line error naming it."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        loop = LoopState(**values)
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{path}: not a readable loop state ({detail}); train into another --output") from None
    if not isinstance(loop.global_step, int) or not isinstance(loop.epoch, int) or not isinstance(loop.history, list):
        raise ConfigError(f"{path}: not a readable loop state (counters of the wrong type); train into another --output")
    return loop


def required_state_files(accelerator) -> list[str]:
    """The files ``accelerator.save_state`` writes for this stage (one RNG state per process) and the loop state."""
    from accelerate.utils import OPTIMIZER_NAME, RNG_STATE_NAME, SAFE_MODEL_NAME, SCALER_NAME, SCHEDULER_NAME

    names = [LOOP_STATE_NAME, f"{SAFE_MODEL_NAME}.safetensors", f"{OPTIMIZER_NAME}.bin", f"{SCHEDULER_NAME}.bin"]
    if getattr(accelerator, "scaler", None) is not None:
        names.append(SCALER_NAME)
    return names + [f"{RNG_STATE_NAME}_{index}.pkl" for index in range(accelerator.num_processes)]


def _load_state(accelerator, folder: Path, missing: Sequence[str]) -> None:
    """``accelerator.load_state`` for the parts that are there; an unreadable file is a one-line error naming the folder.

    accelerate loads every model, optimiser and scheduler it prepared and
    fails on a missing file; for a partial resume the absent ones are left
    out of its lists for the call. (It skips absent RNG states itself.)
    """
    from accelerate.utils import OPTIMIZER_NAME, SAFE_MODEL_NAME, SCHEDULER_NAME

    left_out = {"_models": f"{SAFE_MODEL_NAME}.safetensors", "_optimizers": f"{OPTIMIZER_NAME}.bin", "_schedulers": f"{SCHEDULER_NAME}.bin"}
    kept = {attribute: getattr(accelerator, attribute) for attribute, name in left_out.items() if name in missing}
    for attribute in kept:
        setattr(accelerator, attribute, [])
    try:
        accelerator.load_state(str(folder))
    except Exception as err:  # torch.load, safetensors and pickle each raise their own kinds for a damaged file
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"{folder}: the saved training state cannot be read ({type(err).__name__}: {detail}); "
                          "train into another --output") from None
    finally:
        for attribute, value in kept.items():
            setattr(accelerator, attribute, value)


def save_best(model: MnerModel, folder: Path, card: ModelCard | None = None) -> None:
    """Write the model (with its ``card``) atomically: a full disk leaves the best model so far as it was, nothing half-written beside it."""
    with atomic_write_dir(folder) as tmp:
        model.save_pretrained(tmp, card=card)


__all__ = ["EVENTS", "read_loop_state", "required_state_files", "Checkpointing", "DevEvaluation", "EarlyStopping", "LoopState",
           "LossLogging", "PluginChain", "StageCheckpoints", "StageRun", "StepHook", "StepHooks", "TB_DEV_F1", "TB_EPOCH_LOSS", "TB_LOSS",
           "TB_LR", "TensorBoardLogging", "TrainerPlugin", "check_order", "save_best"]

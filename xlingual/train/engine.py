"""The training loop of one stage, on ``accelerate``.

``accelerate`` gives mixed precision, gradient accumulation, multi-GPU /
multi-node (``accelerate launch`` / ``torchrun``) and
the saving of the full training state (model, optimiser, scheduler, every
RNG). What this module adds is what makes a resumed run *identical* to an
uninterrupted one under a fixed seed:

* the shuffle order of epoch ``e`` depends only on ``(seed, e)`` (a sampler
  with ``set_epoch``), so a resumed epoch sees the same batches and skips the
  ones already done;
* checkpoints are taken only at optimiser-step boundaries, together with a
  small JSON of loop counters (epoch, batch, best dev F1, patience), into a
  temporary folder that is renamed into place;
* model selection is on dev micro-F1 (conlleval), strictly improving, with the
  best model kept as a ``save_pretrained`` folder.

The loop here draws batches and takes optimiser steps; checkpoints, logging,
dev evaluation and early stopping are plugins it calls between steps and
epochs (:mod:`xlingual.train.plugins`).

On several processes (``accelerate launch`` / ``torchrun``) the config's
``batch_size`` stays the *global* batch: every process draws the same global
batch from the sampler and trains on its contiguous share of it
(:func:`process_share`), and each process's loss is weighted so that the sum
over processes is the loss one process would compute on the whole batch
(:func:`share_weight`). DDP averages gradients, so the backward pass uses
that share times the number of processes: N processes take the same
optimiser steps as one process with the same ``batch_size``, up to the order
of floating-point additions. Logged losses are summed across processes;
evaluation runs on the main process and its score is broadcast; only the
main process writes files.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate.data_loader import prepare_data_loader
from accelerate.utils import send_to_device
from torch.utils.data import DataLoader

from xlingual.data.sample import Sample
from xlingual.evaluation.metrics import Scores, score
from xlingual.models.base import EpochItems, MnerModel, VisualLookup, load_deferred
from xlingual.errors import ConfigError, TrainingDivergedError
from xlingual.train.config import StageConfig, TrainConfig, config_digest
from xlingual.train.batching import EpochShuffleSampler, loader_arguments
from xlingual.models.card import ModelCard
from xlingual.workspace import RunFolder
from xlingual.train.plugins import (Checkpointing, DevEvaluation, EarlyStopping, LoopState, LossLogging, PluginChain,
                                    StageCheckpoints, StageRun, StepHook, StepHooks, TensorBoardLogging, TrainerPlugin)

logger = logging.getLogger(__name__)


def process_share(count: int, rank: int, world: int) -> slice:
    """The contiguous part of a global batch of ``count`` items that process ``rank`` of ``world`` trains on.

    Shares differ by at most one item and cover the batch exactly once; a
    process may get none (a last batch smaller than the number of
    processes), and then still runs a step with a zero weight so DDP's
    gradient all-reduce sees every process.
    """
    base, extra = divmod(count, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def share_weight(local: int, total: int, reduction: str) -> float:
    """Factor that turns a process's batch loss into its part of the global batch's loss.

    A batch-mean loss over ``local`` of ``total`` items counts ``local /
    total``; a batch-sum loss counts fully (or not at all for an empty share).
    """
    if reduction == "sum":
        return 1.0 if local else 0.0
    return local / total


def loss_reduction(model: torch.nn.Module) -> str:
    """How the model reduces its loss over a batch: "mean" (ACN, UMT's default) or "sum" (UMT's ``loss_reduction: sum``)."""
    return getattr(getattr(model, "config", None), "loss_reduction", "mean")


def keep_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The DataLoader's collate: the global batch's items, split per process and collated in the loop.

    Deferred visual inputs (raw images of a fine-tuned ViT) are read here, so
    a loader with workers decodes the next batches while this one trains.
    """
    return load_deferred(items)


class DeviceLossSum:
    """The epoch's running loss sum, kept on the loss's device so a step never waits for the GPU.

    Reading a loss (``loss.item()``) after every step made the host wait for
    the device each step, so the next step's kernels could not be queued
    while this one ran. The sum is read only where it is used: at the ten
    logging points per epoch, before an evaluation and before a checkpoint.
    It is float64 and seeded with the saved value, so it performs exactly
    the additions the per-step host sum did and a resumed run logs the same
    numbers.

    On several processes each adds its share of every step's loss; the main
    process alone is seeded with the saved value and a read sums the
    processes' totals (a collective: every process reads at the same points).
    """

    def __init__(self, accelerator=None) -> None:
        self.accelerator = accelerator
        self.total: torch.Tensor | None = None
        self.start_value = 0.0

    @property
    def distributed(self) -> bool:
        return self.accelerator is not None and self.accelerator.num_processes > 1

    def start(self, value: float) -> None:
        main = not self.distributed or self.accelerator.is_main_process
        self.total, self.start_value = None, (value if main else 0.0)

    def add(self, loss: torch.Tensor) -> None:
        if self.total is None:
            dtype = torch.float32 if loss.device.type == "mps" else torch.float64  # MPS has no float64
            self.total = torch.tensor(self.start_value, dtype=dtype, device=loss.device)
        with torch.no_grad():
            self.total.add_(loss)  # one operator; the float32 loss is widened exactly

    def read(self) -> float:
        if not self.distributed:
            return self.start_value if self.total is None else float(self.total.item())
        local = self.total if self.total is not None else torch.tensor(self.start_value, dtype=torch.float64, device=self.accelerator.device)
        return float(self.accelerator.reduce(local.clone(), reduction="sum").item())


class NonFiniteWatch:
    """The first optimiser step whose loss (or clipped gradient norm) was NaN or infinite, kept on the device.

    A non-finite loss trains nothing from then on, but every later epoch
    would log ``train loss nan`` and the run would end as if finished. The
    check must not read the loss every step (that makes the host wait for
    the device, see :class:`DeviceLossSum`), so each step records, on the
    device, the first bad step it has seen; :meth:`check` reads it where the
    loss sum is read anyway (logging points, evaluations, checkpoints), so
    nothing computed after the bad step is evaluated, saved or kept. Under
    fp16 the gradient scaler skips steps with infinite gradients by design,
    so there only the loss counts.
    """

    KINDS = ("loss", "gradient norm")

    def __init__(self, accelerator=None, stage: str = "", stage_config: StageConfig | None = None) -> None:
        self.accelerator, self.stage, self.stage_config = accelerator, stage, stage_config
        self.first: torch.Tensor | None = None
        """[step, kind, value] of the first non-finite value; step -1 while there is none."""

    def observe(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor | None = None) -> None:
        with torch.no_grad():
            values = loss.detach().float().reshape(1)
            if grad_norm is not None:
                values = torch.cat([values, grad_norm.detach().float().reshape(1).to(values.device)])
            if self.first is None:
                self.first = torch.full((3,), -1.0, dtype=torch.float32, device=values.device)
            # device-side only: no .item(), no tensor indexing (that reads the index back), no host-to-device copy
            bad = ~torch.isfinite(values)
            kind = torch.argmax(bad.to(torch.int32)).reshape(1)
            record = torch.cat([torch.full((1,), float(step), device=values.device), kind.float(), values.gather(0, kind)])
            self.first = torch.where(bad.any() & (self.first[0] < 0), record, self.first)

    def first_bad(self) -> tuple[int, str, float] | None:
        """``(step, what, value)`` of the first non-finite value, over every process (a collective there)."""
        first = self.first if self.first is not None else torch.full((3,), -1.0)
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            rows = self.accelerator.gather(first.to(self.accelerator.device).reshape(1, 3)).cpu()
            bad = rows[rows[:, 0] >= 0]
            first = bad[torch.argmin(bad[:, 0])] if len(bad) else rows[0]
        step, kind, value = first.tolist()
        return (int(step), self.KINDS[int(kind)], value) if step >= 0 else None

    def check(self) -> None:
        """Raise ``step N: loss is nan (...)`` when a non-finite value was seen: what, where, and what to try."""
        bad = self.first_bad()
        if bad is not None:
            step, what, value = bad
            lr = f", lr {self.stage_config.lr:g}" if self.stage_config is not None else ""
            raise TrainingDivergedError(f"step {step}: {what} is {value} (stage {self.stage}{lr}); training stopped and the run "
                                        "is marked failed: lower the learning rate, set max_grad_norm, or look for NaN in the inputs")


def process_state():
    """accelerate's view of the processes of this run, on CPUs too.

    Under ``torchrun`` / ``accelerate launch`` on a machine without GPUs,
    accelerate joins the processes (gloo) only when asked to use the CPU;
    otherwise every process would silently train its own copy of the run
    into the same folder. Where the launcher says there are several
    processes and accelerate found no device to join them on, this asks.
    """
    from accelerate import PartialState
    from accelerate.utils import DistributedType

    state = PartialState()
    if state.distributed_type == DistributedType.NO and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        PartialState._reset_state()
        state = PartialState(cpu=True)
    return state


def new_accelerator(config: TrainConfig, run_dir: Path):
    """A fresh Accelerator per stage (each stage has its own model, optimiser and scheduler)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DataLoaderConfiguration, DistributedType

    on_cpus = process_state().distributed_type == DistributedType.MULTI_CPU
    AcceleratorState._reset_state()  # several runs in one process (experiments, tests) re-create it
    return Accelerator(
        cpu=on_cpus,
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        project_dir=str(run_dir),
        # batches are split per process by the engine; this also makes the prepared scheduler step once per
        # optimiser step instead of once per process
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )


def build_optimizer(model: torch.nn.Module, stage: StageConfig, fused: bool = False) -> torch.optim.Optimizer:
    """Adam (ACN) or AdamW with no decay on biases and LayerNorm weights (UMT/BERT convention).

    ``fused`` updates every parameter in one kernel instead of a handful of
    operators per parameter tensor (the same arithmetic; float results agree
    to rounding). The engine turns it on where PyTorch has the kernel (CPU,
    CUDA).
    """
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    options = {"fused": True} if fused else {}
    if stage.optimizer == "adam":
        return torch.optim.Adam([p for _, p in params], lr=stage.lr, weight_decay=stage.weight_decay, **options)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    groups = [
        {"params": [p for n, p in params if not any(k in n for k in no_decay)], "weight_decay": stage.weight_decay},
        {"params": [p for n, p in params if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=stage.lr, **options)


FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")
"""Device types with PyTorch's fused Adam/AdamW kernels (the engine falls back to the per-tensor loop elsewhere)."""


def clip_by_total_norm(gradients: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale ``gradients`` in place so their joint 2-norm is at most ``max_norm`` (torch's formula, 1e-6 included).

    ``torch.nn.utils.clip_grad_norm_`` computes the same with multi-tensor
    kernels but moves each per-tensor norm with its own ``.to()`` call: one
    operator per parameter tensor per step, ~80 for UMT. Gradients must
    share one device and dtype (:func:`clip_gradients` checks).
    """
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(gradients))))
    torch._foreach_mul_(list(gradients), torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total


def clip_gradients(accelerator, parameters: Iterator[torch.nn.Parameter], max_norm: float) -> torch.Tensor | None:
    """``accelerator.clip_grad_norm_``, with :func:`clip_by_total_norm` where accelerate would call torch's clipping.

    Returns the total norm before clipping (as accelerate does; None where it gives none).
    """
    from accelerate.utils import DistributedType

    parameters = list(parameters)
    gradients = [p.grad for p in parameters if p.grad is not None]
    plain = (accelerator.distributed_type in (DistributedType.NO, DistributedType.MULTI_GPU, DistributedType.MULTI_CPU)
             and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() != "true")
    if not plain or not gradients or len({(g.device, g.dtype) for g in gradients}) > 1:
        return accelerator.clip_grad_norm_(parameters, max_norm)
    accelerator.unscale_gradients()
    return clip_by_total_norm(gradients, max_norm)


def build_scheduler(optimizer: torch.optim.Optimizer, stage: StageConfig, total_steps: int):
    """The stage's ``schedule``: linear warm-up and decay over the true number of steps, or a constant rate."""
    if stage.schedule == "linear" or (stage.schedule is None and stage.warmup_ratio > 0):
        from transformers import get_linear_schedule_with_warmup

        return get_linear_schedule_with_warmup(optimizer, int(stage.warmup_ratio * total_steps), total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def evaluate_model(model: MnerModel, samples: Sequence[Sample], visual: VisualLookup | None, batch_size: int) -> tuple[Scores, list[list[str]]]:
    """Dev scores (conlleval: micro-F1 and per type) and the predictions, decoded and scored once per evaluation."""
    predictions = model.predict(list(samples), visual, batch_size=batch_size)
    return score([s.labels for s in samples], predictions), predictions


class StageTrainer:
    """Trains one stage with dev-based model selection and resumable checkpoints.

    :meth:`train` sets the stage up and runs the loop of optimiser steps;
    logging, dev evaluation, early stopping, checkpoints and the caller's
    ``hooks`` are :mod:`xlingual.train.plugins` the loop calls at fixed points.
    ``plugins`` adds the caller's own after the built-in ones (so they may
    require any of them) and before the hooks; the whole chain is checked
    here (:class:`~xlingual.train.plugins.PluginChain`), before anything
    trains. ``card`` is what the saved best model's card says of the run.
    """

    def __init__(self, config: TrainConfig, stage_config: StageConfig, stage_name: str, run_dir: Path,
                 best_dir: Path, hooks: Sequence[StepHook] = (), plugins: Sequence[TrainerPlugin] = (),
                 card: ModelCard | None = None) -> None:
        self.config = config
        self.stage = stage_config
        self.name = stage_name
        self.run_dir = run_dir
        self.checkpoints = StageCheckpoints(run_dir, stage_name)
        self.state_dir = self.checkpoints.state_dir
        self.best_dir = best_dir
        self.run_id = config_digest(config)
        curves = [TensorBoardLogging(RunFolder(run_dir).tensorboard(stage_name))] if config.tensorboard else []
        self.plugins = PluginChain([LossLogging(step_losses=config.tensorboard), DevEvaluation(best_dir, evaluate_model, card), *curves,
                                    EarlyStopping(), Checkpointing(self.checkpoints, config.save_every_steps), *plugins, StepHooks(hooks)])

    def read_loop_state(self) -> LoopState | None:
        """The saved loop counters, if any (also from a checkpoint interrupted while being swapped in)."""
        return self._own(self.checkpoints.read_loop_state())

    def _own(self, loop: LoopState | None) -> LoopState | None:
        """``loop``, refused when another run (another config) saved it."""
        if loop is not None and loop.run_id is not None and loop.run_id != self.run_id:
            raise ConfigError(f"{self.state_dir}: the saved training state belongs to another run (run id {loop.run_id}, "
                              f"this config {self.run_id}); resume with the same options or use another --output")
        return loop

    def train(self, model: MnerModel, train: Sequence[Sample], dev: Sequence[Sample], visual: VisualLookup | None,
              resume: bool = False, partial: bool = False) -> LoopState:
        """Train ``model`` in place; the best dev model ends up in ``best_dir``.

        ``resume`` continues from the saved state, which must be whole unless
        ``partial`` (see :meth:`StageCheckpoints.load`). A NaN or infinite
        loss stops the stage with :class:`TrainingDivergedError`.
        """
        saved = self.read_loop_state() if resume else None
        if saved is not None and saved.finished:
            logger.info("stage %s already finished (best dev F1 %.2f)", self.name, saved.best_dev_f1)
            return saved
        run, loader, optimizer = self._set_up(model, train, visual, resume, partial)
        if run.loop.finished:
            return run.loop
        run.dev = dev
        logger.info("stage %s: %d samples, %d steps per epoch, up to %d epochs (%d steps)", self.name, len(loader.dataset),
                    run.steps_per_epoch, self.stage.epochs, run.total_steps)
        self._loop(run, loader, optimizer, model)
        return run.loop

    def _set_up(self, model: MnerModel, train: Sequence[Sample], visual: VisualLookup | None, resume: bool, partial: bool = False):
        """Accelerator, data, optimiser and schedule of the stage, and its loop state (restored on resume)."""
        accelerator = new_accelerator(self.config, self.run_dir)
        stage = self.stage
        items = model.encode(list(train), visual)
        # A private generator: creating an iterator must not draw from the global RNG, or a resumed
        # epoch (iterator created after the RNG restore) would see different dropout masks.
        order = loader_arguments([sample.lang for sample in train], stage.batch_size, self.config.seed, stage.batching)
        loader = DataLoader(EpochItems(items), collate_fn=keep_items, generator=torch.Generator().manual_seed(self.config.seed),
                            num_workers=model.loader_workers, **order)
        # Every process iterates the same global batches (not accelerate's per-process shards, which pad a short
        # last batch with samples from the epoch's start); the loop takes this process's share.
        loader = prepare_data_loader(loader, None, num_processes=1, process_index=0, put_on_device=False,
                                     rng_types=accelerator.rng_types.copy())
        steps_per_epoch = math.ceil(len(loader) / self.config.gradient_accumulation_steps)
        total_steps = steps_per_epoch * stage.epochs
        if stage.max_steps:
            total_steps = min(total_steps, stage.max_steps)
        optimizer = build_optimizer(model, stage, fused=accelerator.device.type in FUSED_OPTIMIZER_DEVICES)
        scheduler = build_scheduler(optimizer, stage, total_steps)
        wrapped, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
        if resume and self.checkpoints.saved_folder() is not None:
            loop = self._own(self.checkpoints.load(accelerator, partial))
        else:
            loop = LoopState(stage=self.name, run_id=self.run_id)
        run = StageRun(self.name, stage, accelerator, wrapped, accelerator.unwrap_model(wrapped), scheduler, loop,
                       DeviceLossSum(accelerator), total_steps, steps_per_epoch, watch=NonFiniteWatch(accelerator, self.name, stage),
                       visual=visual)
        return run, loader, optimizer

    def _loop(self, run: StageRun, loader, optimizer, model: MnerModel) -> None:
        """Epochs of optimiser steps with the plugins between them; the step budget or a plugin's stop ends it early."""
        accelerator, loop, stage, wrapped = run.accelerator, run.loop, self.stage, run.wrapped
        reduction = loss_reduction(model)
        run.started = time.time()
        run.losses.start(loop.epoch_loss_sum)
        budget_done = False
        plugins = self.plugins
        try:
            plugins.dispatch("stage_start", run)
            while loop.epoch < stage.epochs:
                loader.set_epoch(loop.epoch)
                loader.dataset.set_epoch(loop.epoch)  # inputs drawn anew each epoch (EpochItems); accelerate passes the epoch on only in some sampler layouts
                epoch_loader = accelerator.skip_first_batches(loader, loop.batches_done_in_epoch) if loop.batches_done_in_epoch else loader
                wrapped.train()
                for global_items in epoch_loader:
                    loss = self._train_step(run, optimizer, model, global_items, reduction)
                    loop.batches_done_in_epoch += 1
                    if not accelerator.sync_gradients:
                        continue
                    loop.global_step += 1
                    run.losses.add(loss)
                    loop.epoch_loss_steps += 1
                    run.loss = loss
                    plugins.dispatch("after_step", run)
                    budget_done = loop.global_step >= run.total_steps
                    if budget_done:
                        break
                    plugins.dispatch("step_boundary", run)
                    if run.stop:
                        break
                if run.stop:
                    break
                plugins.dispatch("epoch_end", run)  # the end of an epoch, or of the step budget
                loop.epoch += 1
                loop.batches_done_in_epoch = 0
                if budget_done or run.stop:
                    break
                plugins.dispatch("epoch_boundary", run)  # the next epoch follows
        finally:
            plugins.dispatch("close", run)
        loop.finished = True
        plugins.dispatch("stage_end", run)

    def _train_step(self, run: StageRun, optimizer, model: MnerModel, global_items: list[Any], reduction: str) -> torch.Tensor:
        """Forward and backward of this process's share of one global batch; the optimiser steps when accumulation is complete.

        Returns this process's (weighted) loss of the batch. The loop's counters
        are the caller's: this method changes only the model, the optimiser
        and the schedule.
        """
        accelerator, wrapped = run.accelerator, run.wrapped
        world, rank = accelerator.num_processes, accelerator.process_index
        check_norm = self.config.mixed_precision != "fp16"  # fp16's scaler skips steps with infinite gradients itself
        local_items = global_items[process_share(len(global_items), rank, world)]
        batch = send_to_device(model.collate(local_items or global_items[:1]), accelerator.device,
                               non_blocking=accelerator.non_blocking)
        with accelerator.accumulate(wrapped):
            loss = wrapped(batch)["loss"]
            if world > 1:  # this process's part of the global batch's loss; DDP averages gradients
                loss = loss * share_weight(len(local_items), len(global_items), reduction)
                accelerator.backward(loss * world)
            else:
                accelerator.backward(loss)
            norm = None
            if accelerator.sync_gradients and self.stage.max_grad_norm:
                norm = clip_gradients(accelerator, wrapped.parameters(), self.stage.max_grad_norm)
            run.watch.observe(run.loop.global_step + 1, loss, norm if check_norm else None)
            optimizer.step()
            run.scheduler.step()
            optimizer.zero_grad()
        return loss

__all__ = ["DeviceLossSum", "NonFiniteWatch", "EpochShuffleSampler", "keep_items", "loss_reduction", "process_share", "process_state", "share_weight",
           "StageTrainer", "FUSED_OPTIMIZER_DEVICES", "build_optimizer", "build_scheduler", "clip_by_total_norm", "clip_gradients",
           "evaluate_model"]

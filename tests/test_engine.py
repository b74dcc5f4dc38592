"""The training loop's controls: max_steps, gradient accumulation (and its resume), eval_every_steps, early stopping.

Everything runs on a text-only ACN a few hundred parameters wide and a dozen
made-up posts. The tests pin properties of the loop (how many optimiser steps
were taken, which evaluations ran, which model was kept), never the loss
values of one seed: dev F1 is scripted where model selection is under test.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from umt_helpers import single_threaded

from xlingual.data.sample import Sample
from xlingual.evaluation.metrics import Scores
from xlingual.models.acn import AcnModel
from xlingual.train import engine
from xlingual.train.config import StageConfig, TrainConfig
from xlingual.train.engine import StageTrainer
from xlingual.train.plugins import LoopState, TrainerPlugin

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)

TINY = {"word_vectors": None, "word_dim": 8, "char_dim": 4, "char_filters": 2, "char_kernels": [2], "char_out": 4,
        "hidden": 8, "use_image": False, "dropout": 0.25}
WORDS = ["paris", "visits", "obama", "apple", "today", "in", "the", "beat", "madrid", "rain"]
LABELS = {"paris": "B-LOC", "obama": "B-PER", "apple": "B-ORG", "madrid": "B-LOC"}


def posts(count: int, offset: int = 0) -> list[Sample]:
    out = []
    for i in range(count):
        tokens = [WORDS[(i * 3 + j + offset) % len(WORDS)] for j in range(4 + i % 3)]
        out.append(Sample(f"p{offset}-{i}", tokens, [LABELS.get(t, "O") for t in tokens], [], "en"))
    return out


TRAIN, DEV = posts(10), posts(4, offset=1)


def new_model() -> AcnModel:
    return AcnModel.build(TINY, TRAIN + DEV)


class Steps:
    """Counts the optimiser steps really taken (torch's post-step hook on the inner optimiser)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        build = engine.build_optimizer

        def counting(model, stage, **options):
            optimizer = build(model, stage, **options)
            optimizer.register_step_post_hook(lambda *_: self._step())
            return optimizer

        monkeypatch.setattr(engine, "build_optimizer", counting)

    def _step(self) -> None:
        self.count += 1


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Steps:
    return Steps(monkeypatch)


def scripted_dev_f1(monkeypatch: pytest.MonkeyPatch, scores: list[float]) -> list[dict[str, torch.Tensor]]:
    """Make evaluation return ``scores`` in turn; returns the weights the model had at each evaluation."""
    seen: list[dict[str, torch.Tensor]] = []
    values: Iterator[float] = iter(scores)

    def fake(model, samples, visual, batch_size):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return Scores(precision=0.0, recall=0.0, f1=next(values)), []

    monkeypatch.setattr(engine, "evaluate_model", fake)
    return seen


def train(tmp_path: Path, stage: StageConfig, accumulation: int = 1, save_every: int | None = None, hooks=(),
          resume: bool = False, folder: str = "run") -> LoopState:
    torch.manual_seed(0)
    config = TrainConfig(gradient_accumulation_steps=accumulation, save_every_steps=save_every, seed=7)
    trainer = StageTrainer(config, stage, "target", tmp_path / folder, tmp_path / folder / "model", hooks)
    return trainer.train(new_model(), TRAIN, DEV, None, resume=resume)


def evaluated_steps(loop: LoopState) -> list[tuple[int, int]]:
    return [(h["epoch"], h["step"]) for h in loop.history]


# 10 posts in batches of 2: 5 batches per epoch.

def test_one_optimiser_step_per_batch_and_one_evaluation_per_epoch(tmp_path, steps):
    loop = train(tmp_path, StageConfig(epochs=2, batch_size=2))
    assert steps.count == loop.global_step == 10
    assert evaluated_steps(loop) == [(0, 5), (1, 10)]
    assert loop.finished and loop.epoch == 2


@pytest.mark.parametrize("max_steps, epochs_run", [(3, 1), (7, 2), (10, 2)])
def test_max_steps_stops_mid_epoch_and_evaluates_the_last_step(tmp_path, steps, max_steps, epochs_run):
    loop = train(tmp_path, StageConfig(epochs=5, batch_size=2, max_steps=max_steps))
    assert steps.count == loop.global_step == max_steps
    assert loop.epoch == epochs_run
    assert loop.history[-1]["step"] == max_steps
    assert [h["step"] for h in loop.history] == sorted({*range(5, max_steps, 5), max_steps})


@pytest.mark.parametrize("accumulation", [2, 3, 5])
def test_gradient_accumulation_takes_one_step_per_group_of_batches(tmp_path, steps, accumulation):
    """An epoch's last, smaller group still makes a step: ceil(batches / accumulation) per epoch."""
    loop = train(tmp_path, StageConfig(epochs=2, batch_size=2), accumulation=accumulation)
    per_epoch = math.ceil(5 / accumulation)
    assert steps.count == loop.global_step == 2 * per_epoch
    assert evaluated_steps(loop) == [(0, per_epoch), (1, 2 * per_epoch)]


def test_gradient_accumulation_with_max_steps_counts_optimiser_steps(tmp_path, steps):
    loop = train(tmp_path, StageConfig(epochs=4, batch_size=2, max_steps=4), accumulation=2)
    assert steps.count == loop.global_step == 4 and loop.epoch == 2  # 3 steps in epoch 0, the 4th in epoch 1


class Interrupt(KeyboardInterrupt):
    pass


def stop_at(step: int, epoch_end: bool = False):
    """Interrupt after optimiser step ``step`` (or after the epoch-end checkpoint that follows it)."""
    def hook(loop: LoopState) -> None:
        if loop.global_step == step and (not epoch_end or loop.batches_done_in_epoch == 0):
            raise Interrupt()
    return hook


@pytest.mark.parametrize("stop_step, save_every, epoch_end", [(2, 1, False), (4, 2, False), (3, None, True)])
def test_resume_with_gradient_accumulation_equals_an_uninterrupted_run(tmp_path, steps, stop_step, save_every, epoch_end):
    """Accumulation 2, 3 steps per epoch; interrupted mid-epoch (step checkpoints) or at an epoch end."""
    stage = StageConfig(epochs=3, batch_size=2)
    whole = train(tmp_path, stage, accumulation=2, save_every=save_every, folder="whole")
    assert steps.count == 9
    steps.count = 0
    with pytest.raises(Interrupt):
        train(tmp_path, stage, accumulation=2, save_every=save_every, hooks=[stop_at(stop_step, epoch_end)], folder="cut")
    assert steps.count == stop_step
    steps.count = 0
    resumed = train(tmp_path, stage, accumulation=2, save_every=save_every, resume=True, folder="cut")
    assert steps.count == 9 - stop_step  # no step repeated, none skipped
    assert resumed.global_step == whole.global_step == 9
    assert evaluated_steps(resumed) == evaluated_steps(whole)
    assert [h["dev_f1"] for h in resumed.history] == pytest.approx([h["dev_f1"] for h in whole.history])
    a, b = load_file(str(tmp_path / "whole" / "model" / "model.safetensors")), load_file(str(tmp_path / "cut" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)


def test_eval_every_steps_adds_evaluations_inside_epochs_once_per_step(tmp_path, steps):
    loop = train(tmp_path, StageConfig(epochs=2, batch_size=2, eval_every_steps=2))
    assert steps.count == 10
    assert evaluated_steps(loop) == [(0, 2), (0, 4), (0, 5), (1, 6), (1, 8), (1, 10)]


def test_an_epoch_ending_on_an_eval_step_is_evaluated_once(tmp_path, steps):
    """Step 5 is both an eval_every_steps step and an epoch end: one evaluation, one history entry."""
    loop = train(tmp_path, StageConfig(epochs=3, batch_size=2, eval_every_steps=5))
    assert steps.count == 15
    assert evaluated_steps(loop) == [(0, 5), (1, 10), (2, 15)]


def test_a_repeated_evaluation_does_not_use_up_patience(tmp_path, monkeypatch):
    scripted_dev_f1(monkeypatch, [40.0, 50.0, 10.0, 10.0, 10.0, 10.0])
    loop = train(tmp_path, StageConfig(epochs=3, batch_size=2, eval_every_steps=5, patience=2))
    assert evaluated_steps(loop) == [(0, 5), (1, 10), (2, 15)] and loop.best_step == 10


def test_eval_every_steps_counts_optimiser_steps_under_accumulation(tmp_path):
    loop = train(tmp_path, StageConfig(epochs=2, batch_size=2, eval_every_steps=2), accumulation=2)
    assert evaluated_steps(loop) == [(0, 2), (0, 3), (1, 4), (1, 6)]


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience(tmp_path, steps, monkeypatch):
    weights = scripted_dev_f1(monkeypatch, [10.0, 30.0, 20.0, 30.0, 99.0, 99.0])
    loop = train(tmp_path, StageConfig(epochs=8, batch_size=2, patience=2))
    assert evaluated_steps(loop) == [(0, 5), (1, 10), (2, 15), (3, 20)]  # a tie is no improvement
    assert steps.count == 20
    assert (loop.best_epoch, loop.best_step, loop.best_dev_f1) == (1, 10, 30.0)
    assert [h["improved"] for h in loop.history] == [True, True, False, False]
    kept = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    at_best, at_end = weights[1], weights[3]
    changed = [k for k in kept if not torch.equal(at_best[k], at_end[k])]
    assert changed, "training went on after the best epoch"
    assert all(torch.equal(kept[k], at_best[k]) for k in kept)


def test_without_patience_every_epoch_runs(tmp_path, steps, monkeypatch):
    scripted_dev_f1(monkeypatch, [50.0, 10.0, 10.0, 10.0])
    loop = train(tmp_path, StageConfig(epochs=4, batch_size=2, patience=None))
    assert len(loop.history) == 4 and steps.count == 20 and loop.best_epoch == 0


def test_patience_counts_step_evaluations_too(tmp_path, steps, monkeypatch):
    scripted_dev_f1(monkeypatch, [40.0, 10.0, 50.0, 10.0, 10.0, 10.0, 10.0])
    loop = train(tmp_path, StageConfig(epochs=5, batch_size=2, eval_every_steps=2, patience=2))
    # evaluations at steps 2, 4, 5 (epoch end), 6, 8: the best is step 5, two misses after it stop the stage
    assert evaluated_steps(loop) == [(0, 2), (0, 4), (0, 5), (1, 6), (1, 8)]
    assert steps.count == 8 and (loop.best_epoch, loop.best_step) == (0, 5)


# -- the loop's plugins ----------------------------------------------------------

class Recorder(TrainerPlugin):
    """Records which plugin points the loop calls, with the optimiser step each saw; may stop the stage at a step."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.stop_at = stop_at

    def _record(self, point: str, run) -> None:
        self.calls.append((point, run.loop.global_step))

    def stage_start(self, run) -> None:
        self._record("stage_start", run)

    def after_step(self, run) -> None:
        self._record("after_step", run)

    def step_boundary(self, run) -> None:
        self._record("step_boundary", run)
        run.stop = run.loop.global_step == self.stop_at

    def epoch_end(self, run) -> None:
        self._record("epoch_end", run)

    def epoch_boundary(self, run) -> None:
        self._record("epoch_boundary", run)

    def stage_end(self, run) -> None:
        self._record("stage_end", run)

    def close(self, run) -> None:
        self._record("close", run)

    def count(self, point: str) -> int:
        return sum(1 for call, _ in self.calls if call == point)


def train_with(tmp_path: Path, stage: StageConfig, plugin, hooks=()) -> LoopState:
    torch.manual_seed(0)
    trainer = StageTrainer(TrainConfig(seed=7), stage, "target", tmp_path / "run", tmp_path / "run" / "model", hooks, plugins=[plugin])
    return trainer.train(new_model(), TRAIN, DEV, None)


def test_a_plugin_sees_every_step_and_the_boundaries_the_stage_goes_on_from(tmp_path):
    recorder = Recorder()
    loop = train_with(tmp_path, StageConfig(epochs=2, batch_size=2), recorder)
    assert loop.global_step == 10 and recorder.calls[0] == ("stage_start", 0)
    assert [step for call, step in recorder.calls if call == "after_step"] == list(range(1, 11))
    assert [step for call, step in recorder.calls if call == "step_boundary"] == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # not after the last
    assert [step for call, step in recorder.calls if call == "epoch_end"] == [5, 10]
    assert [step for call, step in recorder.calls if call == "epoch_boundary"] == [5]  # no boundary after the last epoch
    assert recorder.calls[-2:] == [("close", 10), ("stage_end", 10)]


def test_a_plugin_that_stops_ends_the_stage_before_the_plugins_after_it(tmp_path, steps):
    seen: list[int] = []
    recorder = Recorder(stop_at=3)
    loop = train_with(tmp_path, StageConfig(epochs=4, batch_size=2), recorder, hooks=[lambda state: seen.append(state.global_step)])
    assert steps.count == loop.global_step == 3 and loop.finished
    assert seen == [1, 2]  # the step hooks come after the stopping plugin
    assert recorder.count("epoch_end") == 0 and recorder.count("stage_end") == 1


def test_early_stopping_counts_the_evaluations_before_an_interruption(tmp_path, steps, monkeypatch):
    """Patience 2; dev F1 50 then no improvement: epoch 2 stops, whether or not the run was cut after epoch 1."""
    scripted_dev_f1(monkeypatch, [50.0, 10.0, 10.0] + [50.0, 10.0] + [10.0])
    stage = StageConfig(epochs=6, batch_size=2, patience=2)
    whole = train(tmp_path, stage, folder="whole")
    with pytest.raises(Interrupt):
        train(tmp_path, stage, hooks=[stop_at(10, epoch_end=True)], folder="cut")
    resumed = train(tmp_path, stage, resume=True, folder="cut")
    assert evaluated_steps(whole) == evaluated_steps(resumed) == [(0, 5), (1, 10), (2, 15)]
    assert whole.evals_without_improvement == resumed.evals_without_improvement == 2


# -- a non-finite loss or gradient norm stops the stage ------------------------------------

class PoisonGradients(TrainerPlugin):
    """From optimiser step ``step`` on, every gradient of one parameter is NaN while the loss stays finite."""

    def __init__(self, step: int) -> None:
        self.step = step

    def stage_start(self, run) -> None:
        loop = run.loop
        parameter = next(p for p in run.wrapped.parameters() if p.requires_grad)
        parameter.register_hook(lambda grad: grad * float("nan") if loop.global_step + 1 >= self.step else grad)


@pytest.mark.parametrize("bad_step", [2, 4, 7])
def test_a_nan_gradient_norm_stops_the_stage_at_its_step_before_anything_is_scored(tmp_path, monkeypatch, bad_step):
    """10 posts, batch 2: 5 steps per epoch. The loss stays finite; the clipped gradient norm gives the fault away."""
    from xlingual.errors import TrainingDivergedError

    dev_scores = scripted_dev_f1(monkeypatch, [10.0, 20.0, 30.0])
    with pytest.raises(TrainingDivergedError, match=rf"^step {bad_step}: gradient norm is nan \(stage target, lr 0.001\)"):
        train_with(tmp_path, StageConfig(epochs=3, batch_size=2, max_grad_norm=1.0), PoisonGradients(bad_step))
    assert len(dev_scores) == (bad_step - 1) // 5  # only epochs that ended before the bad step were evaluated
    if (bad_step - 1) // 5:  # a model kept before the fault is finite; nothing after it was saved
        kept = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
        assert all(torch.isfinite(t).all() for t in kept.values())
    saved = StageTrainer(TrainConfig(seed=7), StageConfig(epochs=3, batch_size=2, max_grad_norm=1.0), "target", tmp_path / "run",
                         tmp_path / "run" / "model").read_loop_state()
    assert saved is None or saved.global_step < bad_step


def test_without_clipping_a_nan_gradient_shows_as_the_next_steps_nan_loss(tmp_path, monkeypatch):
    from xlingual.errors import TrainingDivergedError

    scripted_dev_f1(monkeypatch, [10.0, 20.0])
    with pytest.raises(TrainingDivergedError, match=r"^step 4: loss is nan"):  # step 3's NaN update poisons step 4's loss
        train_with(tmp_path, StageConfig(epochs=2, batch_size=2), PoisonGradients(3))


def test_the_watch_keeps_the_first_bad_step_and_ignores_finite_ones():
    watch = engine.NonFiniteWatch(None, "target", StageConfig())
    for step, loss, norm in [(1, 0.5, 1.0), (2, 0.4, None), (3, 0.3, float("inf")), (4, float("nan"), 1.0), (5, 0.2, 0.1)]:
        watch.observe(step, torch.tensor(loss), None if norm is None else torch.tensor(norm))
    assert watch.first_bad() == (3, "gradient norm", float("inf"))
    clean = engine.NonFiniteWatch()
    clean.observe(1, torch.tensor(0.5), torch.tensor(2.0))
    assert clean.first_bad() is None

"""TensorBoard curves (``tensorboard: true``): event files read back and checked against the run's own records.

Each curve is compared with what the run wrote elsewhere: the loop history
in ``metrics.json`` (dev F1 and mean loss per evaluation), the dev scores of
the saved best model (per-type F1 at the step that selected it), and the
learning-rate schedule rebuilt from the config. A resumed run must show one
value per step, the same values as an uninterrupted run.
"""

from __future__ import annotations

import statistics
import sys

import pytest
import torch

from resume_helpers import Interrupt
from xlingual.data.labels import spans
from xlingual.errors import ConfigError
from xlingual.evaluation.metrics import score
from xlingual.data.formats import read_samples
from xlingual.train.config import load_config
from xlingual.train.engine import build_scheduler
from xlingual.train.plugins import (TB_DEV_F1, TB_EPOCH_LOSS, TB_LOSS, TB_LR, DevEvaluation, LossLogging, PluginChain,
                                    TensorBoardLogging)
from xlingual.train.run import train_run
from xlingual.workspace import RunFolder

TINY_ACN = [
    "images=none", "model.word_vectors=null", "model.word_dim=8", "model.char_dim=4", "model.char_filters=2",
    "model.char_kernels=[2]", "model.char_out=4", "model.hidden=8", "batch_size=2", "patience=null", "data.max_samples=8",
]


def tensorboard_installed() -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard package is not installed (pip install 'xlingual[tensorboard]'; make install does)")


def read_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar curve of an event-file folder as (step, value) pairs, in step order, as TensorBoard shows it."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={SCALARS: 0})  # 0: keep every value, not a sample
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def config(data_dir, *extra: str):
    return load_config("tgt_only", "acn", "en-zh", [*TINY_ACN, f"data.data_dir={data_dir}", "tensorboard=true", *extra])


def test_curves_match_the_runs_history_dev_scores_and_schedule(sample_data_dir, tmp_path):
    tensorboard_installed()
    run_config = config(sample_data_dir, "epochs=3", "schedule=linear", "warmup_ratio=0.3", "target.eval_every_steps=3")
    result = train_run(run_config, tmp_path / "run")
    stage = result.metrics["stages"]["target"]
    history, steps = stage["history"], stage["steps"]
    curves = read_scalars(RunFolder(tmp_path / "run").tensorboard("target"))
    dev = read_samples(RunFolder(tmp_path / "run").prediction("dev"), "jsonl")
    gold_types = {span.type for sample in dev for span in spans(sample.meta["gold"])}
    assert gold_types and {TB_LOSS, TB_LR, TB_DEV_F1, TB_EPOCH_LOSS, *(f"{TB_DEV_F1}/{t}" for t in gold_types)} <= set(curves)

    # one loss and one learning rate per optimiser step
    assert [s for s, _ in curves[TB_LOSS]] == [s for s, _ in curves[TB_LR]] == list(range(1, steps + 1))
    # one dev F1 per evaluation, at its step, the value that selected the model
    evaluated = [h["step"] for h in history]
    assert len(evaluated) > 3, "evaluations every 3 steps and at each epoch end"
    assert [s for s, _ in curves[TB_DEV_F1]] == evaluated
    assert [v for _, v in curves[TB_DEV_F1]] == pytest.approx([h["dev_f1"] for h in history], abs=1e-4)
    # the mean loss of each evaluation interval is the mean of that interval's step losses
    losses = dict(curves[TB_LOSS])
    bounds = [0, *evaluated]
    means = [statistics.fmean(losses[s] for s in range(a + 1, b + 1)) for a, b in zip(bounds, bounds[1:])]
    assert [s for s, _ in curves[TB_EPOCH_LOSS]] == evaluated
    assert [v for _, v in curves[TB_EPOCH_LOSS]] == pytest.approx(means, rel=1e-5)
    assert [v for _, v in curves[TB_EPOCH_LOSS]] == pytest.approx([h["train_loss"] for h in history], rel=1e-5)
    # per type: every evaluation; at the selected step, the saved best model's dev scores
    best = stage["best_step"]
    saved = score([s.meta["gold"] for s in dev], [s.labels for s in dev])
    for etype in gold_types:
        curve = dict(curves[f"{TB_DEV_F1}/{etype}"])
        assert list(curve) == evaluated and all(0 <= v <= 100 for v in curve.values())
        assert curve[best] == pytest.approx(saved.per_type_f1[etype], abs=1e-4)
    assert dict(curves[TB_DEV_F1])[best] == pytest.approx(saved.f1, abs=1e-4) == pytest.approx(stage["best_dev_f1"], abs=1e-4)
    # the rate each step was taken with: the schedule rebuilt from the config
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=run_config.target.lr)
    schedule = build_scheduler(optimizer, run_config.target, steps)
    expected = []
    for _ in range(steps):
        expected.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    assert [v for _, v in curves[TB_LR]] == pytest.approx(expected, rel=1e-6)
    assert len(set(expected)) > 2, "warm-up and decay: the rate changes"


def test_a_resumed_run_shows_one_value_per_step_the_uninterrupted_runs(sample_data_dir, tmp_path):
    tensorboard_installed()
    run_config = config(sample_data_dir, "epochs=2", "model.dropout=0.5", "save_every_steps=2")
    train_run(run_config, tmp_path / "whole")

    def stop(loop):
        if loop.global_step == 5:  # 4 steps per epoch, a checkpoint every 2: step 5 is logged, then purged when the run resumes from step 4
            raise Interrupt()

    with pytest.raises(Interrupt):
        train_run(run_config, tmp_path / "cut", hooks=[stop])
    train_run(run_config, tmp_path / "cut", resume=True)
    whole = read_scalars(RunFolder(tmp_path / "whole").tensorboard("target"))
    cut = read_scalars(RunFolder(tmp_path / "cut").tensorboard("target"))
    assert len(list(RunFolder(tmp_path / "cut").tensorboard("target").iterdir())) == 2, "the resumed stage wrote a file of its own"
    assert set(cut) == set(whole)
    for tag, values in whole.items():
        assert [s for s, _ in cut[tag]] == [s for s, _ in values], tag
        assert [v for _, v in cut[tag]] == pytest.approx([v for _, v in values], rel=1e-5), tag


def test_no_curves_unless_asked(sample_data_dir, tmp_path):
    run_config = load_config("tgt_only", "acn", "en-zh", [*TINY_ACN, f"data.data_dir={sample_data_dir}", "epochs=1"])
    train_run(run_config, tmp_path / "run")
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_tensorboard_without_the_package_is_refused_before_training_naming_the_extra(sample_data_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what an absent package gives: ImportError
    message = r"^tensorboard: true needs the tensorboard package: pip install 'xlingual\[tensorboard\]'"
    with pytest.raises(ConfigError, match=message):
        TensorBoardLogging(tmp_path)
    with pytest.raises(ConfigError, match=message):
        train_run(config(sample_data_dir, "epochs=1"), tmp_path / "run")
    assert not (tmp_path / "run").exists(), "nothing trained, so no folder that looks like a run"


def test_the_curves_need_every_steps_loss_and_the_dev_evaluations_before_them(tmp_path):
    tensorboard_installed()
    curves = TensorBoardLogging(tmp_path)
    with pytest.raises(ConfigError, match="TensorBoardLogging requires LossLogging before it"):
        PluginChain([DevEvaluation(tmp_path, None), curves])
    with pytest.raises(ConfigError, match="TensorBoardLogging requires DevEvaluation before it, but DevEvaluation comes after it"):
        PluginChain([LossLogging(step_losses=True), curves, DevEvaluation(tmp_path, None)])
    PluginChain([LossLogging(step_losses=True), DevEvaluation(tmp_path, None), curves])


def test_the_dev_set_is_decoded_and_scored_once_per_evaluation(sample_data_dir, tmp_path, monkeypatch):
    """The per-type curves come from DevEvaluation's own scores (StageRun.dev_scores): nothing predicts or scores the dev set again."""
    tensorboard_installed()
    from collections import Counter

    from xlingual.evaluation import metrics
    from xlingual.models.acn import AcnModel
    from xlingual.train import engine, plugins

    calls: Counter[str] = Counter()
    predict, score_labels = AcnModel.predict, metrics.score

    def counting_predict(self, samples, *args, **kwargs):
        calls["predict"] += 1
        return predict(self, samples, *args, **kwargs)

    def counting_score(*args, **kwargs):
        calls["score"] += 1
        return score_labels(*args, **kwargs)

    monkeypatch.setattr(AcnModel, "predict", counting_predict)
    for module in (metrics, engine, plugins):  # wherever the scoring function is looked up
        monkeypatch.setattr(module, "score", counting_score, raising=False)
    seen: list[tuple[Counter[str], int]] = []

    class AtStageEnd(plugins.TrainerPlugin):
        def stage_end(self, run) -> None:  # after every plugin closed (TensorBoard writes its last evaluation there)
            seen.append((Counter(calls), len(run.loop.history)))

    train_run(config(sample_data_dir, "epochs=2", "target.eval_every_steps=3"), tmp_path / "run", plugins=[AtStageEnd()])
    (counted, evaluations), = seen
    assert evaluations > 2 and counted == {"predict": evaluations, "score": evaluations}
    curves = read_scalars(RunFolder(tmp_path / "run").tensorboard("target"))
    per_type = [tag for tag in curves if tag.startswith(f"{TB_DEV_F1}/")]
    assert per_type and all(len(curves[tag]) == evaluations for tag in per_type)

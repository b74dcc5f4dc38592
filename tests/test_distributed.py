"""Training on two processes (``torchrun``, gloo on CPU) reproduces training on one process.

The same file is the launched program: run as a script it trains a tiny
text-only ACN (mean loss over the batch, batch 7, so full batches split 4/3
and each epoch's last batch of one post leaves the second process an empty
share) and a tiny text-only UMT (the tiny BERT, ``loss_reduction: sum``,
batch 4, warm-up and clipping on) on the packaged sample. The test runs it
once as a plain process and once under ``torchrun --nproc_per_node 2`` and
compares the run folders; the two-process launch also interrupts the ACN
after step 15 and resumes it from its checkpoint.

Dropout is 0 everywhere (the models' and the tiny BERT's): dropout masks are
drawn per process, so two processes cannot draw the masks one process draws
for the whole batch, and the comparison would measure the masks rather than
the training.

Tolerances: the processes reduce their shares of a batch in a different
order than one process reduces the whole batch (each process's loss, then
the sum across processes; DDP's gradient all-reduce), so float32 results
agree to rounding, not bit for bit, and the difference grows a little with
every step (Adam, which divides by the gradients' root mean square, turns
rounding in near-zero gradients into full-size updates, so long runs at high
learning rates drift apart: 2 % after 25 steps at this learning rate with
8-wide layers). Epoch-mean losses are compared to a relative 1e-4 (these
runs differ by about 1e-7); the per-step losses of ``run.log`` are printed
to four decimals, so they are compared to a relative 1e-4 plus two units of
the last printed digit.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xlingual.train.engine import process_share, share_weight

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("acn", "umt")
STOP_AT_STEP = 15
"""The interrupted ACN stops after this step; its last checkpoint (``save_every_steps: 5``) is mid-epoch."""

ACN = ["images=none", "model.word_vectors=null", "model.word_dim=32", "model.char_dim=4", "model.char_filters=2",
       "model.char_kernels=[2]", "model.char_out=4", "model.hidden=32", "model.dropout=0", "epochs=6", "batch_size=7",
       "lr=3e-2", "save_every_steps=5", *(["tensorboard=true"] if importlib.util.find_spec("tensorboard") else [])]
UMT = ["images=none", "model.freeze_bottom_layers=0", "model.cross_heads=2", "model.max_length=128", "model.dropout=0",
       "model.loss_reduction=sum", "epochs=4", "batch_size=4", "lr=1e-3"]
STEP_LINE = re.compile(r"stage (\w+) epoch \d+: step (\d+)/(\d+), loss ([0-9.]+)")


class Interrupted(Exception):
    """Stops a run after a step, as a crash would (the last checkpoint stays)."""


def build_encoder(data_dir: Path, folder: Path) -> Path:
    """The tiny BERT over the CMNER sample's tokens, with its dropout set to 0."""
    from xlingual.data.datasets import load_split
    from xlingual.testing.tiny_bert import build_tiny_bert

    tokens = {t for split in ("train", "dev", "test") for s in load_split(data_dir, "cmner", split, with_images=False) for t in s.tokens}
    build_tiny_bert(folder, sorted(tokens))
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def train_all(data_dir: Path, encoder: Path, out: Path, interrupt: bool) -> None:
    """The launched program: the runs into ``out`` (one process, or each of torchrun's); ``interrupt`` adds the resumed ACN."""
    from xlingual.train.config import load_config
    from xlingual.train.run import train_run

    acn = load_config("tgt_only", "acn", "en-zh", [*ACN, f"data.data_dir={data_dir}"])
    train_run(acn, out / "acn")

    if interrupt:
        def stop(loop) -> None:
            if loop.global_step == STOP_AT_STEP:
                raise Interrupted

        with pytest.raises(Interrupted):
            train_run(acn, out / "acn-resumed", hooks=[stop])
        train_run(acn, out / "acn-resumed", resume=True)
    umt = load_config("tgt_only", "umt", "en-zh", [*UMT, f"model.encoder={encoder}", f"data.data_dir={data_dir}"])
    train_run(umt, out / "umt")


def launch(args: list[str], out: Path, runs: tuple[str, ...]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    assert all((out / run / "metrics.json").is_file() for run in runs), done.stderr[-3000:]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, sample_data_dir) -> dict[int, Path]:
    """Run folders of the one-process and the two-process launch."""
    root = tmp_path_factory.mktemp("distributed")
    encoder = build_encoder(sample_data_dir, root / "tiny-bert")
    script = [str(Path(__file__).resolve()), str(sample_data_dir), str(encoder)]
    launch([*script, str(root / "one")], root / "one", RUNS)
    launch(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *script, str(root / "two"), "interrupt"], root / "two",
           (*RUNS, "acn-resumed"))
    return {1: root / "one", 2: root / "two"}


def step_losses(run_dir: Path) -> list[float]:
    """Every optimiser step's loss as ``run.log`` prints it (each step is logged: fewer than 20 steps per epoch)."""
    lines = [STEP_LINE.search(line) for line in (run_dir / "run.log").read_text(encoding="utf-8").splitlines()]
    found = [(int(m[2]), int(m[3]), float(m[4])) for m in lines if m]
    assert [step for step, _, _ in found] == list(range(1, found[0][1] + 1)), "each step logged once, in order"
    return [loss for _, _, loss in found]


def history(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["stages"]["target"]["history"]


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))


# -- the share of a global batch each process trains on (fast) -------------------

@given(count=st.integers(0, 200), world=st.integers(1, 16))
def test_process_shares_cover_the_batch_once_and_differ_by_at_most_one(count, world):
    shares = [list(range(count))[process_share(count, rank, world)] for rank in range(world)]
    assert [i for share in shares for i in share] == list(range(count))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


@given(count=st.integers(1, 200), world=st.integers(1, 16), reduction=st.sampled_from(["mean", "sum"]))
def test_share_weights_make_the_processes_losses_add_up_to_the_batch_loss(count, world, reduction):
    """Per-item losses l: the weighted per-process losses sum to the one-process batch loss (mean or sum)."""
    losses = [float((7 * i) % 11 + 1) for i in range(count)]
    total = 0.0
    for rank in range(world):
        local = losses[process_share(count, rank, world)]
        reduced = (sum(local) / len(local) if reduction == "mean" else sum(local)) if local else 123.0  # an empty share's stand-in batch
        total += reduced * share_weight(len(local), count, reduction)
    assert total == pytest.approx(sum(losses) / count if reduction == "mean" else sum(losses))


# -- one process against two ---------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("run", ["acn", "umt"])
def test_two_processes_take_the_steps_of_one_process_with_the_same_global_batch(folders, run):
    one, two = step_losses(folders[1] / run), step_losses(folders[2] / run)
    assert len(one) == len(two) == {"acn": 24, "umt": 24}[run]  # 22 posts: 4 batches of 7 / 6 batches of 4, per epoch
    assert two == pytest.approx(one, rel=1e-4, abs=2e-4)
    assert [h["train_loss"] for h in history(folders[2] / run)] == pytest.approx([h["train_loss"] for h in history(folders[1] / run)], rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("run", ["acn", "umt"])
def test_two_processes_select_the_same_epoch_and_score_the_same(folders, run):
    one, two = metrics(folders[1] / run), metrics(folders[2] / run)
    assert [h["dev_f1"] for h in history(folders[2] / run)] == [h["dev_f1"] for h in history(folders[1] / run)]
    assert two["stages"]["target"]["best_epoch"] == one["stages"]["target"]["best_epoch"]
    assert two["test"]["conlleval"]["f1"] == one["test"]["conlleval"]["f1"]


@pytest.mark.slow
def test_the_acn_learns_so_the_best_epoch_is_a_real_choice(folders):
    """Model selection is only compared if dev F1 moves: the tiny ACN must leave 0 within its six epochs."""
    scores = [h["dev_f1"] for h in history(folders[1] / "acn")]
    assert max(scores) > 0 and metrics(folders[1] / "acn")["stages"]["target"]["best_epoch"] > 0


@pytest.mark.slow
def test_an_interrupted_two_process_run_resumes_to_the_uninterrupted_result(folders):
    """Checkpoints hold every process's RNG state; resuming mid-epoch skips the global batches already done."""
    cut, whole = folders[2] / "acn-resumed", folders[2] / "acn"
    assert step_losses(cut)[STOP_AT_STEP:] == pytest.approx(step_losses(whole)[STOP_AT_STEP:], rel=1e-4, abs=2e-4)
    assert [h["dev_f1"] for h in history(cut)] == [h["dev_f1"] for h in history(whole)]
    assert metrics(cut)["test"] == metrics(whole)["test"]


@pytest.mark.slow
def test_the_main_process_alone_writes_the_run_folder(folders):
    environment = json.loads((folders[2] / "acn" / "environment.json").read_text(encoding="utf-8"))
    assert environment["processes"] == 2
    assert json.loads((folders[1] / "acn" / "environment.json").read_text(encoding="utf-8"))["processes"] == 1
    log = (folders[2] / "acn" / "run.log").read_text(encoding="utf-8")
    assert log.count("stage target done") == 1 and log.count("test F1") == 1


@pytest.mark.slow
def test_tensorboard_curves_of_two_processes_are_those_of_one_written_once(folders):
    """The step losses summed over processes, one event file per stage (the main process's), one value per step after a resume."""
    pytest.importorskip("tensorboard", reason="the tensorboard package is not installed (pip install 'xlingual[tensorboard]'; make install does)")
    from test_tensorboard import read_scalars
    from xlingual.workspace import RunFolder

    curves = {key: RunFolder(folder).tensorboard("target") for key, folder in
              (("one", folders[1] / "acn"), ("two", folders[2] / "acn"), ("resumed", folders[2] / "acn-resumed"))}
    assert [len(list(curves[key].iterdir())) for key in ("one", "two", "resumed")] == [1, 1, 2]
    one, two, resumed = (read_scalars(curves[key]) for key in ("one", "two", "resumed"))
    assert set(one) == set(two) == set(resumed) and "train/loss" in one
    assert [v for _, v in two["train/loss"]] == pytest.approx(step_losses(folders[1] / "acn"), rel=1e-4, abs=2e-4)
    for tag in one:
        assert [s for s, _ in two[tag]] == [s for s, _ in one[tag]] == [s for s, _ in resumed[tag]], tag
        assert [v for _, v in two[tag]] == pytest.approx([v for _, v in one[tag]], rel=1e-4, abs=2e-4), tag
        assert [v for _, v in resumed[tag]] == pytest.approx([v for _, v in two[tag]], rel=1e-4, abs=2e-4), tag


if __name__ == "__main__":
    train_all(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), interrupt=sys.argv[4:] == ["interrupt"])

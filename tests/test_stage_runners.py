"""The seams where ``scale`` plugs Ray into a stage: the stage hands its runner exactly the work it would do itself.

``extract_features(..., runner=)`` decides what is left to extract (cache
hits and missing files are not the runner's business) and asks the runner to
prepare before it reads the cache; ``run_experiment(..., runner=)`` hands the
runner the planned grid and returns what the runner says.
"""

from __future__ import annotations

from pathlib import Path

from xlingual.testing.synthetic import write_images

NAMES = [f"post{i}_img.jpg" for i in range(3)]


class RecordingRunner:
    """A BackboneRunner that runs nothing: it records the calls, and what was in the cache when it was asked to prepare."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.work = None

    def prepare(self, writer, device: str) -> None:
        self.calls.append(f"prepare {device} cached={sorted(writer.cache.names())}")

    def run(self, work, writer, report) -> None:
        self.calls.append("run")
        self.work = work


def test_extract_features_gives_its_runner_only_the_images_left_and_the_options(tmp_path: Path, one_torch_thread) -> None:
    from xlingual.features.extract import extract_features

    images = write_images(tmp_path / "images", NAMES)
    cache = tmp_path / "cache"
    options = dict(backbone="vgg16", weights="random", batch_size=2, device="cpu", seed=3, shard_size=5, decode_workers=1)
    extract_features(images, NAMES[:1], cache, **options)  # one image already in the cache, extracted here

    runner = RecordingRunner()
    report = extract_features(images, [*NAMES, "missing.jpg", NAMES[1]], cache, runner=runner, **{**options, "device": "cuda:7"})
    assert runner.calls == [f"prepare cuda:7 cached={NAMES[:1]}", "run"]  # the device is the runner's to resolve, not the driver's
    work = runner.work
    assert [name for name, _, _ in work.todo] == NAMES[1:]
    assert (work.images_dir, work.weights, work.batch_size, work.device, work.seed, work.shard_size, work.decode_workers) == (
        images, "random", 2, "cuda:7", 3, 5, 1)
    assert (report.named, report.cached, report.extracted, list(report.failed)) == (4, 1, 0, ["missing.jpg"])

    nothing_left = RecordingRunner()
    extract_features(images, NAMES[:1], cache, runner=nothing_left, **options)
    assert nothing_left.calls == [f"prepare cpu cached={NAMES[:1]}"]


def test_run_experiment_hands_its_runner_the_planned_grid_and_returns_its_outcome(tmp_path: Path, sample_data_dir: Path) -> None:
    from xlingual.train.experiment import GridOutcome, plan_grid, run_experiment

    seen = []
    outcome = GridOutcome(failures={"x": "planted"})

    def runner(runs):
        seen.append(runs)
        return outcome

    # every input there, or made by the runs (the translation): the inputs are checked before the runner gets the grid
    overrides = ["epochs=1", "images=none", "model.word_vectors=null", f"data.data_dir={sample_data_dir}", "data.build_missing=true"]
    assert run_experiment("en-zh", "acn", "tgt_only,tgt", 2, tmp_path, overrides, runner=runner) is outcome
    planned = plan_grid("en-zh", "acn", "tgt_only,tgt", 2, tmp_path, overrides)
    assert [(config.run_name, run_dir) for config, run_dir in seen[0]] == [(config.run_name, run_dir) for config, run_dir in planned]
    assert len(planned) == 4 and not any(tmp_path.iterdir())  # planning writes nothing; training is the runner's

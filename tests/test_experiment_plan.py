"""An experiment is one file: ``xl experiment --plan plan.yaml`` plans the same runs as the options, is checked like a config,
is copied into the output folder, and ``xl report`` lays its rows out by it and lists the planned runs not finished."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.datasets import get_dataset
from xlingual.data.sample import Sample
from xlingual.errors import ConfigError, FolderInUseError
from xlingual.io import atomic_write_json
from xlingual.train.config import save_config
from xlingual.train.experiment import GridOutcome, plan_grid
from xlingual.train.plan import PLAN_NAME, read_plan, run_plan
from xlingual.workspace import RunFolder

TINY_ACN = ["model.word_dim=8", "model.char_dim=4", "model.char_filters=2", "model.char_kernels=[2]", "model.char_out=4",
            "model.hidden=8", "epochs=1", "batch_size=4", "model.word_vectors=null"]


def write_plan(path: Path, values: dict | str) -> Path:
    path.write_text(values if isinstance(values, str) else yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    return path


# -- the plan expands to the runs the options plan ---------------------------------------

@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(models=st.lists(st.sampled_from(["acn", "umt"]), min_size=1, max_size=2, unique=True),
       settings_=st.lists(st.sampled_from(["tgt_only", "src", "tgt", "src_tgt"]), min_size=1, max_size=3, unique=True),
       directions=st.lists(st.sampled_from(["en-zh", "zh-en"]), min_size=1, max_size=2, unique=True),
       seeds=st.integers(1, 3),
       images=st.one_of(st.none(), st.lists(st.sampled_from(["none", "one", "all"]), min_size=1, max_size=3, unique=True)))
def test_a_plan_holds_exactly_the_runs_the_per_option_form_plans_for_each_direction_and_image_input(
        models, settings_, directions, seeds, images, tmp_path):
    values = {"models": models, "settings": settings_, "directions": directions, "seeds": seeds, "set": ["epochs=1"]}
    if images is not None:
        values["images"] = images
    plan = read_plan(write_plan(tmp_path / "plan.yaml", values))
    runs = plan.runs(tmp_path / "out")
    expected = [run for direction in directions for mode in (images or [None])
                for run in plan_grid(direction, ",".join(models), ",".join(settings_), seeds, tmp_path / "out",
                                     ["epochs=1", *([f"images={mode}"] if mode else [])])]
    assert [(c.to_dict(), d) for c, d in runs] == [(c.to_dict(), d) for c, d in expected]
    assert len(runs) == len(models) * len(settings_) * len(directions) * seeds * len(images or [None])
    assert len({d for _, d in runs}) == len(runs)  # never two runs in one folder


def test_pairs_and_all_expand_as_the_options_do(tmp_path):
    from xlingual.train.experiment import parse_pairs

    pairs = ["twitter2017:cmner", "mmnerd+twitter2015:cmner"]
    plan = read_plan(write_plan(tmp_path / "plan.yaml", {"models": "acn", "settings": "all", "pairs": pairs, "seeds": 1}))
    expected = plan_grid(None, "acn", "all", 1, tmp_path / "runs", None, parse_pairs(",".join(pairs)))
    assert [(c.to_dict(), d) for c, d in plan.runs(tmp_path / "runs")] == [(c.to_dict(), d) for c, d in expected]
    assert plan.output_folder() == Path("runs") and plan.output_folder(tmp_path) == tmp_path

    # a source-less pair with a setting that reads source data: the same refusal either way
    plan = read_plan(write_plan(tmp_path / "plan.yaml", {"models": "acn", "settings": "all", "pairs": [":cmner"], "seeds": 1}))
    with pytest.raises(ConfigError) as from_plan:
        plan.runs(tmp_path / "runs")
    with pytest.raises(ConfigError) as from_options:
        plan_grid(None, "acn", "all", 1, tmp_path / "runs", None, parse_pairs(":cmner"))
    assert str(from_plan.value) == str(from_options.value)


# -- checked like a config: one line naming plan.yaml:LINE --------------------------------

BAD_PLANS = [
    # (plan text, the line the error must name, words the error must hold)
    ("models: [acn]\ndirections: [en-zh]\nseed: 3\n", 3, "unknown key(s) seed"),
    ("models: [acn]\ndirections: [en-zh]\nseeds: three\n", 3, "'three' is not a number"),
    ("models: [acn, umx]\ndirections: [en-zh]\n", 1, "'umx' is not one of"),
    ("models: [acn]\nsettings: [tgt_only, tgt_only]\ndirections: [en-zh]\n", 2, "twice"),
    ("models: [acn]\ndirections: [en-zh]\nimages: [some]\n", 3, "'some' is not one of none, one, all"),
    ("models: [acn]\ndirections: [en-zh]\nseeds: 0\n", 3, "must be positive"),
    ("models: [acn]\ndirections: [en-zh]\npairs: [twitter2017:cmner]\n", 3, "directions and pairs both"),
    ("models: [acn]\npairs: [twitter2017-cmner]\n", 2, "is not SOURCE:TARGET"),
    ("models: [acn]\ndirections: [en-zh]\nset:\n  - epochs=1\n  - justtext\n", 5, "expected key=value"),
    ("models: [acn]\ndirections: &d [en-zh]\nsettings: *d\n", 3, "alias *d is not allowed"),
]


@pytest.mark.parametrize("text,line,words", BAD_PLANS)
def test_a_bad_plan_is_one_line_naming_its_file_and_line(text, line, words, tmp_path):
    path = write_plan(tmp_path / "plan.yaml", text)
    with pytest.raises(ConfigError) as err:
        read_plan(path).runs(tmp_path / "out")
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}:{line}: "), message
    assert words in message, message


@pytest.mark.parametrize("item,words", [("model.hiden=4", "model: unknown key(s) hiden"), ("target.epochs=x", "'x' is not a number"),
                                        ("model.hidden=3", "model.hidden: must be even")])
def test_a_set_item_that_breaks_a_runs_config_names_its_own_line(item, words, tmp_path):
    path = write_plan(tmp_path / "plan.yaml", f"models: acn\nsettings: tgt_only\ndirections: en-zh\nset:\n  - epochs=1\n  - {item}\n")
    with pytest.raises(ConfigError) as err:
        read_plan(path).runs(tmp_path / "out")
    assert str(err.value).startswith(f"{path}:6: ") and words in str(err.value), err.value
    result = CliRunner().invoke(app, ["experiment", "--plan", str(path), "--dry-run"])
    assert result.exit_code == 2 and f"{path}:6: " in result.output and "Traceback" not in result.output, result.output


def test_images_in_set_and_in_the_plan_is_refused(tmp_path):
    path = write_plan(tmp_path / "plan.yaml", "models: acn\nsettings: tgt_only\ndirections: en-zh\nimages: [none]\nset: [images=all]\n")
    with pytest.raises(ConfigError, match=rf"^{path}:5: set images=all and images:"):
        read_plan(path).runs()


def test_plan_and_the_per_option_form_are_exclusive(tmp_path):
    path = write_plan(tmp_path / "plan.yaml", {"models": ["acn"], "directions": ["en-zh"]})
    for option in (["--direction", "en-zh"], ["--pairs", "twitter2017:cmner"], ["--models", "acn"], ["--configs", "all"], ["--seeds", "2"]):
        result = CliRunner().invoke(app, ["experiment", "--plan", str(path), *option, "--dry-run"])
        assert result.exit_code == 2, result.output
        assert f"--plan {path} and {option[0]}" in result.output and "Traceback" not in result.output


# -- running a plan ---------------------------------------------------------------------

def tiny_plan(path: Path, data_dir: Path, seeds: int = 2) -> Path:
    return write_plan(path, {"models": ["acn"], "settings": ["tgt_only"], "directions": ["en-zh"], "seeds": seeds, "images": ["none"],
                             "set": [*TINY_ACN, f"data.data_dir={data_dir}", "data.max_samples=8"]})


def test_dry_run_of_a_plan_lists_its_runs_and_writes_nothing(sample_data_dir, tmp_path):
    path = tiny_plan(tmp_path / "plan.yaml", sample_data_dir)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["experiment", "--plan", str(path), "--output", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"{out / 'acn-en-zh-tgt_only-img_none-seed444'}" in result.output and f"{out / 'acn-en-zh-tgt_only-img_none-seed445'}" in result.output
    assert "2 runs:" in result.output and "every input is there" in result.output
    assert not out.exists()


def test_running_a_plan_checks_inputs_first_then_copies_the_plan_and_hands_the_runner_its_runs(sample_data_dir, tmp_path):
    plan = read_plan(tiny_plan(tmp_path / "plan.yaml", sample_data_dir))
    out = tmp_path / "out"
    handed: list = []

    def runner(runs):
        assert (out / PLAN_NAME).is_file()  # the copy is there before the first run trains
        handed.extend(runs)
        return GridOutcome()

    run_plan(plan, out, ["target.lr=0.002"], runner)
    assert [d for _, d in handed] == [out / "acn-en-zh-tgt_only-img_none-seed444", out / "acn-en-zh-tgt_only-img_none-seed445"]
    assert all(c.target.lr == 0.002 for c, _ in handed)
    copy = read_plan(out / PLAN_NAME)
    assert copy.plan.overrides == [*plan.plan.overrides, "target.lr=0.002"]  # the command line's --set is recorded too
    assert [c.to_dict() for c, _ in copy.runs(out)] == [c.to_dict() for c, _ in handed]

    # a missing input: refused before anything is written
    broken = read_plan(write_plan(tmp_path / "broken.yaml", {**yaml.safe_load((tmp_path / "plan.yaml").read_text()),
                                                             "set": [*TINY_ACN, f"data.data_dir={tmp_path / 'nodata'}"]}))
    with pytest.raises(ConfigError, match="nothing was trained"):
        run_plan(broken, tmp_path / "out2", (), runner)
    assert not (tmp_path / "out2").exists()



def test_a_second_experiment_into_a_folder_an_experiment_is_running_in_is_refused(sample_data_dir, tmp_path):
    """Two experiments started into one folder: the second is refused with the lock's one line, the first's plan.yaml kept."""
    from test_lock import held_by_another_process, refusal

    first = read_plan(tiny_plan(tmp_path / "first.yaml", sample_data_dir))
    second = tiny_plan(tmp_path / "second.yaml", sample_data_dir, seeds=1)
    out = tmp_path / "out"
    started: list = []

    def runner(runs):
        started.extend(runs)
        return GridOutcome()

    with held_by_another_process(out) as pid:  # the first experiment, still training
        (out / PLAN_NAME).write_text(first.copy_text(out), encoding="utf-8")
        result = CliRunner().invoke(app, ["experiment", "--plan", str(second), "--output", str(out)])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert refusal(out, pid).search(result.output.strip().splitlines()[-1])
        with pytest.raises(FolderInUseError, match="is in use by process"):  # from Python too
            run_plan(read_plan(second), out, (), runner)
        assert not started and (out / PLAN_NAME).read_text(encoding="utf-8") == first.copy_text(out)


def test_the_same_plan_run_again_into_its_folder_resumes(sample_data_dir, tmp_path):
    plan = read_plan(tiny_plan(tmp_path / "plan.yaml", sample_data_dir))
    out = tmp_path / "out"
    handed: list[list] = []

    def runner(runs):
        handed.append([d for _, d in runs])
        return GridOutcome()

    run_plan(plan, out, (), runner)
    copy = (out / PLAN_NAME).read_text(encoding="utf-8")
    run_plan(plan, out, (), runner)  # an interrupted experiment started again: the lock was released when the first ended
    assert len(handed) == 2 and handed[0] == handed[1] and (out / PLAN_NAME).read_text(encoding="utf-8") == copy


# -- xl report lays out the plan and lists what is missing ----------------------------------

def finish(config, run_dir: Path, test: list[Sample], error_rate: float) -> None:
    """Make ``run_dir`` look like the finished run of ``config``: its config.yaml, test predictions and metrics.json."""
    from xlingual.train.run import predict_and_write

    class Fixed:
        def predict(self, samples, visual=None, batch_size=32):
            rng = random.Random(config.seed)
            return [[("O" if rng.random() < error_rate else label) for label in s.labels] for s in samples]

    save_config(config, RunFolder(run_dir).config)
    scores = predict_and_write(Fixed(), test, None, 32, RunFolder(run_dir), "test", get_dataset("cmner"))
    atomic_write_json(RunFolder(run_dir).metrics, {
        "run": config.run_name, "model_type": config.model_type, "direction": config.direction, "setting": config.setting,
        "images": config.images, "seed": config.seed, "target_dataset": "cmner", "test": scores, "dev": scores})


def test_report_lays_rows_out_by_the_plan_and_lists_every_planned_run_not_finished(sample_data_dir, tmp_path):
    from xlingual.evaluation.report import write_report

    path = write_plan(tmp_path / "plan.yaml", {"models": ["acn"], "settings": ["tgt", "tgt_only"], "directions": ["en-zh"], "seeds": 3,
                                               "images": ["none"], "set": [*TINY_ACN, f"data.data_dir={sample_data_dir}"]})
    out = tmp_path / "runs"
    plan = read_plan(path)
    runs = plan.runs(out)
    (out).mkdir()
    (out / PLAN_NAME).write_text(plan.copy_text(out), encoding="utf-8")
    test = [Sample(f"p{i}", ["a", "b", "c"], ["B-PER", "O", "B-LOC"], [], "zh") for i in range(30)]
    finished = runs[:2] + runs[3:4]  # tgt: seeds 444, 445; tgt_only: seed 444
    for config, run_dir in finished:
        finish(config, run_dir, test, 0.3)
    RunFolder(runs[2][1]).state.mkdir(parents=True)  # an interrupted one
    report = write_report([out], tmp_path / "report", bootstrap=0)

    plan_table = report.tables[0]
    assert plan_table.name == "plan" and plan_table.title.endswith("3 of 6 planned runs finished")
    assert [row[2] for row in plan_table.rows] == ["TGT (text)", "− (text)"]  # the plan's order, not the paper tables'
    assert [row[3] for row in plan_table.rows] == ["2 of 3", "1 of 3"]
    assert plan_table.rows[1][4].endswith("(1 seed)")
    unfinished = [d for _, d in runs if d not in {f for _, f in finished}]
    assert sorted(line.split(": ")[0] for line in report.missing_runs) == sorted(map(str, unfinished))
    assert f"{runs[2][1]}: interrupted" in "\n".join(report.missing_runs)
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    section = text.split("### Missing runs")[1]
    assert all(str(d) in section for d in unfinished) and not any(str(d) in section for _, d in finished)
    assert (tmp_path / "report" / "plan.md").is_file()

    for config, run_dir in runs:
        if run_dir not in [d for _, d in finished]:
            finish(config, run_dir, test, 0.2)
    report = write_report([out], tmp_path / "report2", bootstrap=0)
    assert report.missing_runs == [] and "Every planned run is finished." in (tmp_path / "report2" / "report.md").read_text()
    assert [row[3] for row in report.tables[0].rows] == ["3 of 3", "3 of 3"]


def test_a_plan_runs_end_to_end_on_ray_and_its_report_has_nothing_missing(monkeypatch, sample_data_dir, tmp_path, one_torch_thread):
    import sys

    from fake_ray import FakeRay

    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    path = tiny_plan(tmp_path / "plan.yaml", sample_data_dir, seeds=1)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["experiment", "--plan", str(path), "--output", str(out), "--ray"])
    assert result.exit_code == 0, result.output
    assert fake.inits == 1 and "trained" in result.output and f"xl report {out}" in result.output
    assert RunFolder(out / "acn-en-zh-tgt_only-img_none-seed444").finished and (out / PLAN_NAME).is_file()
    report = CliRunner().invoke(app, ["report", str(out), "--output", str(tmp_path / "report"), "--bootstrap", "0"])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "1 of 1 planned runs finished" in text and "Every planned run is finished." in text and "not finished" not in report.output

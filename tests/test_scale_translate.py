"""``xl translate --ray`` on a local Ray runtime (2 CPUs): byte-identical merge, per-shard resume, a failing shard, no Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ray_support import needs_ray, shared_ray
from typer.testing import CliRunner

from xlingual.cli import app

runner = CliRunner()

SHARD = 4  # the sample's 18/6/6 Twitter posts: 5 + 2 + 2 shards
OUTPUTS = ("train.txt", "train.jsonl", "train.failures.jsonl", "valid.txt", "valid.jsonl", "test.txt", "test.failures.jsonl", "preview.html")
# counted per shard under --ray, over the whole corpus by one process (docs/scale.md)
WORK_FIELDS = ("seconds", "sentences_per_s", "mt")

PLUGIN = '''
import os
from projection_fakes import FAULTS, FakeTranslator

POISON_FLAG = {poison_flag!r}  # while this file exists, a text with "Snow" raises
DIE_FLAG = POISON_FLAG + ".die"  # while this file exists, a text with "Snow" ends the worker process
PID_FILE = {pid_file!r}  # while this file exists, the 6th call kills the pid it holds, then this worker


class Scripted(FakeTranslator):
    def translate(self, texts):
        if os.path.exists(PID_FILE) and len(self.calls) + 1 >= 6:
            os.kill(int(open(PID_FILE).read()), 9)
            os._exit(1)
        if os.path.exists(DIE_FLAG) and any("Snow" in t for t in texts):
            os._exit(1)
        if os.path.exists(POISON_FLAG) and any("Snow" in t for t in texts):
            raise ValueError("poisoned text")
        return super().translate(texts)


def make_zh():
    return Scripted("zh", FAULTS, rate=0.3)
'''


@pytest.fixture()
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path, Path]:
    """``scriptedmt:make_zh``, a faulty fake MT (so outputs hold failures too); returns the spec and its two control files."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    poison, pid = tmp_path / "poison", tmp_path / "driver.pid"
    (folder / "scriptedmt.py").write_text(PLUGIN.format(poison_flag=str(poison), pid_file=str(pid)))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "scriptedmt", raising=False)
    return "scriptedmt:make_zh", poison, pid


@pytest.fixture(scope="module")
def ray_runtime():
    return shared_ray()


def translate(data: Path, out: Path, spec: str, *extra: str):
    args = ["translate", "--src", "en", "--tgt", "zh", "--data-dir", str(data), "--output", str(out), "--translator", spec, "--json", *extra]
    return runner.invoke(app, args)


def without_work(report: dict) -> dict:
    clean = {k: v for k, v in report.items() if k not in WORK_FIELDS}
    clean["files"] = {name: {k: v for k, v in f.items() if k not in WORK_FIELDS} for name, f in report["files"].items()}
    return clean


def assert_same_outputs(one: Path, sharded: Path) -> None:
    for name in OUTPUTS:
        assert (one / name).read_bytes() == (sharded / name).read_bytes(), name
    single, merged = json.loads((one / "report.json").read_text()), json.loads((sharded / "report.json").read_text())
    assert without_work(single) == without_work(merged)
    for key in ("sentence_texts", "context_texts"):  # per-sample work adds up across shards
        assert single["mt"][key] == merged["mt"][key], key


@needs_ray
@pytest.mark.parametrize("spec", ["plugin", "xlingual.translate.glossary:sample_en_zh"])
def test_sharded_run_is_byte_identical_to_one_process(ray_runtime, plugin, sample_data_dir, tmp_path, spec) -> None:
    spec = plugin[0] if spec == "plugin" else spec
    one = translate(sample_data_dir, tmp_path / "one", spec)
    assert one.exit_code == 0, one.output
    sharded = translate(sample_data_dir, tmp_path / "ray", spec, "--ray", "--workers", "2", "--shard-size", str(SHARD))
    assert sharded.exit_code == 0, sharded.output
    assert_same_outputs(tmp_path / "one", tmp_path / "ray")
    assert len(list((tmp_path / "ray" / ".cache" / "shards").glob("*.json"))) == 9
    assert len(list((tmp_path / "ray" / ".cache" / "shards").glob("*.translations.sqlite"))) == 9
    from xlingual.projection.corpus import CACHE_NAME
    from xlingual.translate.cache import TranslationCache

    caches = [TranslationCache(folder / CACHE_NAME) for folder in (tmp_path / "one", tmp_path / "ray")]
    assert len(caches[1]) == len(caches[0]) > 0, "the shards' translations are absorbed into the corpus cache"
    for cache in caches:
        cache.close()
    again = translate(sample_data_dir, tmp_path / "ray", spec)  # the same folder without --ray: everything is cached
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "ray" / "report.json").read_text())["mt"]["mt_calls"] == 0
    assert_same_outputs(tmp_path / "one", tmp_path / "ray")


@needs_ray
def test_a_killed_driver_leaves_finished_shards_and_a_rerun_does_only_the_rest(ray_runtime, plugin, sample_data_dir, tmp_path) -> None:
    """The driver is a separate process on the shared runtime; its worker kills it (kill -9) mid-run, then dies itself."""
    spec, _, pid_file = plugin
    out = tmp_path / "ray"
    script = textwrap.dedent(f'''
        import os, sys
        sys.path[:0] = [{str(tmp_path / "plugin")!r}, {str(Path(__file__).parent)!r}]
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        import ray
        ray.init(address={ray_runtime.get_runtime_context().gcs_address!r}, logging_level="ERROR", log_to_driver=False)
        from xlingual.cli import app
        app(["translate", "--src", "en", "--tgt", "zh", "--data-dir", {str(sample_data_dir)!r}, "--output", {str(out)!r},
             "--translator", {spec!r}, "--ray", "--workers", "1", "--shard-size", "{SHARD}"])
    ''')
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr[-2000:]
    os.unlink(pid_file)
    finished = sorted((out / ".cache" / "shards").glob("*.json"))
    assert 0 < len(finished) < 9 and not (out / "report.json").exists()
    stamps = {p: p.stat().st_mtime_ns for p in finished}

    def rerun():
        result = translate(sample_data_dir, out, spec, "--ray", "--workers", "2", "--shard-size", str(SHARD))
        assert result.exit_code == 0, result.output
        return result.output

    assert f"9 shards: {len(finished)} finished earlier, {9 - len(finished)} to project" in rerun()
    assert all(p.stat().st_mtime_ns == stamps[p] for p in finished)
    assert translate(sample_data_dir, tmp_path / "one", spec).exit_code == 0
    assert_same_outputs(tmp_path / "one", out)
    report = (out / "report.json").read_bytes()
    third = rerun()  # a finished run starts no worker and rewrites the same report
    assert "9 shards: 9 finished earlier, 0 to project" in third and "Ray workers" not in third
    assert (out / "report.json").read_bytes() == report


@needs_ray
def test_a_failing_shard_is_reported_while_the_others_finish(ray_runtime, plugin, sample_data_dir, tmp_path) -> None:
    spec, poison, _ = plugin
    poison.touch()
    out = tmp_path / "ray"
    failed = translate(sample_data_dir, out, spec, "--ray", "--workers", "2", "--shard-size", str(SHARD))
    assert failed.exit_code == 2
    message = failed.output.strip().splitlines()[-1]
    assert "1 of 9 shards failed" in message and "train[0:4]: translator scriptedmt:Scripted raised ValueError: poisoned text" in message, message
    assert "Traceback" not in failed.output
    assert len(list((out / ".cache" / "shards").glob("*.json"))) == 8 and not (out / "train.txt").exists()
    poison.unlink()
    again = translate(sample_data_dir, out, spec, "--ray", "--workers", "2", "--shard-size", str(SHARD))
    assert again.exit_code == 0, again.output
    assert translate(sample_data_dir, tmp_path / "one", spec).exit_code == 0
    assert_same_outputs(tmp_path / "one", out)


@needs_ray
def test_a_worker_that_dies_fails_its_shard_only(ray_runtime, plugin, sample_data_dir, tmp_path) -> None:
    spec, poison, _ = plugin
    Path(str(poison) + ".die").touch()
    out = tmp_path / "ray"
    failed = translate(sample_data_dir, out, spec, "--ray", "--workers", "2", "--shard-size", str(SHARD))
    assert failed.exit_code == 2
    message = next(line for line in failed.output.splitlines() if line.startswith("error:"))  # Ray's raylet adds its own warning
    assert "1 of 9 shards failed" in message and "train[0:4]: the Ray worker died" in message, message
    assert len(list((out / ".cache" / "shards").glob("*.json"))) == 8  # the other worker took the rest


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shard_size=st.integers(min_value=1, max_value=20), entity_context=st.booleans())
def test_any_shard_size_merges_into_the_single_process_files(sample_data_dir, tmp_path, shard_size, entity_context) -> None:
    """The sharding and the merge alone (each shard projected here, no Ray): for every cut, the files one process writes."""
    from xlingual.projection.corpus import ProjectionSettings, read_source_dataset, translate_corpus
    from xlingual.scale.translate import ShardProjectorFactory, merge_shards, plan_shards, recipe_key
    from xlingual.translate.glossary import sample_en_zh

    spec = "xlingual.translate.glossary:sample_en_zh"
    inputs = read_source_dataset(sample_data_dir, "twitter2015")
    settings_ = ProjectionSettings("en", "zh", entity_context=entity_context, model_name=spec, use_cache=False)
    one, sharded = tmp_path / f"one-{shard_size}-{entity_context}", tmp_path / f"sharded-{shard_size}-{entity_context}"
    translate_corpus(inputs, one, sample_en_zh(), settings_)
    loader = dict(src="en", tgt="zh", plugin=spec)
    jobs = plan_shards(inputs, sharded, settings_, recipe_key(loader, settings_), shard_size)
    stage = ShardProjectorFactory(loader, settings_)()
    for job in jobs[::-1]:  # the order shards finish in does not matter
        stage(job)
    merge_shards(inputs, jobs, sharded, settings_)
    assert len(jobs) == sum(-(-len(item.samples) // shard_size) for item in inputs)
    assert_same_outputs(one, sharded)


def test_without_ray_the_option_is_one_line_naming_the_extra(sample_data_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    result = translate(sample_data_dir, tmp_path / "o", "xlingual.translate.glossary:sample_en_zh", "--ray")
    assert result.exit_code == 2
    assert "pip install 'xlingual[ray]'" in result.output and result.output.count("\n") == 1


def test_ray_alone_means_a_local_runtime_and_takes_an_address() -> None:
    from xlingual.cli import fill_optional_values

    assert fill_optional_values(["translate", "--ray"]) == ["translate", "--ray=local"]
    assert fill_optional_values(["--ray", "--workers", "2"]) == ["--ray=local", "--workers", "2"]
    assert fill_optional_values(["--ray", "auto", "--workers", "2"]) == ["--ray", "auto", "--workers", "2"]


@pytest.mark.parametrize("damage", ["truncated", "tokens_not_a_list", "label_not_a_string", "other_samples", "old_format", "neither_sample_nor_failure"])
def test_a_damaged_or_foreign_shard_file_is_discarded_naming_it(sample_data_dir, tmp_path, caplog, damage) -> None:
    """A shard file is read as JSON and checked against the shard's own samples; anything else is projected again, never trusted."""
    from xlingual.projection.corpus import ProjectionSettings, read_source_dataset
    from xlingual.scale.translate import ShardProjectorFactory, plan_shards, read_shard, recipe_key

    spec = "xlingual.translate.glossary:sample_en_zh"
    settings_ = ProjectionSettings("en", "zh", model_name=spec, use_cache=False)
    loader = dict(src="en", tgt="zh", plugin=spec)
    job = plan_shards(read_source_dataset(sample_data_dir, "twitter2015"), tmp_path, settings_, recipe_key(loader, settings_), SHARD)[0]
    ShardProjectorFactory(loader, settings_)()(job)
    part = read_shard(job)
    assert part is not None and [r.source for r in part.results] == job.samples  # a sound file reads back
    stored = json.loads(job.path.read_text(encoding="utf-8"))
    ok = next(r for r in stored["results"] if r["sample"] is not None)
    if damage == "truncated":
        job.path.write_text(job.path.read_text(encoding="utf-8")[:-40], encoding="utf-8")
    else:
        if damage == "tokens_not_a_list":
            ok["sample"]["tokens"] = "".join(ok["sample"]["tokens"])
        elif damage == "label_not_a_string":
            ok["sample"]["labels"][0] = 1
        elif damage == "other_samples":
            stored["results"] = stored["results"][1:]
        elif damage == "old_format":
            stored["format"] = "xlingual-projection-shard/1"
        else:
            ok["sample"] = None
        job.path.write_text(json.dumps(stored), encoding="utf-8")
    with caplog.at_level("WARNING"):
        assert read_shard(job) is None
    assert f"{job.path}: unusable shard file" in caplog.text


def test_the_shard_recipe_changes_with_the_target_tokeniser_and_the_tokenizer_source() -> None:
    """Shards projected with another tokeniser hold other tokens: they must not be reused on resume."""
    from xlingual.projection.corpus import ProjectionSettings
    from xlingual.scale.translate import recipe_key

    plain = ProjectionSettings("en", "ja", model_name="m", use_cache=False, tokenizer="xlingual.text_escape:plain_label")
    base = recipe_key({"model": "m"}, plain)
    other = ProjectionSettings("en", "ja", model_name="m", use_cache=False, tokenizer="xlingual.text_escape:latex_text")
    assert base != recipe_key({"model": "m"}, other)
    assert base != recipe_key({"model": "m", "tokenizer_from": "other"}, plain)
    assert recipe_key({"model": "m", "tokenizer_from": None}, plain) == base

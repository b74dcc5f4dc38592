"""Output sets are atomic: a full disk, a read-only folder or a failed rename leaves the old set or the new one, never a mix.

Faults are planted in the two operations every output write goes through
(``os.fsync`` of a file's bytes and ``os.replace`` into place, in
:mod:`xlingual.io` and :mod:`xlingual.output_set`): the k-th of them raises
the ``OSError`` a full disk (or a read-only file system, or a folder we may
not write) raises there. Whatever k is, the command ends in one line naming a
path with exit 2, and a reader finds the old set whole (or, on a first run,
no set); never a mix.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import textwrap
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from translate_helpers import plugin_module
from xlingual.cli import app
from xlingual.errors import OutputSetError
from xlingual.output_set import MANIFEST_KEY, STAGING_PREFIX, StagedSet
from xlingual.projection.corpus import check_translation
from xlingual.workspace import DataDir, RunFolder

runner = CliRunner()

PLUGIN = textwrap.dedent('''
    from projection_fakes import _PLACEHOLDER, FAULTS, FakeTranslator

    class Wordier(FakeTranslator):
        """Another MT: every translated word one character longer, so its files differ from FakeTranslator's in size."""

        def clean(self, text):
            return [p if _PLACEHOLDER.match(p) or not p[0].isalpha() else p + p[-1] for p in super().clean(text)]

    def old():
        return FakeTranslator("zh", FAULTS, rate=0.3)

    def new():
        return Wordier("zh", FAULTS, rate=0.3, seed="wordier")  # its own cache key: the cache must not answer for it
''')

ERRORS = {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system", errno.EACCES: "Permission denied"}


class PlantedFaults:
    """Counts the fsyncs and renames of output writes and raises ``code`` at number ``fail_at`` (None: never).

    ``renames_onto``: count only renames onto a file whose name passes this
    test (and no fsync). A rename fails the way the kernel reports it (both
    names on the error); a fsync names no file at all, as a full disk does.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None, code: int = errno.ENOSPC,
                 renames_onto=None) -> None:
        self.fail_at, self.code, self.renames_onto, self.count = fail_at, code, renames_onto, 0
        proxy = types.SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith("__")})
        proxy.replace, proxy.fsync = self.replace, self.fsync
        for module in ("xlingual.io", "xlingual.output_set"):
            monkeypatch.setattr(f"{module}.os", proxy)

    def _tick(self, *names: str | None) -> None:
        self.count += 1
        if self.count == self.fail_at:
            raise OSError(self.code, ERRORS[self.code], *names)

    def replace(self, src, dst) -> None:
        if self.renames_onto is None or self.renames_onto(Path(dst).name):
            self._tick(str(src), None, str(dst))
        os.replace(src, dst)

    def fsync(self, fd: int) -> None:
        if self.renames_onto is None:
            self._tick()
        os.fsync(fd)


@pytest.fixture()
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return plugin_module(tmp_path, monkeypatch, "setmt", PLUGIN)


def translate(data_dir: Path, out: Path, translator: str):
    return runner.invoke(app, ["translate", "--src", "en", "--tgt", "zh", "--data-dir", str(data_dir), "--output", str(out),
                               "--translator", translator, "--json"])


def the_set(folder: Path) -> dict[str, bytes]:
    """The output set a folder holds: its files, without the cache, the lock and a set being written.

    ``report.json`` stands for its list of the set's files (its timings and
    cache counts differ from run to run).
    """
    if not folder.is_dir():
        return {}
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
    if "report.json" in files:
        files["report.json"] = json.dumps(json.loads(files["report.json"])[MANIFEST_KEY]).encode()
    return files


def one_error_line(output: str, folder: Path, reason: str) -> str:
    """The path the command's one ``error:`` line (its last line, after the log) names; it lies in ``folder``, not in a temporary one."""
    lines = output.strip().splitlines()
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:] and "Traceback" not in output, output
    path = lines[-1][len("error: "):].split(": ")[0]
    assert Path(path).parent == folder or Path(path).parent.parent == folder, output
    assert STAGING_PREFIX not in path and not path.endswith(".tmp") and reason in lines[-1], output
    return path


class Sets(dict):
    """``{"old": files, "new": files}``, shown by name only in a failure report; ``folders`` holds the folders they were written to."""

    folders: dict[str, Path]

    def __repr__(self) -> str:
        return f"Sets({', '.join(self)})"


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory, sample_data_dir) -> dict[str, dict[str, bytes]]:
    """The set each fake MT writes for the sample's Twitter2015 splits."""
    root = tmp_path_factory.mktemp("sets")
    folder = root / "plugin"
    folder.mkdir()
    (folder / "setmt.py").write_text(PLUGIN)
    sys.path.insert(0, str(folder))
    try:
        sets = Sets()
        sets.folders = {}
        for name in ("old", "new"):
            assert translate(sample_data_dir, root / name, f"setmt:{name}").exit_code == 0
            sets[name], sets.folders[name] = the_set(root / name), root / name
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("setmt", None)
    assert len(sets["old"]["valid.txt"]) != len(sets["new"]["valid.txt"])  # the two MTs write different words
    return sets


# -- xl translate --------------------------------------------------------------------

def test_the_report_lists_every_other_file_of_the_set(two_sets) -> None:
    files = two_sets["new"]
    listed = json.loads(files["report.json"])
    assert set(listed) == set(files) - {"report.json"}
    assert {"train.txt", "valid.jsonl", "test.failures.jsonl", "preview.html"} <= set(listed)
    assert all(listed[name]["bytes"] == len(files[name]) for name in listed)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fail_at=st.integers(min_value=1, max_value=60), code=st.sampled_from(sorted(ERRORS)), first_run=st.booleans())
def test_a_fault_at_any_write_leaves_the_old_set_or_the_new_one(plugin, sample_data_dir, tmp_path_factory, two_sets,
                                                                 fail_at, code, first_run) -> None:
    out = tmp_path_factory.mktemp("out") / "translated"
    if not first_run:
        shutil.copytree(two_sets.folders["old"], out)
    with pytest.MonkeyPatch.context() as mp:
        faults = PlantedFaults(mp, fail_at, code)
        result = translate(sample_data_dir, out, f"{plugin}:new")
    if faults.count < fail_at:  # every write went through
        assert result.exit_code == 0, result.output
        assert the_set(out) == two_sets["new"]
    else:
        assert result.exit_code == 2, result.output
        one_error_line(result.output, out, ERRORS[code])
        assert the_set(out) == ({} if first_run else two_sets["old"])
    assert not list(out.glob(f"{STAGING_PREFIX}*")) and not list(out.glob(".*.tmp"))
    check_translation(out)  # a reader takes what is there


@pytest.mark.parametrize("first_run", [False, True], ids=["replacing", "first"])
def test_a_killed_commit_leaves_a_folder_readers_take_as_one_whole_set_or_refuse(plugin, sample_data_dir, tmp_path, two_sets,
                                                                                  monkeypatch, first_run) -> None:
    """kill -9 between two renames: no roll-back, no clean-up. A reader then takes one whole set, old or new, or refuses."""
    renames = 2 * len(two_sets["new"])  # each file: the old one set aside, the new one moved in
    data_files = sorted(name for name in two_sets["old"] if name != "report.json")
    for killed_at in range(1, renames + 1):
        out = tmp_path / f"killed-{killed_at}"
        if not first_run:
            shutil.copytree(two_sets.folders["old"], out)
        with monkeypatch.context() as mp:
            mp.setattr(StagedSet, "_roll_back", lambda self, moved, replaced: None)
            mp.setattr(StagedSet, "__exit__", lambda self, *exc: None)
            faults = PlantedFaults(mp)
            committing = StagedSet.commit

            def commit(self, manifest):
                faults.count, faults.fail_at = 0, killed_at
                return committing(self, manifest)

            mp.setattr(StagedSet, "commit", commit)
            assert translate(sample_data_dir, out, f"{plugin}:new").exit_code == 2
        present = {name: (out / name).read_bytes() for name in data_files if (out / name).is_file()}
        try:
            check_translation(out)  # what training does before it reads a split
        except OutputSetError as err:
            assert "\n" not in str(err) and str(err).startswith(str(out))
        else:
            old, new = ({n: two_sets[w][n] for n in data_files} for w in ("old", "new"))
            assert present in ([{}, new] if first_run else [old, new]), killed_at  # a first run's "old set" is none
        for name in present:  # a reader of one file takes it only from the set the report in place describes
            try:
                check_translation(out, [name])
            except OutputSetError as err:
                assert str(err).startswith(str(out / name)) and "\n" not in str(err)
            else:
                which = ["new"] if first_run else ["old", "new"]
                assert any(present[name] == two_sets[w][name] for w in which), (killed_at, name)
        assert translate(sample_data_dir, out, f"{plugin}:new").exit_code == 0  # the next run cleans up and writes the set
        assert the_set(out) == two_sets["new"] and not list(out.glob(f"{STAGING_PREFIX}*"))


def test_training_refuses_a_translation_that_mixes_two_sets(plugin, tmp_path, sample_data_dir, two_sets) -> None:
    from xlingual.stage_inputs import find_translation, read_translated_split

    data_dir = tmp_path / "data"
    shutil.copytree(sample_data_dir, data_dir)
    folder = DataDir(data_dir).translation("twitter2015", "en", "zh", "setmt-new")
    assert translate(data_dir, folder, f"{plugin}:new").exit_code == 0
    assert find_translation(data_dir, "twitter2015", "zh") == folder
    assert len(read_translated_split(folder, data_dir, "twitter2015", "zh", "dev")) > 0

    (folder / "valid.txt").write_bytes(two_sets["old"]["valid.txt"])  # the finding: valid.txt of one run beside report.json of another
    with pytest.raises(OutputSetError, match=r"valid\.txt: \d+ bytes, report.json says \d+ .*xl translate --dataset twitter2015") as err:
        find_translation(data_dir, "twitter2015", "zh")
    assert "\n" not in str(err.value)
    with pytest.raises(OutputSetError, match=r"valid\.txt: \d+ bytes, report.json says"):
        read_translated_split(folder, data_dir, "twitter2015", "zh", "dev")
    assert len(read_translated_split(folder, data_dir, "twitter2015", "zh", "train")) > 0  # a file of the set is still read

    same_size = bytearray(two_sets["new"]["valid.txt"])  # one label changed, same size: only the digest tells
    at = same_size.index(b"B-")
    same_size[at:at + 2] = b"I-"
    (folder / "valid.txt").write_bytes(bytes(same_size))
    find_translation(data_dir, "twitter2015", "zh")  # sizes match
    with pytest.raises(OutputSetError, match=r"valid\.txt: its SHA-256 differs from the one report.json records"):
        read_translated_split(folder, data_dir, "twitter2015", "zh", "dev")

    (folder / "valid.txt").unlink()
    with pytest.raises(OutputSetError, match=r"valid\.txt: missing, though report.json lists it"):
        find_translation(data_dir, "twitter2015", "zh")


def test_a_run_finds_and_size_checks_its_translation_once_and_checks_each_file_it_reads(plugin, tmp_path, sample_data_dir,
                                                                                        monkeypatch) -> None:
    """SRC&TGT pre-trains on the translation's train and dev files: one look for the folder and one size check of its
    set for the run (there were one per split), one digest check per file read; a cut file is still refused."""
    import xlingual.projection.corpus as corpus
    import xlingual.stage_inputs as stage_inputs
    import xlingual.train.inputs as train_inputs
    from xlingual.train.config import load_config
    from xlingual.train.inputs import check_inputs, resolve_inputs

    data_dir = tmp_path / "data"
    shutil.copytree(sample_data_dir, data_dir)
    folder = DataDir(data_dir).translation("twitter2015", "en", "zh", "setmt-new")
    assert translate(data_dir, folder, f"{plugin}:new").exit_code == 0
    config = load_config("src_tgt", "acn", "en-zh", [*TINY, f"data.data_dir={data_dir}", "data.translation_model=setmt-new"])
    checks, located = [], []
    check_set, locate = corpus.check_set, stage_inputs.locate_translation

    def counted_check(root, manifest, names=None, digests=True, rebuild=""):
        checks.append((Path(root), None if names is None else tuple(names), digests))
        return check_set(root, manifest, names, digests, rebuild)

    monkeypatch.setattr(corpus, "check_set", counted_check)
    monkeypatch.setattr(stage_inputs, "locate_translation", lambda *a, **k: located.append(a[1]) or locate(*a, **k))
    monkeypatch.setattr(train_inputs, "locate_translation", lambda *a, **k: located.append(("check", a[1])) or locate(*a, **k))
    assert check_inputs(config) == [] and not checks  # the check before a run looks, without reading
    inputs = resolve_inputs(config, tmp_path / "run")
    assert located == [("check", "twitter2015"), "twitter2015"], "the check and the run each look for the translation once"
    assert [c for c in checks if c[1] is None] == [(folder, None, False)], "the whole set is size-checked once"
    assert sorted(c for c in checks if c[1] is not None) == [(folder, ("train.txt",), True), (folder, ("valid.txt",), True)]
    assert "setmt-new" in inputs.stages[0].description and inputs.stages[0].train and inputs.stages[0].dev

    cut = (folder / "valid.txt").read_bytes()
    (folder / "valid.txt").write_bytes(cut[: len(cut) // 2])
    with pytest.raises(OutputSetError, match=r"valid\.txt: \d+ bytes, report.json says \d+"):
        resolve_inputs(config, tmp_path / "run2")


@pytest.mark.parametrize("listed, message", [
    ({"../outside.txt": {"bytes": 1, "sha256": "0"}}, "outside its folder"),
    ({"/etc/hostname": {"bytes": 1, "sha256": "0"}}, "outside its folder"),
    ({"train.txt": 5}, "is not a list of files with their size and digest"),
])
def test_a_manifest_that_is_not_one_is_refused_in_one_line(tmp_path, listed, message) -> None:
    (tmp_path / "report.json").write_text(json.dumps({MANIFEST_KEY: listed}))
    with pytest.raises(OutputSetError, match=message) as err:
        check_translation(tmp_path)
    assert str(err.value).startswith(str(tmp_path / "report.json")) and "\n" not in str(err.value)


def test_a_translation_from_before_manifests_is_read_as_before(plugin, tmp_path, sample_data_dir) -> None:
    from xlingual.stage_inputs import read_translated_split

    assert translate(sample_data_dir, tmp_path / "t", f"{plugin}:new").exit_code == 0
    report = json.loads((tmp_path / "t" / "report.json").read_text())
    del report[MANIFEST_KEY]
    (tmp_path / "t" / "report.json").write_text(json.dumps(report))
    (tmp_path / "t" / "valid.txt").write_bytes((tmp_path / "t" / "valid.txt").read_bytes()[:40])  # nothing to check it against
    check_translation(tmp_path / "t")
    (tmp_path / "t" / "report.json").unlink()
    assert len(read_translated_split(tmp_path / "t", sample_data_dir, "twitter2015", "zh", "train")) > 0


def test_a_sqlite_cache_on_a_full_disk_says_so_and_keeps_its_entries(tmp_path) -> None:
    import sqlite3

    from xlingual.errors import XlingualError
    from xlingual.translate.cache import TranslationCache

    cache = TranslationCache(tmp_path / "c.sqlite")
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    with pytest.raises(XlingualError, match=r"c\.sqlite: No space left on device \(database or disk is full\); free some space") as err:
        with cache._damage_reported():
            raise full
    assert "delete it" not in str(err.value)
    cache.close()


# -- xl train: metrics.json is the manifest of a run ---------------------------------------

TINY = ["images=none", "model.word_vectors=null", "model.word_dim=8", "model.char_dim=4", "model.char_filters=2", "model.char_kernels=[2]",
        "model.char_out=4", "model.hidden=8", "epochs=1", "batch_size=4"]


def train_args(data_dir: Path, out: Path, *extra: str) -> list[str]:
    args = ["train", "--config", "tgt_only", "--model", "acn", "--direction", "en-zh", "--output", str(out), "--json"]
    for item in [*TINY, f"data.data_dir={data_dir}", *extra]:
        args += ["--set", item]
    return args


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, sample_data_dir) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("run") / "run"
    args = train_args(sample_data_dir, out)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, args


def copy_run(finished_run, tmp_path: Path) -> tuple[Path, list[str]]:
    source, args = finished_run
    shutil.copytree(source, tmp_path / "run")
    return tmp_path / "run", [str(tmp_path / "run") if a == str(source) else a for a in args]


def test_metrics_list_the_predictions_they_score(finished_run) -> None:
    run, _ = finished_run
    metrics = json.loads((run / "metrics.json").read_text())
    written = {f"predictions/{p.name}" for p in (run / "predictions").iterdir()}  # dev, test and the other language's test
    assert set(metrics[MANIFEST_KEY]) == written and {"predictions/dev.txt", "predictions/test.jsonl"} <= written
    assert metrics[MANIFEST_KEY]["predictions/test.jsonl"]["bytes"] == (run / "predictions" / "test.jsonl").stat().st_size


@pytest.mark.parametrize("legacy", [False, True], ids=["manifest", "test_samples"])
def test_predictions_cut_at_a_line_boundary_are_refused_everywhere(finished_run, tmp_path, legacy) -> None:
    """The finding: a cut test.jsonl is valid JSONL and used to be rescored on fewer posts without a word."""
    run, args = copy_run(finished_run, tmp_path)
    if legacy:  # a run from before metrics listed their files: test_samples still tells
        metrics = json.loads((run / "metrics.json").read_text())
        del metrics[MANIFEST_KEY]
        (run / "metrics.json").write_text(json.dumps(metrics))
    predictions = run / "predictions" / "test.jsonl"
    lines = predictions.read_text().splitlines(keepends=True)
    predictions.write_text("".join(lines[:-1]))
    evaluated = runner.invoke(app, ["evaluate", "--run", str(run)])
    assert evaluated.exit_code == 2
    one_error_line(evaluated.output, run, "the file was changed or cut")
    assert str(predictions) in evaluated.output
    if not legacy:
        reported = runner.invoke(app, ["report", str(run), "--output", str(tmp_path / "report")])
        assert reported.exit_code == 2 and str(predictions) in reported.output and "Traceback" not in reported.output
        resumed = runner.invoke(app, [*args, "--resume"])
        assert resumed.exit_code == 2 and str(predictions) in resumed.output and "Traceback" not in resumed.output
    predictions.write_text("".join(lines))
    assert runner.invoke(app, ["evaluate", "--run", str(run)]).exit_code == 0


def test_a_full_disk_at_metrics_json_leaves_an_unfinished_run_that_resumes(sample_data_dir, tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    args = train_args(sample_data_dir, out)
    with monkeypatch.context() as mp:
        PlantedFaults(mp, fail_at=1, renames_onto=lambda name: name == "metrics.json")
        result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert one_error_line(result.output, out, "No space left on device") == str(RunFolder(out).metrics)
    assert not RunFolder(out).finished and not list(out.glob(".metrics.json*"))
    assert (out / "predictions" / "test.jsonl").is_file()
    evaluated = runner.invoke(app, ["report", str(out), "--output", str(tmp_path / "r")])
    assert evaluated.exit_code == 2 and "no finished runs" in evaluated.output
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert runner.invoke(app, ["evaluate", "--run", str(out)]).exit_code == 0


def test_a_checkpoint_that_cannot_be_written_is_one_line_and_keeps_nothing_half_written(sample_data_dir, tmp_path, monkeypatch) -> None:
    import accelerate

    def full(self, output_dir=None, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0\nfile write failed")

    monkeypatch.setattr(accelerate.Accelerator, "save_state", full)
    out = tmp_path / "run"
    result = runner.invoke(app, train_args(sample_data_dir, out, "epochs=2"))  # a checkpoint at the end of epoch 1
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"error: {out / 'state'}") and "could not save the training state (file write failed)" in line, result.output
    assert "Traceback" not in result.output and not RunFolder(out).finished


# -- xl features extract ----------------------------------------------------------------

def test_features_on_a_full_disk_end_in_one_line_and_keep_only_whole_shards(tmp_path, monkeypatch) -> None:
    from xlingual.data.formats import write_samples
    from xlingual.data.sample import Sample
    from xlingual.testing.synthetic import write_images

    names = ["L4x7aaJ4n_00gv0wr.jpg", "L5SRzy4Ez_u0dfta3.jpg"]
    images = write_images(tmp_path / "images", names)
    text = tmp_path / "dev.txt"
    write_samples(text, [Sample(n.split("_")[0], list("北京"), ["B-LOC", "I-LOC"], lang="zh") for n in names], "cmner")
    cache = tmp_path / "cache"
    args = ["features", "extract", "--images", str(images), "-d", str(text), "--backbone", "vgg16", "--weights", "random",
            "--out", str(cache), "--json"]
    with monkeypatch.context() as mp:
        PlantedFaults(mp, fail_at=1, renames_onto=lambda name: name.startswith("shard-"))
        result = runner.invoke(app, args)
    assert result.exit_code == 2
    path = one_error_line(result.output, cache, "No space left on device")
    assert Path(path).name.startswith("shard-") and not Path(path).exists()
    assert not list(cache.glob(".*.tmp"))
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["extracted"] == 2



def test_a_run_log_on_a_full_disk_warns_once_and_the_run_goes_on(tmp_path, capsys) -> None:
    import logging

    from xlingual.train.run import _RunLog

    class FullDisk:
        def write(self, text: str) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self) -> None:
            pass

    with _RunLog(tmp_path / "run.log") as run_log:
        run_log.handler.stream.close()
        run_log.handler.stream = FullDisk()
        for step in range(3):
            logging.getLogger("xlingual.train").info("step %d", step)
        run_log.handler.stream = open(tmp_path / "run.log", "a", encoding="utf-8")
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "cannot write the run log" in line]
    assert len(warnings) == 1 and "No space left on device" in warnings[0] and str(tmp_path / "run.log") in warnings[0]
    assert "Traceback" not in err and "Logging error" not in err


def test_rescoring_a_run_reads_its_metrics_once_for_every_split(finished_run, monkeypatch) -> None:
    from xlingual.evaluation import evaluate as evaluate_module

    run, _ = finished_run
    reads: list[Path] = []
    real_read = evaluate_module.read_manifest_json
    monkeypatch.setattr(evaluate_module, "read_manifest_json", lambda path: reads.append(path) or real_read(path))
    scores = evaluate_module.evaluate_run(run)
    assert set(scores) == {"dev", "test"} and reads == [run / "metrics.json"]

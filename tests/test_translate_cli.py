"""``xl translate`` end to end with a plug-in fake translator: layout contract, report, resume, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from translate_helpers import plugin_module, twitter2017_from_sample
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.workspace import DataDir
from xlingual.data.formats import read_samples
from xlingual.data.labels import spans

runner = CliRunner()

PLUGIN = textwrap.dedent('''
    import os
    from projection_fakes import FAULTS, FakeTranslator

    class Interruptible(FakeTranslator):
        """Raises KeyboardInterrupt on the n-th translate() call when XL_FAKE_INTERRUPT_AT=n."""

        def translate(self, texts):
            at = int(os.environ.get("XL_FAKE_INTERRUPT_AT", "0"))
            if at and len(self.calls) + 1 >= at:
                raise KeyboardInterrupt
            return super().translate(texts)

    def make_zh():
        return Interruptible("zh", FAULTS, rate=0.3)

    def make_en():
        return Interruptible("en", FAULTS, rate=0.3)

    english = FakeTranslator("en")

    class Broken(FakeTranslator):
        """Breaks the translator contract as XL_FAKE_BREAK says, on every call."""

        def __init__(self):
            super().__init__("zh")

        def translate(self, texts):
            out = super().translate(texts)
            how = os.environ["XL_FAKE_BREAK"]
            if how == "raise":
                raise ConnectionError("MT server\\nunreachable")
            return {"none": None, "short": out[:-1], "item": [None] + out[1:]}[how]

    def make_de():
        return Interruptible("de", FAULTS, rate=0.3)

    def chars(text):
        return [c for c in text if not c.isspace()]
''')


@pytest.fixture()
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return plugin_module(tmp_path, monkeypatch, "fakemt", PLUGIN)


@pytest.fixture()
def data_dir(tmp_path: Path, sample_data_dir: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(sample_data_dir, target)
    return target


def invoke(*args: str):
    return runner.invoke(app, ["translate", *args])


@pytest.mark.parametrize("src, tgt, dataset, files, fmt", [
    ("en", "zh", "twitter2015", ["train", "valid", "test"], "cmner"),
    ("zh", "en", "cmner", ["train", "dev", "test"], "twitter"),
])
def test_dataset_mode_writes_every_split_where_training_looks(plugin, data_dir, src, tgt, dataset, files, fmt) -> None:
    result = invoke("--src", src, "--tgt", tgt, "--data-dir", str(data_dir), "--translator", f"{plugin}:make_{tgt}", "--json")
    assert result.exit_code == 0, result.output
    found = DataDir(data_dir).find_translations(dataset, src, tgt)
    assert len(found) == 1 and found[0].name == f"{dataset}.{src}-{tgt}.fakemt-make_{tgt}"
    out = found[0]
    report = json.loads((out / "report.json").read_text())
    assert set(report["files"]) == set(files)
    for name in files:
        projected = read_samples(out / f"{name}.txt", fmt)
        with_meta = read_samples(out / f"{name}.jsonl", "jsonl")
        assert [s.id for s in projected] == [s.id for s in with_meta]
        assert all(s.lang == tgt and s.meta["source_id"] == s.id for s in with_meta)
        failures = (out / f"{name}.failures.jsonl").read_text().splitlines()
        assert len(projected) + len(failures) == report["files"][name]["samples_in"]
        if tgt == "zh":
            assert all(len(tok) == 1 for s in projected for tok in s.tokens)
        if src == "en":
            assert all(s.images == [f"{s.id}.jpg"] for s in with_meta)
    for key in ("samples_in", "samples_out", "projection_rate", "entities", "entities_total", "success_by_strategy",
                "failures_by_reason", "mt", "sentences_per_s"):
        assert key in report
    assert set(report["entities"]) >= {"PER", "LOC", "ORG", "MISC"}
    assert report["mt"]["mt_calls"] > 0 and report["mt"]["sentence_texts"] >= report["samples_in"]


def test_interrupted_run_resumes_to_byte_identical_output(plugin, tmp_path, sample_data_dir, monkeypatch) -> None:
    source = sample_data_dir / "twitter2015" / "train.txt"
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    common = ["--src", "en", "--tgt", "zh", "--input", str(source), "--translator", f"{plugin}:make_zh"]
    assert invoke(*common, "--output", str(clean)).exit_code == 0
    monkeypatch.setenv("XL_FAKE_INTERRUPT_AT", "3")
    interrupted = invoke(*common, "--output", str(resumed))
    assert interrupted.exit_code == 130 and not (resumed / "train.txt").exists()
    monkeypatch.delenv("XL_FAKE_INTERRUPT_AT")
    second = invoke(*common, "--output", str(resumed), "--json")
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    assert report["mt"]["cache_hits"] > 0
    for name in ("train.txt", "train.jsonl", "train.failures.jsonl"):
        assert (clean / name).read_bytes() == (resumed / name).read_bytes(), name
    third = json.loads(invoke(*common, "--output", str(resumed), "--json").stdout)
    assert third["mt"]["mt_calls"] == 0


def test_killed_process_resumes_to_byte_identical_output(plugin, tmp_path, sample_data_dir) -> None:
    """kill -9 stands in for a crash: a child process dies mid-run without any cleanup."""
    source = sample_data_dir / "cmner" / "text" / "train.txt"
    folder = Path(sys.modules.get("fakemt").__file__).parent if "fakemt" in sys.modules else tmp_path / "plugin"
    script = textwrap.dedent(f'''
        import os, sys
        sys.path[:0] = [{str(folder)!r}, {str(Path(__file__).parent)!r}]
        import fakemt
        from xlingual.projection import ProjectionSettings, read_input_files, translate_corpus
        class Killer(fakemt.Interruptible):
            def translate(self, texts):
                if len(self.calls) == 2:
                    os.kill(os.getpid(), 9)
                return super().translate(texts)
        translate_corpus(read_input_files([{str(source)!r}]), sys.argv[1], Killer("en"), ProjectionSettings("zh", "en", chunk_size=2))
    ''')
    killed = subprocess.run([sys.executable, "-c", script, str(tmp_path / "resumed")], capture_output=True)
    assert killed.returncode == -9
    common = ["--src", "zh", "--tgt", "en", "--input", str(source), "--translator", f"{plugin}:english"]
    resumed = json.loads(invoke(*common, "--output", str(tmp_path / "resumed"), "--json").stdout)
    assert resumed["mt"]["cache_hits"] > 0
    assert invoke(*common, "--output", str(tmp_path / "clean")).exit_code == 0
    for name in ("train.txt", "train.jsonl", "train.failures.jsonl"):
        assert (tmp_path / "clean" / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes(), name


def test_missing_model_fails_in_one_line_naming_the_model(tmp_path, sample_data_dir) -> None:
    source = sample_data_dir / "twitter2015" / "test.txt"
    result = invoke("--src", "en", "--tgt", "zh", "--input", str(source), "--output", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "Helsinki-NLP/opus-mt-en-zh" in result.output and "--model PATH" in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--src", "en", "--tgt", "en"], "both 'en'"),
    (["--src", "fr", "--tgt", "en"], "--src fr"),
    (["--src", "en", "--tgt", "zh", "--input", "x.txt"], "--input needs --output"),
    (["--src", "en", "--tgt", "zh", "--model", "./no/such/folder", "--output", "o", "--input", "{train}"], "model folder not found"),
    (["--src", "en", "--tgt", "zh", "--translator", "nomodule_here:x", "--output", "o", "--input", "{train}"], "cannot import module"),
    (["--src", "en", "--tgt", "zh", "--translator", "fakemt", "--output", "o", "--input", "{train}"], "MODULE:NAME"),
    (["--src", "zh", "--tgt", "en", "--translator", "fakemt:english", "--output", "o", "--input", "{train}"], "is in 'en' but --src is 'zh'"),
    (["--src", "en", "--tgt", "zh", "--data-dir", "{empty}"], "not found"),
])
def test_user_errors_are_one_line_exit_2(plugin, tmp_path, sample_data_dir, monkeypatch, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    args = [a.format(train=sample_data_dir / "twitter2015" / "train.txt", empty=tmp_path / "empty") for a in args]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("how, message", [
    ("none", "translator fakemt:Broken returned None for 6 texts; expected a list of 6 strings"),
    ("short", "translator fakemt:Broken returned 5 results for 6 texts"),
    ("item", "translator fakemt:Broken returned None as result 1 of 6; expected a string"),
    ("raise", "translator fakemt:Broken raised ConnectionError: MT server unreachable"),
])
def test_a_plugin_that_breaks_its_contract_is_one_line_and_nothing_is_cached(plugin, tmp_path, sample_data_dir, monkeypatch, how, message) -> None:
    monkeypatch.setenv("XL_FAKE_BREAK", how)
    source = sample_data_dir / "twitter2015" / "test.txt"  # 6 posts
    result = invoke("--src", "en", "--tgt", "zh", "--input", str(source), "--output", str(tmp_path / "o"), "--translator", f"{plugin}:Broken")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: {message}", result.output
    from xlingual.projection.corpus import CACHE_NAME
    from xlingual.translate.cache import TranslationCache

    cache = TranslationCache(tmp_path / "o" / CACHE_NAME)
    assert len(cache) == 0
    cache.close()
    assert not (tmp_path / "o" / "test.txt").exists()


def test_any_dataset_translates_into_german_with_a_plugin(plugin, data_dir) -> None:
    """Done-when: ``xl translate --dataset twitter2017 --src en --tgt de --translator MODULE:NAME``."""
    twitter2017_from_sample(data_dir)
    result = invoke("--dataset", "twitter2017", "--src", "en", "--tgt", "de", "--data-dir", str(data_dir), "--translator", f"{plugin}:make_de", "--json")
    assert result.exit_code == 0, result.output
    out = data_dir / "translated" / f"twitter2017.en-de.{plugin}-make_de"
    assert DataDir(data_dir).find_translations("twitter2017", "en", "de") == [out]
    report = json.loads((out / "report.json").read_text())
    assert (report["src"], report["tgt"], report["output_format"]) == ("en", "de", "twitter")
    assert set(report["files"]) == {"train", "valid", "test"} and report["samples_out"] > 0
    preview = (out / "preview.html").read_text()
    assert 'lang="de"' in preview
    for name in ("train", "valid", "test"):
        projected = read_samples(out / f"{name}.txt", "twitter")
        with_meta = read_samples(out / f"{name}.jsonl", "jsonl")
        failures = (out / f"{name}.failures.jsonl").read_text().splitlines()
        assert [s.id for s in projected] == [s.id for s in with_meta]
        assert len(projected) + len(failures) == report["files"][name]["samples_in"] == 6
        for sample in with_meta:
            assert sample.lang == "de" and sample.meta["source_lang"] == "en"
            entities = [" ".join(sample.tokens[s.start:s.end]) for s in spans(sample.labels)]
            assert sorted(e.replace(" ", "") for e in entities) == sorted(e["target"].replace(" ", "") for e in sample.meta["entities"])


def test_a_target_without_a_tokeniser_needs_one_plugged_in(plugin, data_dir) -> None:
    refused = invoke("--dataset", "twitter2015", "--tgt", "ja", "--data-dir", str(data_dir), "--translator", f"{plugin}:english")
    assert refused.exit_code == 2 and refused.output.startswith("error: --tgt ja:") and refused.output.count("\n") == 1, refused.output
    assert not (data_dir / "translated").exists()
    result = invoke("--dataset", "twitter2015", "--tgt", "ja", "--data-dir", str(data_dir), "--translator", f"{plugin}:english",
                    "--tokenizer", f"{plugin}:chars", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tokenizer"] == f"{plugin}:chars"
    out = data_dir / "translated" / f"twitter2015.en-ja.{plugin}-english"
    samples = read_samples(out / "train.jsonl", "jsonl")
    assert samples and all(s.lang == "ja" and all(len(t) == 1 for t in s.tokens) for s in samples)


@pytest.mark.parametrize("args, message", [
    (["--dataset", "twitter2017", "--src", "zh", "--tgt", "de"], "--src zh: dataset twitter2017 is in 'en'"),
    (["--src", "de", "--tgt", "en"], "--src de: no default dataset in 'de'"),
    (["--tgt", "de"], "--dataset NAME or --src LANG"),
    (["--dataset", "nosuch", "--tgt", "de"], "unknown dataset 'nosuch'"),
    (["--dataset", "cmner", "--tgt", "eng"], "--tgt eng: not an ISO 639-1"),
    (["--dataset", "cmner", "--tgt", "en", "--input", "x.txt", "--output", "o"], "--input and --dataset"),
    (["--tgt", "en", "--input", "x.txt", "--output", "o"], "--input needs --src"),
    (["--dataset", "twitter2015", "--tgt", "de", "--translator", "fakemt:english", "--tokenizer-from", "x"], "--tokenizer-from"),
    (["--dataset", "twitter2015", "--tgt", "ja", "--tokenizer", "nomodule_here:cut"], "--tokenizer nomodule_here:cut: cannot import"),
])
def test_dataset_option_errors_are_one_line(plugin, data_dir, args, message) -> None:
    twitter2017_from_sample(data_dir)
    result = invoke(*args, "--data-dir", str(data_dir))
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("\n") == 1 and "Traceback" not in result.output


def test_input_files_in_twitter_format_take_the_language_of_src(plugin, tmp_path, sample_data_dir) -> None:
    """A Twitter-format file holds any space-delimited language: read for ``--src de`` its posts are German."""
    source = sample_data_dir / "twitter2015" / "test.txt"
    result = invoke("--src", "de", "--tgt", "en", "--input", str(source), "--output", str(tmp_path / "o"), "--translator", f"{plugin}:english", "--json")
    assert result.exit_code == 0, result.output
    assert {s.meta["source_lang"] for s in read_samples(tmp_path / "o" / "test.jsonl", "jsonl")} == {"de"}


def test_help_shows_examples() -> None:
    result = invoke("--help")
    assert result.exit_code == 0 and "--translator" in result.output and "xl translate --src en --tgt zh" in result.output

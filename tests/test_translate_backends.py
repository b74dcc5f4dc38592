"""Translation backends on tiny models built in the test: Marian, NLLB, CTranslate2; cache and batching."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from translate_helpers import twitter2017_from_sample
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.formats import read_samples
from xlingual.data.labels import spans
from xlingual.errors import ConfigError, ModelNotFoundError
from xlingual.testing.tiny_mt import build_tiny_marian, build_tiny_nllb
from xlingual.translate import CachedTranslator, DecodingOptions, TranslationCache, load_translator
from xlingual.translate.base import length_sorted_batches
from xlingual.translate.hf import HFTranslator
from xlingual.translate.plugin import load_plugin_translator
from xlingual.hub import resolve_model

runner = CliRunner()
GREEDY = DecodingOptions(beam_size=1, max_length=12)


@pytest.fixture(scope="module")
def marian(tmp_path_factory) -> Path:
    return build_tiny_marian(tmp_path_factory.mktemp("marian") / "en-zh", "en", "zh")


@pytest.fixture(scope="module")
def nllb(tmp_path_factory) -> Path:
    return build_tiny_nllb(tmp_path_factory.mktemp("nllb") / "nllb", "zh", "en")


def test_tiny_marian_loads_by_path_and_keeps_order_across_batches(marian: Path) -> None:
    texts = ["X1 loves X2 .", "we met X2 in X1 today and it was good .", "John"]
    translator = HFTranslator.from_pretrained(str(marian), "en", "zh", GREEDY, device="cpu")
    together = translator.translate(texts)
    assert len(together) == len(texts) and all(isinstance(t, str) for t in together)
    tiny_batches = HFTranslator(translator.model, translator.tokenizer, "en", "zh", DecodingOptions(beam_size=1, max_length=12, max_batch_size=1), "cpu", "same")
    assert tiny_batches.translate(texts) == [tiny_batches.translate([t])[0] for t in texts]
    assert translator.translate([]) == []


def test_nllb_forces_the_target_language_code(nllb: Path) -> None:
    translator = HFTranslator.from_pretrained(str(nllb), "zh", "en", GREEDY)
    assert translator.generate_kwargs["forced_bos_token_id"] == translator.tokenizer.convert_tokens_to_ids("eng_Latn")
    assert translator.tokenizer.src_lang == "zho_Hans"
    assert len(translator.translate(["X1爱X2。", "巴黎"])) == 2


@pytest.mark.parametrize("fixture, src, tgt, input_file, fmt", [
    ("marian", "en", "zh", "twitter2015/train.txt", "cmner"),
    ("nllb", "zh", "en", "cmner/text/dev.txt", "twitter"),
])
def test_cli_runs_end_to_end_with_a_local_model(request, tmp_path, sample_data_dir, fixture, src, tgt, input_file, fmt) -> None:
    model = request.getfixturevalue(fixture)
    out = tmp_path / "out"
    result = runner.invoke(app, ["translate", "--src", src, "--tgt", tgt, "--model", str(model), "--input", str(sample_data_dir / input_file),
                                 "--output", str(out), "--beam-size", "1", "--max-length", "8", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    stem = Path(input_file).stem
    assert report["samples_in"] == len(read_samples(sample_data_dir / input_file))
    assert report["samples_in"] == report["samples_out"] + sum(report["failures_by_reason"].values())
    assert report["mt"]["mt_calls"] > 0
    if report["samples_out"] == 0:  # random weights rarely keep placeholders: every sample reported, none emitted
        assert (out / f"{stem}.txt").read_text() == ""
    else:
        for sample in read_samples(out / f"{stem}.jsonl", "jsonl"):
            assert sorted(s.type for s in spans(sample.labels)) == sorted(e["type"] for e in sample.meta["entities"])
        assert len(read_samples(out / f"{stem}.txt", fmt)) == report["samples_out"]
    failures = [json.loads(line) for line in (out / f"{stem}.failures.jsonl").read_text().splitlines()]
    assert len(failures) == report["samples_in"] - report["samples_out"]
    assert all(f["reason"] and f["attempts"] for f in failures)
    assert (out / ".cache" / "translations.sqlite").exists()


@pytest.fixture(scope="module")
def marian_de(tmp_path_factory) -> Path:
    return build_tiny_marian(tmp_path_factory.mktemp("marian-de") / "en-de", "en", "de")


@pytest.fixture(scope="module")
def nllb_de(tmp_path_factory) -> Path:
    return build_tiny_nllb(tmp_path_factory.mktemp("nllb-de") / "nllb", "en", "de", languages=("en", "de"))


@pytest.mark.parametrize("fixture", ["marian_de", "nllb_de"])
def test_dataset_mode_translates_twitter2017_into_german_with_a_local_model(request, tmp_path, sample_data_dir, fixture) -> None:
    """Done-when: ``xl translate --dataset twitter2017 --src en --tgt de --model PATH`` (tiny Marian, tiny NLLB)."""
    model = request.getfixturevalue(fixture)
    data_dir = twitter2017_from_sample(Path(shutil.copytree(sample_data_dir, tmp_path / "data")), posts=4)
    result = runner.invoke(app, ["translate", "--dataset", "twitter2017", "--src", "en", "--tgt", "de", "--model", str(model),
                                 "--data-dir", str(data_dir), "--beam-size", "1", "--max-length", "8", "--json"])
    assert result.exit_code == 0, result.output
    out = data_dir / "translated" / f"twitter2017.en-de.{model.name}"
    report = json.loads((out / "report.json").read_text())
    assert json.loads(result.stdout) == report and (report["src"], report["tgt"]) == ("en", "de")
    assert report["samples_in"] == 12 == report["samples_out"] + sum(report["failures_by_reason"].values())
    assert (out / "preview.html").is_file() and report["mt"]["mt_calls"] > 0
    for name in ("train", "valid", "test"):
        projected = read_samples(out / f"{name}.txt", "twitter") if (out / f"{name}.txt").stat().st_size else []
        failures = [json.loads(line) for line in (out / f"{name}.failures.jsonl").read_text().splitlines()]
        assert len(projected) + len(failures) == 4
        sent = [a for f in failures for a in f["attempts"] if a["translation"] is not None]
        if fixture == "nllb_de":  # the forced deu_Latn token is a special token: never left in the output
            assert all("deu_Latn" not in a["translation"] for a in sent)


def test_ctranslate2_matches_transformers_greedy(marian: Path, tmp_path: Path) -> None:
    pytest.importorskip("ctranslate2")
    texts = ["X1 loves X2 .", "Paris", "I see X3 ."]
    reference = HFTranslator.from_pretrained(str(marian), "en", "zh", GREEDY).translate(texts)
    ct2 = load_translator("en", "zh", str(marian), backend="ctranslate2", options=GREEDY, quantization="float32", work_dir=tmp_path)
    assert ct2.translate(texts) == reference
    assert list(tmp_path.glob("ct2-*-float32/model.bin"))
    assert ct2.cache_key != HFTranslator.from_pretrained(str(marian), "en", "zh", GREEDY).cache_key


@pytest.fixture(scope="module")
def short_marian(tmp_path_factory) -> Path:
    """A Marian whose position table has 16 rows: ordinary tweets run off its end."""
    return build_tiny_marian(tmp_path_factory.mktemp("marian16") / "en-zh", "en", "zh", max_positions=16)


LONG = "we met X2 in X1 today and it was good and then we went to X3 with John and Mary ."


@pytest.mark.parametrize("backend", ["transformers", "ctranslate2"])
def test_short_position_table_clamps_inputs_and_generation(short_marian: Path, tmp_path: Path, backend: str) -> None:
    if backend == "ctranslate2":
        pytest.importorskip("ctranslate2")
    options = DecodingOptions(beam_size=1, max_length=64)  # asks for more new tokens than the table holds
    translator = load_translator("en", "zh", str(short_marian), backend=backend, options=options, quantization="float32", work_dir=tmp_path)
    assert translator.limits.max_input_tokens == 16 and translator.limits.max_new_tokens == 15
    assert translator.too_long(["X1 loves X2 .", LONG]) == [False, True]
    outputs = translator.translate(["X1 loves X2 .", LONG])  # random weights never stop early: generation hits the cap
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)


def test_cli_reports_sentences_too_long_for_the_model_instead_of_crashing(short_marian: Path, tmp_path: Path, sample_data_dir: Path) -> None:
    source = sample_data_dir / "twitter2015" / "train.txt"
    out = tmp_path / "out"
    result = runner.invoke(app, ["translate", "--src", "en", "--tgt", "zh", "--model", str(short_marian), "--input", str(source),
                                 "--output", str(out), "--beam-size", "1", "--max-length", "64", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["failures_by_reason"].get("too_long", 0) > 0 and report["mt"]["too_long"] > 0
    assert report["samples_in"] == report["samples_out"] + sum(report["failures_by_reason"].values())
    failures = [json.loads(line) for line in (out / "train.failures.jsonl").read_text().splitlines()]
    cut = [f for f in failures if f["reason"] == "too_long"]
    assert cut and all(a["translation"] is None for f in cut for a in f["attempts"] if a["reason"] == "too_long")  # never sent


def test_ctranslate2_threads_follow_the_cores_given_and_whole_list_batching_keeps_order(marian: Path, tmp_path: Path) -> None:
    pytest.importorskip("ctranslate2")
    from xlingual.translate.base import available_cores
    from xlingual.translate.ct2 import CTranslate2Translator

    fixed_cap = DecodingOptions(beam_size=1, max_length=8, length_ratio=1e6, max_tokens=24)
    ours = load_translator("en", "zh", str(marian), backend="ctranslate2", options=fixed_cap, quantization="float32", work_dir=tmp_path)
    assert ours.threads == available_cores()
    converted = next(tmp_path.glob("ct2-*-float32"))
    whole = CTranslate2Translator(converted, "en", "zh", fixed_cap, device="cpu", compute_type="float32", threads=1, whole_list=True)
    assert whole.threads == 1 and whole.cache_key != ours.cache_key
    texts = ["X1 loves X2 .", "Paris", "we met X2 in X1 today .", "I see X3 .", "John"]
    forward = whole.translate(texts)
    assert len(forward) == len(texts)
    assert whole.translate(texts[::-1]) == forward[::-1]  # CTranslate2 batches the same texts alike: results follow input order


def test_cache_translates_each_text_once_and_persists(tmp_path: Path) -> None:
    class Counting:
        cache_key = "counting-v1"

        def __init__(self) -> None:
            self.seen: list[str] = []

        def translate(self, texts: list[str]) -> list[str]:
            self.seen.extend(texts)
            return [t[::-1] for t in texts]

    inner = Counting()
    cache = TranslationCache(tmp_path / "c.sqlite")
    cached = CachedTranslator(inner, cache)
    assert cached.translate(["ab", "cd", "ab"]) == ["ba", "dc", "ba"]
    assert inner.seen == ["ab", "cd"] and cached.stats.mt_calls == 2 and cached.stats.cache_hits == 1
    cache.close()
    again = CachedTranslator(inner, TranslationCache(tmp_path / "c.sqlite"))
    assert again.translate(["cd", "ef"]) == ["dc", "fe"]
    assert inner.seen == ["ab", "cd", "ef"] and again.stats.cache_hits == 1
    inner.cache_key = "counting-v2"  # another model or option never reads the old entries
    assert CachedTranslator(inner, TranslationCache(tmp_path / "c.sqlite")).translate(["ab"]) == ["ba"]
    assert inner.seen[-1] == "ab"


def test_length_sorted_batches_respect_the_token_budget() -> None:
    lengths = [5, 50, 3, 40, 7, 1, 100]
    batches = length_sorted_batches(lengths, max_tokens=100, max_batch_size=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 100
    assert batches[0] == [6]


def test_model_resolution_errors_are_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        resolve_model("Helsinki-NLP/opus-mt-en-zh")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        resolve_model(str(tmp_path / "empty"))


def test_plugin_loader_accepts_objects_and_factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_mt_plugin.py").write_text(
        "class Upper:\n    def translate(self, texts):\n        return [t.upper() for t in texts]\n"
        "instance = Upper()\n\ndef factory():\n    return Upper()\n\nnot_a_translator = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("instance", "factory", "Upper"):
        assert load_plugin_translator(f"my_mt_plugin:{name}").translate(["a"]) == ["A"]
    with pytest.raises(ConfigError, match="no translate"):
        load_plugin_translator("my_mt_plugin:not_a_translator")
    with pytest.raises(ConfigError, match="has no attribute"):
        load_plugin_translator("my_mt_plugin:missing")


def test_ctranslate2_parallel_batches_give_the_same_outputs_in_input_order(marian: Path, tmp_path: Path) -> None:
    pytest.importorskip("ctranslate2")
    from xlingual.translate.ct2 import CTranslate2Translator

    fixed_cap = DecodingOptions(beam_size=1, max_length=8, length_ratio=1e6, max_tokens=12)
    load_translator("en", "zh", str(marian), backend="ctranslate2", options=fixed_cap, quantization="float32", work_dir=tmp_path)
    converted = next(tmp_path.glob("ct2-*-float32"))
    texts = ["X1 loves X2 .", "Paris", "we met X2 in X1 today .", "I see X3 .", "John", "X1 and X2 met X3 in Paris ."]
    serial = CTranslate2Translator(converted, "en", "zh", fixed_cap, device="cpu", compute_type="float32", threads=1, whole_list=True)
    parallel = CTranslate2Translator(converted, "en", "zh", fixed_cap, device="cpu", compute_type="float32", threads=2,
                                     whole_list=True, inter_threads=2)
    assert parallel.inter_threads == 2 and serial.inter_threads == 1
    assert parallel.translate(texts) == serial.translate(texts)  # a 12-token budget splits these into several batches
    one_by_one = CTranslate2Translator(converted, "en", "zh", fixed_cap, device="cpu", compute_type="float32", threads=2, inter_threads=1)
    side_by_side = CTranslate2Translator(converted, "en", "zh", fixed_cap, device="cpu", compute_type="float32", threads=2)
    assert side_by_side.inter_threads == 2, "on the CPU the default runs one batch per thread"
    assert side_by_side.translate(texts) == one_by_one.translate(texts), "xlingual's batches submitted together: the same outputs"
    assert side_by_side.cache_key == one_by_one.cache_key, "how batches are scheduled never changes a cached translation"
    entities, sentences = texts[1::2], texts[0::2]
    pending_entities, pending_sentences = side_by_side.submit(entities), side_by_side.submit(sentences)  # both lists in flight
    assert pending_sentences() == one_by_one.translate(sentences) and pending_entities() == one_by_one.translate(entities)


def test_device_index_places_one_ctranslate2_replica_per_gpu_and_batches_each_call_whole(marian: Path, tmp_path: Path, monkeypatch) -> None:
    """No GPU here: CTranslate2's Translator is replaced by a recorder of what it is asked to build, and two GPUs are made up."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    from xlingual.translate.ct2 import CTranslate2Translator
    from xlingual.translate.factory import parse_device_index

    one = load_translator("en", "zh", str(marian), backend="ctranslate2", options=GREEDY, quantization="float32", work_dir=tmp_path,
                          device="cpu", device_index=[0])
    assert one.device_index == [0] and not one.whole_list
    converted = next(tmp_path.glob("ct2-*-float32"))
    built: dict = {}
    monkeypatch.setattr(ctranslate2, "Translator", lambda path, **kwargs: built.update(kwargs))
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 2)
    several = CTranslate2Translator(converted, "en", "zh", GREEDY, device="cuda", compute_type="float32", device_index=parse_device_index("0,1"),
                                    inter_threads=2)
    assert (built["device_index"], built["inter_threads"], several.whole_list) == ([0, 1], 2, True)
    assert '"whole_list": true' in several.cache_key
    with pytest.raises(ConfigError, match="need --device cuda"):
        CTranslate2Translator(converted, "en", "zh", GREEDY, device="cpu", device_index=[0, 1])
    for bad in ("0,x", "1,1", "-1", ""):
        with pytest.raises(ConfigError, match="--device-index"):
            parse_device_index(bad)
    with pytest.raises(ConfigError, match="only the ctranslate2 backend"):
        load_translator("en", "zh", str(marian), options=GREEDY, device_index=[0, 1])


def test_transformers_batches_side_by_side_give_the_same_outputs_and_leave_torch_threads_as_they_were(marian: Path) -> None:
    import torch

    from xlingual.translate.base import ThreadLayout

    budget = DecodingOptions(beam_size=1, max_length=8, max_tokens=12)  # a 12-token budget: several batches
    texts = ["X1 loves X2 .", "Paris", "we met X2 in X1 today .", "I see X3 .", "John", "X1 and X2 met X3 in Paris ."]
    one_by_one = HFTranslator.from_pretrained(str(marian), "en", "zh", budget, device="cpu", threads=2, inter_threads=1)
    side_by_side = HFTranslator.from_pretrained(str(marian), "en", "zh", budget, device="cpu", threads=2)
    assert side_by_side.layout == ThreadLayout(batches=2, per_batch=1) and one_by_one.layout == ThreadLayout(1, 2)
    assert side_by_side.cache_key == one_by_one.cache_key, "how batches are scheduled never changes a cached translation"
    from xlingual.translate.hf import source_lengths

    batches = length_sorted_batches(source_lengths(side_by_side.tokenizer, texts), budget.max_tokens, budget.max_batch_size)
    assert side_by_side.layout.for_call(len(batches)).batches == 2, "enough batches to decode two at a time"
    before = torch.get_num_threads()
    assert side_by_side.translate(texts) == one_by_one.translate(texts)
    assert torch.get_num_threads() == before
    assert ThreadLayout.choose(4, "cuda") == ThreadLayout(1, 4), "a GPU decodes one batch at a time"
    layout = ThreadLayout.choose(2, "cpu")
    assert layout.for_call(4) == layout and layout.for_call(3) == ThreadLayout(1, 2) == layout.for_call(1), \
        "side by side only with at least two batches per worker, otherwise one at a time on all threads"
    assert ThreadLayout(1, 2).for_call(100) == ThreadLayout(1, 2)
    assert ThreadLayout.choose(0, "cpu").batches >= 1


def test_dtype_sets_the_transformers_precision_and_keys_the_cache_and_ctranslate2_refuses_it(marian: Path, tmp_path: Path,
                                                                                              sample_data_dir: Path) -> None:
    import torch

    plain = load_translator("en", "zh", str(marian), options=GREEDY, device="cpu")
    half = load_translator("en", "zh", str(marian), options=GREEDY, device="cpu", dtype="bfloat16")
    assert plain.model.dtype == torch.float32 and half.model.dtype == torch.bfloat16
    assert "dtype" not in json.loads(plain.cache_key), "float32 keeps the key earlier caches were written under"
    assert json.loads(half.cache_key)["dtype"] == "bfloat16" and half.cache_key != plain.cache_key
    texts = ["X1 loves X2 .", "John"]
    assert [isinstance(t, str) for t in half.translate(texts)] == [True, True]
    result = runner.invoke(app, ["translate", "--src", "en", "--tgt", "zh", "--data-dir", str(sample_data_dir), "--model", str(marian),
                                 "--backend", "ctranslate2", "--dtype", "bfloat16", "--output", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--dtype bfloat16: only the transformers backend" in result.output.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.txt"))


def test_conversions_racing_into_one_folder_leave_one_whole_conversion(marian: Path, tmp_path: Path, monkeypatch) -> None:
    """Ray workers share a cache: a second conversion that starts and finishes while the first is still finishing
    does not delete the first one's files, and one whole folder is left in place with no staging folder behind."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    import types

    import xlingual.translate.ct2 as ct2

    out = tmp_path / "ct2-float32"
    real = ctranslate2.converters.TransformersConverter
    raced = []

    class Converter(real):
        def convert(self, output_dir, *args, **kwargs):
            converted = super().convert(output_dir, *args, **kwargs)
            if not raced:  # the first conversion has written its files when a whole second one starts and ends
                raced.append(output_dir)
                ct2.convert_to_ctranslate2(marian, out, "float32")
            return converted

    shim = types.SimpleNamespace(converters=types.SimpleNamespace(TransformersConverter=Converter))
    monkeypatch.setattr(ct2, "_require_ctranslate2", lambda: shim)
    assert ct2.convert_to_ctranslate2(marian, out, "float32") == out
    assert raced and (out / "model.bin").is_file() and (out / "hf_config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct2-float32"]

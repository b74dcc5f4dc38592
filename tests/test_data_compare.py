"""`xl data compare`: its counts agree with `xl data stats`, on real data and on a translated corpus."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.data.compare import compare, profile
from xlingual.data.formats import read_samples
from xlingual.data.sample import Sample

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def stats_totals(paths: list[Path]) -> dict:
    """What `xl data stats --json` says about the files taken together."""
    result = run("data", "stats", *map(str, paths), "--json")
    assert result.exit_code == 0, result.output
    splits = json.loads(result.output)["splits"]
    total: dict = {"posts": 0, "tokens": 0, "posts_without_entities": 0, "total_entities": 0, "entities": {}}
    for split in splits:
        for key in ("posts", "tokens", "posts_without_entities", "total_entities"):
            total[key] += split[key]
        for etype, count in split["entities"].items():
            total["entities"][etype] = total["entities"].get(etype, 0) + count
    return total


def assert_agrees_with_stats(side: dict, paths: list[Path]) -> None:
    expected = stats_totals(paths)
    for key in ("posts", "tokens", "posts_without_entities", "total_entities", "entities"):
        assert side[key] == expected[key], key
    assert side["entity_length_tokens"]["count"] == expected["total_entities"]
    assert sum(side["entity_length_chars"]["histogram"].values()) == expected["total_entities"]
    assert sum(side["transitions"].values()) == expected["tokens"] - expected["posts"]


def check_compare(data_root: Path, out: Path) -> dict:
    """`xl data compare` of Twitter2015 dev against CMNER dev+test under ``data_root``: agrees with stats, charts written."""
    first = data_root / "twitter2015" / "valid.txt"
    cmner = data_root / "cmner" / "text"
    second = [cmner / "dev.txt", cmner / "test.txt"]
    result = run("data", "compare", str(first), ",".join(map(str, second)), "--json", "--output", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert_agrees_with_stats(data["a"], [first])
    assert_agrees_with_stats(data["b"], second)
    for chart in ("type_shares.png", "entity_length_tokens.png", "entity_length_characters.png"):
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "compare.json").read_text(encoding="utf-8")) == data
    # Chinese is one character per token: lengths in characters and tokens coincide.
    assert data["b"]["entity_length_chars"]["histogram"] == data["b"]["entity_length_tokens"]["histogram"]
    return data


def test_compare_agrees_with_stats_on_real_datasets(shared_data: Path, tmp_path: Path) -> None:
    data = check_compare(shared_data, tmp_path / "out")
    assert data["b"]["total_entities"] == 5395 + 5277  # Table 1 (README): CMNER dev + test


def test_compare_agrees_with_stats_on_generated_datasets(generated_data, tmp_path: Path) -> None:
    data = check_compare(generated_data.root, tmp_path / "out")
    written = generated_data.weibo["dev"] + generated_data.weibo["test"]
    assert data["b"]["total_entities"] == sum(len(s.entities()) for s in written) > 0
    assert data["a"]["posts"] == len(generated_data.tweets["dev"])


def test_compare_on_a_translated_corpus_and_its_markdown(sample_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "translated"
    translated = run("translate", "--src", "en", "--tgt", "zh", "--data-dir", str(sample_data_dir), "--output", str(out),
                     "--translator", "xlingual.translate.glossary:sample_en_zh", "--json")
    assert translated.exit_code == 0, translated.output
    report = json.loads(translated.stdout)
    assert (out / "preview.html").is_file()
    source = sample_data_dir / "twitter2015"
    result = run("data", "compare", str(source), str(out), "--json", "--names", "source,translated")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["b"]["name"] == "translated" and len(data["b"]["files"]) == 3  # the three splits, not the JSONL copies
    assert_agrees_with_stats(data["a"], sorted(source.glob("*.txt")))
    assert_agrees_with_stats(data["b"], sorted(out.glob("*.txt")))
    assert data["a"]["entities"] == {t: v["before"] for t, v in report["entities"].items()}
    assert data["b"]["entities"] == {t: v["after"] for t, v in report["entities"].items()}
    markdown = run("data", "compare", str(source), str(out), "--names", "source,translated").stdout
    posts = data["a"]["posts"]  # translation keeps every post of the sample
    assert posts == data["b"]["posts"] == len(read_samples(source / "train.txt") + read_samples(source / "valid.txt") + read_samples(source / "test.txt"))
    assert "| PER entities (share) |" in markdown, markdown
    assert f"| posts | {posts} | {posts} | +0 |" in markdown, markdown


def test_bad_inputs_are_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    good = tmp_path / "a.txt"
    good.write_text("IMGID:1\nParis\tB-LOC\n", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_text("IMGID:1\nParis B-LOC\n", encoding="utf-8")
    for args, message in (([str(good), str(tmp_path / "nope.txt")], "nope.txt: no such file"),
                          ([str(good), str(tmp_path / "empty")], "no dataset files"),
                          ([str(good), str(bad)], "bad.txt:2:"),
                          ([str(good), str(good), "--names", "one"], "--names")):
        result = run("data", "compare", *args)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.tuples(st.text(alphabet="ab中文", min_size=1, max_size=3), st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-ORG"])),
                         max_size=8), max_size=6),
       st.sampled_from(["en", "zh"]))
def test_profile_invariants(posts, lang) -> None:
    samples = [Sample(str(i), [t for t, _ in p], [lab for _, lab in p], lang=lang) for i, p in enumerate(posts)]
    measured = profile("x", [], samples)
    total = measured.total_entities
    assert sum(measured.entity_tokens.histogram.values()) == total == sum(measured.entity_chars.histogram.values())
    assert sum(sum(h.histogram.values()) for h in measured.type_tokens.values()) == total
    assert measured.posts_without_entities == sum(1 for s in samples if not s.entities())
    assert sum(measured.transitions.values()) == sum(max(len(s) - 1, 0) for s in samples)
    shares = [measured.share(t) for t in measured.entities]
    assert not shares or abs(sum(shares) - 1) < 1e-9
    assert compare(measured, measured).markdown().count("+0.0 pp") >= len(measured.entities)


HOSTILE_NAME = "<img src=x onerror=alert(1)>|$\\frac{$"


def test_a_huge_entity_and_hostile_names_are_binned_and_escaped(tmp_path: Path) -> None:
    """A 200,000-character entity costs a few dozen bars, and names with HTML, pipes and $...$ reach no output raw."""
    from xlingual.data.compare import MAX_LENGTH_BARS, _binned, length_bins

    huge = "x" * 200_000
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    for path, entity in ((first, huge), (second, "Paris")):
        path.write_text(f"IMGID:1\n{entity}\tB-LOC\nvisits\tO\n\nIMGID:2\nhello\tO\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run("data", "compare", str(first), str(second), "--output", str(out), "--names", f"{HOSTILE_NAME},b")
    assert result.exit_code == 0, result.output
    markdown = (out / "compare.md").read_text(encoding="utf-8")
    assert "<img" not in markdown and "&lt;img src=x onerror=alert(1)&gt;\\|$\\\\frac{$" in markdown
    for name in ("type_shares", "entity_length_tokens", "entity_length_characters"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ranges = length_bins(200_000)
    assert len(ranges) <= MAX_LENGTH_BARS
    assert _binned(profile("a", [], read_samples(first)).entity_chars.histogram, ranges)[-1] == 1


@given(lengths=st.lists(st.integers(1, 10**6), min_size=1, max_size=30))
def test_length_bins_cover_every_length_once_in_few_bars(lengths: list[int]) -> None:
    from collections import Counter

    from xlingual.data.compare import MAX_LENGTH_BARS, _binned, length_bins

    ranges = length_bins(max(lengths))
    assert len(ranges) <= MAX_LENGTH_BARS and ranges[0][0] == 1 and ranges[-1][1] == max(lengths)
    assert all(low <= high for low, high in ranges) and all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:]))
    counts = _binned(Counter(lengths), ranges)
    assert sum(counts) == len(lengths)
    for length in lengths:
        index = next(i for i, (low, high) in enumerate(ranges) if low <= length <= high)
        assert counts[index] >= 1

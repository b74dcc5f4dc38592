"""The benchmark results path: recorded JSON lines -> Markdown table -> the README's marked block, nothing else touched."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


record = _load("_record")
render = _load("render_readme")

README = """# Title

Intro | with a pipe.

## Measured here

Before the block.

<!-- bench:start -->
| old | table |
<!-- bench:end -->

Hand-written rows from longer runs.
"""


def _write_results(path: Path) -> None:
    out = record.Recorder(benchmark="bench_acn.py", setup="6 steps, batch 16", path=path, load_before=1.5)
    out.record("ACN speed", 3.3812, "steps/s", 1.234, "the reference's speed", threads=2)
    out.record("peak memory", 1.26, "GiB")


def test_recorder_writes_conditions_and_nothing_without_a_path(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "results.jsonl"
    _write_results(path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["figure"] for line in lines] == ["ACN speed", "peak memory"]
    conditions = lines[0]["conditions"]
    assert conditions["threads"] == 2 and conditions["load_before"] == 1.5 and conditions["setup"] == "6 steps, batch 16"
    assert {"cpu", "cores", "load_after", "torch"} <= set(conditions)
    assert lines[1]["ratio"] is None
    line = record.Recorder("b.py", "", None).record("x", 1.0)
    assert line["value"] == 1.0 and not list(tmp_path.glob("*.jsonl"))


def test_results_to_table_to_readme(tmp_path: Path) -> None:
    results, table, readme = tmp_path / "r.jsonl", tmp_path / "results.md", tmp_path / "README.md"
    _write_results(results)
    readme.write_text(README, encoding="utf-8")
    assert render.main(["--results", str(results), "--table", str(table), "--readme", str(readme)]) == 0
    rendered = table.read_text(encoding="utf-8")
    rows = [line for line in rendered.splitlines() if line.startswith("| `")]
    assert len(rows) == 2
    assert "**3.38 steps/s**" in rows[0] and "1.23× the reference's speed" in rows[0] and "2 threads" in rows[0]
    assert "load 1.5→" in rows[0] and "6 steps, batch 16" in rows[0]
    updated = readme.read_text(encoding="utf-8")
    head, rest = README.split("<!-- bench:start -->")
    tail = rest.split("<!-- bench:end -->")[1]
    assert updated.startswith(head + "<!-- bench:start -->\n") and updated.endswith("<!-- bench:end -->" + tail)
    assert rendered.strip() in updated and "| old | table |" not in updated
    # Rendering again gives the same README: the block is replaced, not appended to.
    assert render.main(["--results", str(results), "--table", str(table), "--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == updated


@pytest.mark.parametrize("content, message", [
    ("not json\n", "r.jsonl:1: not JSON"),
    ('{"benchmark": "b", "figure": "f", "value": 1, "conditions": {}}\n[1]\n', "r.jsonl:2: expected a JSON object"),
    ('{"benchmark": "b", "figure": "f", "value": "1", "conditions": {}}\n', "r.jsonl:1: missing or wrong 'value'"),
    ('{"benchmark": "b", "figure": "f", "value": 1, "ratio": "x", "conditions": {}}\n', "r.jsonl:1: 'ratio' must be"),
    ("\n", "r.jsonl: no results"),
])
def test_bad_results_are_one_line_exit_2(tmp_path: Path, capsys, content: str, message: str) -> None:
    results = tmp_path / "r.jsonl"
    results.write_text(content, encoding="utf-8")
    assert render.main(["--results", str(results), "--table", str(tmp_path / "t.md")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "t.md").exists()


@pytest.mark.parametrize("readme", ["no markers\n", "<!-- bench:end -->\n<!-- bench:start -->\n",
                                    "<!-- bench:start -->\n<!-- bench:start -->\n<!-- bench:end -->\n"])
def test_readme_without_one_ordered_pair_of_markers_is_refused_untouched(tmp_path: Path, capsys, readme: str) -> None:
    results, path = tmp_path / "r.jsonl", tmp_path / "README.md"
    _write_results(results)
    path.write_text(readme, encoding="utf-8")
    assert render.main(["--results", str(results), "--table", str(tmp_path / "t.md"), "--readme", str(path)]) == 2
    assert "README.md: " in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == readme


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(head=_text, old=_text, block=_text, tail=_text)
def test_replace_block_keeps_everything_outside_the_markers(head: str, old: str, block: str, tail: str) -> None:
    markers = (render.START, render.END)
    if any(m in part for m in markers for part in (head, old, block, tail)):
        return
    text = f"{head}{render.START}{old}{render.END}{tail}"
    updated = render.replace_block(text, block)
    assert updated.startswith(head + render.START) and updated.endswith(render.END + tail)
    assert updated == f"{head}{render.START}\n{block.rstrip(chr(10))}\n{render.END}{tail}"
    assert render.replace_block(updated, block) == updated


@given(st.floats(min_value=1e-3, max_value=1e15) | st.integers(-10**12, 10**12).map(float))
def test_number_is_plain_and_within_half_a_percent(value: float) -> None:
    text = render.number(value)
    assert "e" not in text.lower()
    shown = float(text.replace(",", ""))
    assert abs(shown - value) <= 0.005 * abs(value) + 1e-12
    assert render.number(float("nan")) == "nan"

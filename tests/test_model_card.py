"""Model folders describe themselves: save_pretrained writes a README.md model card, deterministic and read by nothing."""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from xlingual.data.sample import Sample
from xlingual.models import load_model
from xlingual.models.acn import AcnModel
from xlingual.models.card import CARD_NAME, ModelCard, invocation, render_card

TINY = {"word_vectors": None, "word_dim": 8, "char_dim": 4, "char_filters": 2, "char_kernels": [2], "char_out": 4,
        "hidden": 8, "use_image": False}
POSTS = [Sample("a", ["obama", "in", "paris"], ["B-PER", "O", "B-LOC"], [], "en"),
         Sample("b", ["apple", "today"], ["B-ORG", "O"], [], "en")]
CARD = ModelCard(run="acn-en-zh-src-seed5", setting="src", direction="en-zh", datasets=(("twitter2015", "en"), ("cmner", "zh")),
                 target_dataset="cmner", images="none", seed=5, command="xl train --config src --model acn")


def header(card: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", card, re.S)
    assert match, card[:200]
    return yaml.safe_load(match.group(1))


def test_a_saved_model_folder_has_a_card_naming_model_datasets_and_seed(tmp_path):
    model = AcnModel.build(TINY, POSTS)
    model.save_pretrained(tmp_path / "m", card=CARD.selected_by("target", 2, 30, 41.23456))
    card = (tmp_path / "m" / CARD_NAME).read_text(encoding="utf-8")
    assert header(card) == {"library_name": "xlingual", "pipeline_tag": "token-classification",
                            "tags": ["ner", "multimodal-ner", "cross-lingual", "acn"], "language": ["en", "zh"],
                            "datasets": ["twitter2015", "cmner"]}
    for row in ("| Model type | acn |", "| Entity types | LOC, MISC, ORG, PER |", "| Seed | 5 |", "| Setting | src |",
                "| Datasets of the run | twitter2015 (en), cmner (zh) |", "| Selected at | epoch 2, step 30 |",
                "| dev F1 (conlleval) | 41.23 |"):
        assert row in card, row
    assert "\nxl train --config src --model acn\n" in card and "- torch " in card
    assert load_model(tmp_path / "m").predict(POSTS) == model.predict(POSTS)  # the card changes nothing the folder loads


def test_two_identical_saves_give_identical_cards_and_a_bare_save_says_what_is_unknown(tmp_path):
    model = AcnModel.build(TINY, POSTS)
    for folder in ("one", "two/deeper"):
        model.save_pretrained(tmp_path / folder, card=CARD)
    first = (tmp_path / "one" / CARD_NAME).read_bytes()
    assert first == (tmp_path / "two" / "deeper" / CARD_NAME).read_bytes() and str(tmp_path).encode() not in first
    model.save_pretrained(tmp_path / "bare")
    bare = (tmp_path / "bare" / CARD_NAME).read_text(encoding="utf-8")
    assert "| Model type | acn |" in bare and "None recorded" in bare and "Not recorded" in bare and "| Seed |" not in bare


@pytest.mark.parametrize("argv, command", [
    (["/opt/env/bin/xl", "train", "--output", "my run"], "xl train --output 'my run'"),
    (["/src/xlingual/__main__.py", "demo"], "xl demo"),
    (["/opt/env/bin/pytest", "-q"], None),
    (["/opt/ray/default_worker.py", "--node-ip-address=1.2.3.4"], None),
    ([], None),
])
def test_the_command_is_recorded_for_xl_alone_without_its_install_path(argv, command):
    assert invocation(argv) == command


FACT_ROW = re.compile(r"^\| [^|]+ \| (?:[^|\\]|\\.)* \|$")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=30))
@example("a\\|b", "x | y\nz", "\n")
def test_any_text_in_a_fact_stays_in_its_table_row(setting, trained_on, run):
    card = render_card(ModelCard(run=run, setting=setting, trained_on=trained_on, seed=1), "umt", ["O", "B-PER", "I-PER"], {"torch": "2"})
    lines = card.splitlines()
    table = lines[lines.index("|---|---|") + 1:lines.index("## Metrics") - 1]
    expected = ["Model type", "Entity types"] + (["Setting"] if setting.split() else []) + ["Seed"] + (["Trained on"] if trained_on.split() else [])
    assert [row.split(" | ")[0][2:] for row in table] == expected
    assert all(FACT_ROW.match(row) for row in table), table
    assert sum(1 for line in lines if line.startswith("# ")) == 1


HOSTILE = st.text(alphabet=st.sampled_from(list("<>&|\\;#amplt \n\r\taZ1")) | st.characters(), max_size=30)


def read_cell(cell: str) -> str:
    """What a CommonMark renderer shows for a cell the project escaped (backslash escapes and the three entities)."""
    return re.sub(r"\\(.)|&(amp|lt|gt);", lambda m: m.group(1) or {"amp": "&", "lt": "<", "gt": ">"}[m.group(2)], cell)


@settings(max_examples=200, deadline=None)
@given(HOSTILE, HOSTILE, HOSTILE)
@example("<img src=x onerror=alert(1)>", "a&lt;b | c\\", "dev & <b>F1</b>")
def test_text_in_a_card_is_escaped_as_every_markdown_table_cell_is(run, trained_on, metric):
    """The card's title, facts and metric names hold no HTML and read back as written (white space as one space)."""
    card = render_card(ModelCard(run=run, trained_on=trained_on, metrics={metric: 1.0}), "acn", ["O", "B-PER"], {"torch": "2"})
    lines = card.splitlines()
    shown = {line[2:] for line in lines if line.startswith("# ")} | {line[len("| Trained on | "):-len(" |")] for line in lines if line.startswith("| Trained on |")} \
        | {line[2:-len(" | 1.00 |")] for line in lines if line.endswith(" | 1.00 |")}
    wanted = {" ".join(text.split()) for text in (run, trained_on, metric) if text.split()}
    assert {read_cell(cell) for cell in shown} >= wanted
    assert not any(set("<>") & set(cell) for cell in shown), shown


@given(st.lists(st.text(alphabet=st.sampled_from(list("abcXYZ019-_.+()")), min_size=1, max_size=8), min_size=1, max_size=4).map(" ".join))
def test_ordinary_names_are_written_as_they_are(name):
    """Run, setting and dataset names of ordinary spelling reach the card unchanged (the demo's cards read as before)."""
    card = render_card(ModelCard(run=name, setting=name, metrics={f"{name} test F1": 80.0}), "acn", ["O", "B-PER"], {"torch": "2"})
    assert f"# {name}" in card.splitlines() and f"| Setting | {name} |" in card and f"| {name} test F1 | 80.00 |" in card

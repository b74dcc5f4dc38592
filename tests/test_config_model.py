"""The ``model`` section is checked when a config loads, by each model's own config dataclass.

A typo or a wrong type in ``model.*`` is refused by ``xl train --dry-run`` and
by every config load, naming the ``--set`` option or the file line that gave
it, not hours later when the model is built.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xlingual.cli import app
from xlingual.errors import ConfigError
from xlingual.models import MODEL_CLASSES, model_config_class
from xlingual.train.config import load_config

from config_helpers import file_error
from test_cli_start import HEAVY, modules_loaded_by

MODELS = sorted(MODEL_CLASSES)


def _fields(model_type: str) -> list[tuple[str, object, set[type]]]:
    """(name, default, leaf types of the hint) of every option of a model."""
    cls = model_config_class(model_type)
    hints = typing.get_type_hints(cls)
    out = []
    for field in dataclasses.fields(cls):
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        out.append((field.name, default, _leaves(hints[field.name])))
    return out


def _leaves(hint: object) -> set[type]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, __import__("types").UnionType):
        return set().union(*(_leaves(arg) for arg in args))
    return {typing.get_origin(hint) or hint}


def _load(model_type: str, *sets: str):
    return load_config("tgt_only", model_type, "en-zh", list(sets))


def test_dry_run_refuses_a_typo_in_the_model_section_naming_the_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "--config", "src_tgt", "--model", "umt", "--set", "model.hiden=1", "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "--set model.hiden=1" in result.output and "hiden" in result.output and "Traceback" not in result.output
    assert "hidden" not in result.output.split("known:")[0]  # the typo is named, not a guess
    assert list(tmp_path.iterdir()) == []


def test_a_typo_in_a_yaml_model_section_names_the_file_and_line(tmp_path):
    typo = file_error(tmp_path, "model_type: umt\nsetting: tgt_only\nmodel:\n  encoder: bert-base-cased\n  cross_heds: 4\n")
    assert re.search(r"mine\.yaml:5: model: unknown key\(s\) cross_heds \(known: .*cross_heads", typo)
    fraction = file_error(tmp_path, "model_type: umt\nsetting: tgt_only\nmodel:\n  cross_heads: 2.5\n")
    assert re.search(r"mine\.yaml:4: model\.cross_heads: '2\.5' is not a whole number$", fraction)


def test_a_fractional_number_for_a_whole_number_option_is_refused_everywhere():
    umt = model_config_class("umt")
    with pytest.raises(ConfigError, match=r"^model\.cross_heads: "):
        umt.from_dict({"cross_heads": 2.5})
    with pytest.raises(ConfigError, match=r"^--set model\.cross_heads=2\.5: model\.cross_heads: '2\.5' is not a whole number$"):
        _load("umt", "model.cross_heads=2.5")


def test_a_range_check_of_the_model_names_the_option_that_set_it():
    with pytest.raises(ConfigError, match=r"^--set model\.hidden=3: model\.hidden: must be even"):
        _load("acn", "model.hidden=3")
    with pytest.raises(ConfigError, match=r"^--set model\.max_length=2: model\.max_length must be at least 3"):
        _load("umt", "model.max_length=2")


@pytest.mark.parametrize("model_type", MODELS)
def test_every_option_of_a_model_loads_at_its_default(model_type):
    for name, default, _ in _fields(model_type):
        text = yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip()
        config = _load(model_type, f"model.{name}={text}")
        assert config.model[name] == default


def _wrong_values(leaves: set[type]) -> list[str]:
    """``--set`` texts no option of these types may take."""
    wrong = ["{a: 1}"]  # a mapping is no option's value
    if bool not in leaves and leaves & {int, float}:
        wrong += ["true", "x"]
    if int in leaves and float not in leaves:
        wrong += ["2.5", "-0.5"]
    if bool in leaves and not leaves & {str, int, float}:
        wrong += ["maybe", "2"]
    if str in leaves and bool not in leaves:
        wrong += ["17"] if not leaves & {int, float} else []
    if list in leaves:
        wrong += ["[2.5]"] if int in leaves or not leaves & {str} else []
    return wrong


@pytest.mark.parametrize("model_type", MODELS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_wrong_type_for_any_option_is_refused_naming_the_set_option(model_type, data):
    name, _, leaves = data.draw(st.sampled_from(_fields(model_type)))
    wrong = _wrong_values(leaves)
    text = data.draw(st.sampled_from(wrong))
    with pytest.raises(ConfigError) as caught:
        _load(model_type, f"model.{name}={text}")
    assert str(caught.value).startswith(f"--set model.{name}={text}: model"), str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("model_type", MODELS)
@settings(max_examples=30, deadline=None)
@given(key=st.from_regex(r"[a-z][a-z_]{1,15}", fullmatch=True))
def test_an_unknown_model_option_is_refused_naming_it(model_type, key):
    assume(key not in {name for name, _, _ in _fields(model_type)} | {"type", "model_type", "name", "images", "backbone"})
    with pytest.raises(ConfigError, match=rf"^--set model\.{key}=1: model: unknown key\(s\) {key} \(known: "):
        _load(model_type, f"model.{key}=1")


def test_not_finite_numbers_stay_refused():
    for text in ("nan", ".inf"):
        with pytest.raises(ConfigError, match="finite"):
            _load("umt", f"model.dropout={text}")


def test_right_values_keep_the_form_they_were_given_in():
    """A config that was right resolves exactly as it did: an int for a float option stays an int, text numbers become numbers."""
    config = _load("umt", "model.dropout=0", "model.alpha=1e-1")
    assert type(config.model["dropout"]) is int and config.model["dropout"] == 0
    assert config.model["alpha"] == pytest.approx(0.1) and not math.isnan(config.model["alpha"])


def test_checking_configs_and_a_grid_loads_no_heavy_library():
    loaded = modules_loaded_by(
        "from xlingual.train.config import load_config\n"
        "for model in ('acn', 'umt', '2mner'):\n"
        "    load_config('src_tgt', model, 'en-zh', ['model.dropout=0.2'])\n"
        "from typer.testing import CliRunner\nfrom xlingual.cli import app\n"
        "assert CliRunner().invoke(app, ['train', '--config', 'src_tgt', '--set', 'model.hiden=1', '--dry-run']).exit_code == 2\n"
        "result = CliRunner().invoke(app, ['experiment', '--direction', 'en-zh', '--models', 'all', '--seeds', '1', '--data-dir', 'no-such-dir',"
        " '--output', 'no-such-runs', '--dry-run'])\n"
        "assert result.exit_code == 2 and 'xl data download' in result.output, result.output"
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


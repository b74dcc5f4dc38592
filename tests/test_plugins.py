"""The plugin API catches its own mistakes: hook names at class definition, dependencies and order when the engine is built,
and main-process-only plugins kept off the other processes.

The dispatch tests run on a stand-in for the stage's run (the chain reads
only ``accelerator.is_main_process`` and ``stop``); the engine-level ones
build a :class:`StageTrainer` (which checks its chain) without training.
"""

from __future__ import annotations

import string
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xlingual.errors import ConfigError
from xlingual.evaluation.metrics import Scores
from xlingual.train.config import StageConfig, TrainConfig
from xlingual.train.engine import StageTrainer
from xlingual.train.plugins import EVENTS, DevEvaluation, EarlyStopping, LossLogging, PluginChain, TrainerPlugin, check_order


def plugin_class(name: str, members: dict, base: type = TrainerPlugin) -> type:
    return type(name, (base,), members)


def noop(self, run) -> None:
    pass


# -- hook names are checked when the class is defined ---------------------------------

@pytest.mark.parametrize("name, guess", [("epoch_ned", "epoch_end"), ("on_epoch_end", "epoch_end"), ("after_stpe", "after_step"),
                                         ("stage_started", "stage_start"), ("clsoe", "close"), ("before_step", None)])
def test_a_misspelt_hook_is_an_error_when_the_class_is_defined(name, guess):
    with pytest.raises(ConfigError) as caught:
        plugin_class("Typo", {name: noop})
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"plugin Typo: {name} is not a plugin event")
    assert (f"did you mean {guess}?" in message) == (guess is not None)


def test_a_misspelt_hook_in_a_class_statement_is_caught_too():
    with pytest.raises(ConfigError, match=r"^plugin .*Late: step_boundry is not a plugin event \(did you mean step_boundary\?"):
        class Late(TrainerPlugin):
            def step_boundry(self, run) -> None:
                pass


def one_edit(word: str) -> st.SearchStrategy[str]:
    """Every name one deletion, insertion, substitution or swap of neighbours away from ``word``."""
    letters = st.sampled_from(string.ascii_lowercase + "_")
    at = st.integers(0, len(word) - 1)
    return st.one_of(
        at.map(lambda i: word[:i] + word[i + 1:]),
        st.tuples(st.integers(0, len(word)), letters).map(lambda t: word[:t[0]] + t[1] + word[t[0]:]),
        st.tuples(at, letters).map(lambda t: word[:t[0]] + t[1] + word[t[0] + 1:]),
        st.integers(0, len(word) - 2).map(lambda i: word[:i] + word[i + 1] + word[i] + word[i + 2:]),
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EVENTS).flatmap(one_edit))
def test_every_name_one_typo_from_an_event_is_refused(name):
    if name in EVENTS or name.startswith("_"):  # an event itself, or a private helper
        plugin_class("Fine", {name: noop})
        return
    with pytest.raises(ConfigError, match=rf"^plugin Typo: {name} is not a plugin event"):
        plugin_class("Typo", {name: noop})


def test_helpers_and_plain_attributes_are_not_taken_for_hooks():
    cls = plugin_class("Helpers", {"evaluate": noop, "check": noop, "count": noop, "_on_epoch_helper": noop,
                                   "step_size": 3, "epoch_end": noop})
    assert cls.events() == ("epoch_end",)
    assert plugin_class("Sub", {"close": noop}, base=cls).events() == ("epoch_end", "close")
    assert TrainerPlugin.events() == ()


@pytest.mark.parametrize("member", [lambda self: None, lambda self, run, extra: None, staticmethod(lambda run: None), None])
def test_a_hook_that_cannot_take_the_run_is_refused(member):
    with pytest.raises(ConfigError, match=r"^plugin Bad: the hook after_step must be a method taking the stage's run"):
        plugin_class("Bad", {"after_step": member})


# -- dependencies: present and before ------------------------------------------------

class Reader(TrainerPlugin):
    """Reads what DevEvaluation records."""

    requires = (DevEvaluation,)

    def epoch_end(self, run) -> None:
        pass


def built_ins() -> list[TrainerPlugin]:
    return [LossLogging(), DevEvaluation(Path("best"), lambda *args: (Scores(0.0, 0.0, 0.0), []))]


def test_a_plugin_after_what_it_requires_passes():
    check_order([*built_ins(), Reader()])


def test_a_required_plugin_that_is_absent_is_one_line_naming_both():
    with pytest.raises(ConfigError) as caught:
        check_order([LossLogging(), Reader()])
    assert str(caught.value) == ("plugins: Reader requires DevEvaluation before it, but DevEvaluation is not among them "
                                 "(plugins in calling order: LossLogging, Reader)")


def test_a_required_plugin_placed_after_is_refused():
    with pytest.raises(ConfigError, match=r"^plugins: EarlyStopping requires DevEvaluation before it, but DevEvaluation comes after it"):
        PluginChain([LossLogging(), EarlyStopping(), *built_ins()[1:]])


def test_the_engine_checks_the_callers_plugins_when_it_is_built(tmp_path):
    class NeedsReader(TrainerPlugin):
        requires = (Reader,)

    def trainer(*plugins):
        return StageTrainer(TrainConfig(seed=7), StageConfig(), "target", tmp_path / "run", tmp_path / "best", plugins=plugins)

    chain = trainer(Reader(), NeedsReader()).plugins.plugins
    assert [type(p).__name__ for p in chain] == ["LossLogging", "DevEvaluation", "EarlyStopping", "Checkpointing", "Reader",
                                                 "NeedsReader", "StepHooks"]
    with pytest.raises(ConfigError, match="^plugins: NeedsReader requires Reader before it, but Reader comes after it"):
        trainer(NeedsReader(), Reader())
    with pytest.raises(ConfigError, match="^plugins: 'not a plugin' is not a TrainerPlugin"):
        trainer("not a plugin")
    assert not (tmp_path / "run").exists()  # refused before anything was written


# -- dispatch: order, stop, main process only ------------------------------------------

class Calls(TrainerPlugin):
    """Appends (its name, the event) to a shared list; may stop the stage at one event."""

    def __init__(self, name: str, calls: list, stop_at: str | None = None) -> None:
        self.name, self.calls, self.stop_at = name, calls, stop_at

    def _call(self, event: str, run) -> None:
        self.calls.append((self.name, event))
        run.stop = run.stop or event == self.stop_at

    def stage_start(self, run) -> None:
        self._call("stage_start", run)

    def step_boundary(self, run) -> None:
        self._call("step_boundary", run)

    def close(self, run) -> None:
        self._call("close", run)


class MainOnly(Calls):
    main_process_only = True


def stage_run(main: bool = True) -> SimpleNamespace:
    return SimpleNamespace(accelerator=SimpleNamespace(is_main_process=main), stop=False)


def test_hooks_run_in_order_teardown_in_reverse_and_a_stop_skips_the_rest():
    calls: list = []
    chain = PluginChain([Calls("a", calls), Calls("b", calls, stop_at="step_boundary"), Calls("c", calls)])
    run = stage_run()
    for event in ("stage_start", "step_boundary", "close"):
        chain.dispatch(event, run)
    assert calls == [("a", "stage_start"), ("b", "stage_start"), ("c", "stage_start"), ("a", "step_boundary"),
                     ("b", "step_boundary"), ("c", "close"), ("b", "close"), ("a", "close")]
    assert run.stop
    chain.dispatch("epoch_end", run)  # no plugin has that hook: nothing is called, nothing fails
    assert len(calls) == 8


@pytest.mark.parametrize("main", [True, False])
def test_a_main_process_only_plugin_runs_on_the_main_process_alone(main):
    calls: list = []
    chain = PluginChain([Calls("every", calls), MainOnly("main", calls), Calls("after", calls)])
    for event in ("stage_start", "step_boundary", "close"):
        chain.dispatch(event, stage_run(main))
    seen = {name for name, _ in calls}
    assert seen == ({"every", "main", "after"} if main else {"every", "after"})
    assert sum(1 for name, _ in calls if name == "every") == 3


def test_a_main_process_only_plugin_may_not_stop_the_stage():
    chain = PluginChain([MainOnly("main", [], stop_at="step_boundary")])
    with pytest.raises(ConfigError, match="^plugin MainOnly runs on the main process only and cannot stop the stage"):
        chain.dispatch("step_boundary", stage_run(main=True))


def test_a_plugin_on_every_process_cannot_require_one_on_the_main_process_only():
    class Follows(TrainerPlugin):
        requires = (MainOnly,)

    class FollowsOnMain(Follows):
        main_process_only = True

    with pytest.raises(ConfigError, match="^plugins: Follows runs on every process but requires MainOnly"):
        check_order([MainOnly("m", []), Follows()])
    check_order([MainOnly("m", []), FollowsOnMain()])

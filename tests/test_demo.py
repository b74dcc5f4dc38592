"""``xl demo`` (what ``make demo`` runs): every stage, offline, on the shipped sample."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from xlingual.cli import app


@pytest.mark.slow
def test_demo_runs_every_stage_and_says_the_models_are_tiny(tmp_path):
    work = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--output", str(work)])
    assert result.exit_code == 0, result.output
    out = result.output
    for stage in ("[translate + project]", "[embeddings]", "[features]", "[train]", "[report]"):
        assert stage in out
    assert "tiny" in out and "random weights" in out
    assert "xl experiment --direction en-zh" in out and "xl translate --src en --tgt zh" in out
    # quiet: one line per stage and its outputs, no log lines; the failed alignment explained once, not warned about
    lines = out.splitlines()
    assert len(lines) < 80, len(lines)
    assert not [line for line in lines if line.startswith(("INFO ", "DEBUG ", "WARNING "))]
    assert "ALIGNMENT LOOK" not in out
    assert out.count("the alignment check flags them as failed") == 1
    # each stage left its artefacts in the data-dir layout real runs read
    data = work / "data"
    assert (data / "translated" / "twitter2015.en-zh.tiny-marian-en-zh" / "report.json").is_file()
    assert (data / "embeddings" / "aligned.en-zh" / "vectors-src.vec").is_file()
    assert any((data / "features" / "vgg16").iterdir())
    runs = sorted(p.name for p in (work / "runs").iterdir())
    assert runs == ["acn-en-zh-src_tgt-seed444", "acn-en-zh-tgt_only-seed444", "umt-en-zh-tgt_only-img_none-seed460"]
    for run in runs:
        # the per-step logs the console left out are in the run's run.log
        log = (work / "runs" / run / "run.log").read_text(encoding="utf-8")
        assert "epoch 0: step 1/" in log, run
        assert ("THIS ALIGNMENT LOOKED FAILED" in log) == run.startswith("acn"), run  # ACN reads the aligned vectors
        metrics = json.loads((work / "runs" / run / "metrics.json").read_text())
        test = metrics["test"]["conlleval"]
        # the tiny models learn something real: entities found on the held-out test posts, selected on dev
        assert test["gold"] > 0 and test["true_positives"] > 0 and test["f1"] > 0, (run, test)
        assert "test F1 0.00" not in out
        for stage in metrics["stages"].values():
            assert stage["best_dev_f1"] > 0 and stage["steps"] >= 100, (run, stage["steps"])
    src_tgt = json.loads((work / "runs" / "acn-en-zh-src_tgt-seed444" / "metrics.json").read_text())
    assert src_tgt["stages"]["pretrain"]["train_samples"] > 0
    assert (work / "runs" / "acn-en-zh-src_tgt-seed444" / "word_vectors.vec").is_file()  # both languages merged
    assert (work / "report" / "table3.md").is_file() and (work / "report" / "f1_by_config.png").is_file()
    # demo numbers are labelled as such and never set beside the paper's
    report = (work / "report" / "report.md").read_text()
    assert "DEMO NUMBERS" in report and "demo (tiny models, made-up sample)" in report
    assert "paper F1" not in report and "Δ paper" not in report
    assert "demo (tiny models" in (work / "report" / "table2.tex").read_text()
    # the runs carry the marking: a later xl report over them writes the demo's tables, p values included
    assert all(json.loads((work / "runs" / run / "metrics.json").read_text())["purpose"] == "demo" for run in runs)
    later = CliRunner().invoke(app, ["report", str(work / "runs"), "--output", str(tmp_path / "later")])
    assert later.exit_code == 0 and "DEMO NUMBERS" in later.output and "paper F1" not in later.output
    for table in ("table2.md", "table3.md", "multilingual-en-zh.md", "table3.tex"):
        assert (tmp_path / "later" / table).read_text() == (work / "report" / table).read_text(), table
    # a second run reuses every finished stage: the runs are kept, not retrained
    before = {run: (work / "runs" / run / "metrics.json").read_text() for run in runs}
    again = CliRunner().invoke(app, ["demo", "--output", str(work), "-v"])
    assert again.exit_code == 0, again.output
    assert "INFO xlingual." in again.output  # -v prints the log lines again
    assert {run: (work / "runs" / run / "metrics.json").read_text() for run in runs} == before


def test_quiet_console_keeps_warnings_and_every_record_for_other_handlers(capsys):
    """What the quiet demo hides from the console still reaches run.log (any handler on the library's logger)."""
    import logging

    from xlingual.cli._console import quiet_console, setup_logging
    from xlingual.demo import explained_by_demo
    from xlingual.embeddings.paths import ALIGNMENT_SUSPECT

    setup_logging(0)
    library = logging.getLogger("xlingual")
    seen: list[str] = []
    run_log = logging.Handler(logging.INFO)
    run_log.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    library.addHandler(run_log)
    try:
        with quiet_console(explained_by_demo):
            logging.getLogger("xlingual.train.engine").info("stage target epoch 0: step 1/150")
            logging.getLogger("xlingual.embeddings.paths").warning("THIS ALIGNMENT LOOKED FAILED", extra={ALIGNMENT_SUSPECT: True})
            logging.getLogger("xlingual.features").warning("an unexplained warning")
        quiet = capsys.readouterr().err
        logging.getLogger("xlingual.train.engine").info("after the demo")
        after = capsys.readouterr().err
    finally:
        library.removeHandler(run_log)
    assert quiet.splitlines() == ["WARNING xlingual.features: an unexplained warning"]
    assert "after the demo" in after
    assert seen == ["stage target epoch 0: step 1/150", "THIS ALIGNMENT LOOKED FAILED", "an unexplained warning", "after the demo"]


def test_transient_bars_leave_no_line():
    from xlingual.progress import progress_bar, transient_bars

    with transient_bars():
        assert progress_bar(total=1).leave is False
        assert progress_bar(total=1, leave=True).leave is False
    assert progress_bar(total=1).leave is True

"""The 2M-NER reference tests catch known wrong models: each fault, planted in a copy of the package, fails them.

Each mutant is one exact textual edit of one source file of a copy of
``xlingual``; the edit must match exactly once, so a refactoring that moves
the code fails this check loudly instead of leaving a mutant that no longer
plants anything. The deterministic (``fixed``) tests of
``test_models_2mner_reference.py`` that should see the fault (the mutant's
``catch``) then run in a fresh interpreter that imports the copy, and must
fail (pytest's exit status 1: tests ran and at least one failed, not a
collection or usage error). A control run of all ``fixed`` tests on an
unchanged copy must pass. Each run costs an interpreter start with torch
and transformers, which is most of the check's time.

The faults are the ones an audit found the earlier tests blind to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import xlingual

REPO = Path(__file__).resolve().parents[1]
REFERENCE_TESTS = Path(__file__).with_name("test_models_2mner_reference.py")


@dataclass(frozen=True)
class Mutant:
    """One planted fault: in ``path`` (inside the package), ``old`` becomes ``new``; ``catch``: the tests expected to fail (``-k``)."""

    name: str
    path: str
    old: str
    new: str
    catch: str


MUTANTS = [
    Mutant("no 1/sqrt(d) scaling", "models/mner2_layers.py",
           "probs = (query @ key.transpose(-1, -2) / math.sqrt(self.head_size)).softmax(dim=-1)",
           "probs = (query @ key.transpose(-1, -2)).softmax(dim=-1)", "vit_block"),
    Mutant("softmax over the words", "models/mner2_layers.py",
           "probs = (query @ key.transpose(-1, -2) / math.sqrt(self.head_size)).softmax(dim=-1)",
           "probs = (query @ key.transpose(-1, -2) / math.sqrt(self.head_size)).softmax(dim=-2)", "vit_block"),
    Mutant("no residual in either block", "models/mner2_layers.py",
           "return self.norm(residual + self.dropout(self.dense(context)))",
           "return self.norm(self.dropout(self.dense(context)))", "block"),
    Mutant("CRF loss summed", "models/mner2.py",
           'crf_loss = self.crf.nll(out.emissions, batch["labels"], batch["word_mask"], reduction="mean")',
           'crf_loss = self.crf.nll(out.emissions, batch["labels"], batch["word_mask"], reduction="sum")', "model_is"),
    Mutant("model temperature 0.07", "models/mner2_config.py",
           "    temperature: float = 0.5\n",
           "    temperature: float = 0.07\n", "model_is"),
    Mutant("NT-Xent default temperature 0.07", "models/contrastive.py",
           "DEFAULT_TEMPERATURE = 0.5\n",
           "DEFAULT_TEMPERATURE = 0.07\n", "nt_xent"),
]

RUNNER = """
import sys
from pathlib import Path
import xlingual
root = Path(sys.argv[1]).resolve()
if Path(xlingual.__file__).resolve().parent != root:
    sys.exit(f"imported {xlingual.__file__}, not the mutated copy under {root}")
import pytest
sys.exit(pytest.main(sys.argv[2:]))
"""


def plant(copy: Path, mutant: Mutant) -> None:
    target = copy / mutant.path
    text = target.read_text(encoding="utf-8")
    count = text.count(mutant.old)
    assert count == 1, f"mutant '{mutant.name}': its target occurs {count} times in xlingual/{mutant.path}; update the mutant to the code"
    target.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")


def run_reference_tests(package: Path, work: Path, select: str = "fixed") -> subprocess.CompletedProcess:
    """The reference tests matching ``select`` (and ``fixed``: no hypothesis search), in an interpreter that imports ``package``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(package.parent), str(REPO / "tests")]))
    args = [str(REFERENCE_TESTS), "-x", "-q", "-k", f"fixed and {select}", "-p", "no:cacheprovider", "--rootdir", str(REPO), "-o", "addopts="]
    return subprocess.run([sys.executable, "-c", RUNNER, str(package), *args], cwd=work, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_reference_tests_fail_on_a_planted_fault(mutant, tmp_path):
    package = tmp_path / "src" / "xlingual"
    shutil.copytree(Path(xlingual.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    plant(package, mutant)
    result = run_reference_tests(package, tmp_path, mutant.catch)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and " failed" in output, f"mutant '{mutant.name}' was not caught (exit {result.returncode}):\n{output[-3000:]}"


@pytest.mark.slow
def test_reference_tests_pass_on_an_unchanged_copy(tmp_path):
    """The control: the same run on an unmutated copy passes, so a mutant's failure is the fault's, not the harness's."""
    package = tmp_path / "src" / "xlingual"
    shutil.copytree(Path(xlingual.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    result = run_reference_tests(package, tmp_path)
    assert result.returncode == 0 and " passed" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]


def test_every_mutant_target_is_in_the_source():
    """Cheap guard, also when the slow check is deselected: each planted edit still finds its code exactly once."""
    package = Path(xlingual.__file__).parent
    for mutant in MUTANTS:
        assert (package / mutant.path).read_text(encoding="utf-8").count(mutant.old) == 1, mutant.name

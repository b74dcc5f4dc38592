"""Every data file the package reads at run time ships in a wheel: it matches a ``package-data`` pattern of pyproject.toml.

An editable install (``make install``) reads the source tree, so a file missing
from ``package-data`` passes every other test and fails only for users who
install the wheel.
"""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xlingual"


def _package_data_patterns() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["tool"]["setuptools"]["package-data"]["xlingual"]


def _ships(relative: PurePosixPath, patterns: list[str]) -> bool:
    # setuptools matches each pattern as a glob relative to the package folder, '*' not crossing '/'.
    return any(relative.match(pattern) and len(relative.parts) == len(PurePosixPath(pattern).parts) for pattern in patterns)


def test_every_data_file_in_the_package_is_listed_in_package_data() -> None:
    patterns = _package_data_patterns()
    data_files = [PurePosixPath(path.relative_to(PACKAGE).as_posix()) for path in PACKAGE.rglob("*")
                  if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts]
    assert len(data_files) >= 10  # the samples, the packaged configs, the language table
    assert [str(path) for path in data_files if not _ships(path, patterns)] == []


def test_the_check_sees_a_file_no_pattern_lists() -> None:
    patterns = _package_data_patterns()
    assert _ships(PurePosixPath("translate/languages.tsv"), patterns)
    assert not _ships(PurePosixPath("translate/other.tsv"), patterns)
    assert not _ships(PurePosixPath("train/packaged_configs/settings/deeper/x.yaml"), patterns)

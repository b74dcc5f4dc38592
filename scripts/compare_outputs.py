"""Compare two output trees of the same job (e.g. ``xl demo`` before and after a refactor) for equality.

Usage: ``python scripts/compare_outputs.py BEFORE AFTER`` -> exit 0 when identical, 1 with a list of differences.

What "identical" means here: the same set of files; model weights (``*.safetensors``) with the same tensor names,
dtypes and values bit for bit; JSON, YAML, text, CoNLL and HTML files equal once the two root folders are written
as ``<root>`` and wall-clock measurements (``seconds``, rates per second, timestamps) and digests of text holding
the root (``run_id``, the sizes and digests a manifest's ``output_files`` lists for files that are compared themselves) are masked. Files that record
the machine or the moment rather than the result (``environment.json``, ``run.log``, SQLite caches, rendered PNGs,
SentencePiece model bytes, whose serialisation is not stable between two identical trainings) are compared by
presence only; this is said in the output, so nothing is silently skipped.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

PRESENCE_ONLY = ("environment.json", "run.log", ".sqlite", ".png", ".spm", "events.out.tfevents")
VOLATILE_KEY = re.compile(r"^(seconds|.*_seconds|elapsed.*|.*_per_s|.*per_second|started|finished|timestamp|created|wall_s)$")
VOLATILE_TEXT = re.compile(r'("(?:[a-z_]*seconds|[a-z_]*_per_s|elapsed[a-z_]*|timestamp|started|finished)"\s*:\s*)[^,}\n]+')


ROOT_DIGEST_KEYS = {"run_id"}
"""Digests over text that holds the root folder (a run's identity hashes its config, data_dir included): masked like the roots."""


MANIFEST_KEY = "output_files"
"""A manifest's list of its set's files with their sizes and digests: the names are compared, the sizes and digests not, because
each listed file is compared itself (with the roots masked), while its size and digest change with the length and text of the root."""


def _mask_json(value, roots: tuple[str, str]):
    if isinstance(value, dict):
        return {k: ("<t>" if VOLATILE_KEY.match(k) else "<root digest>" if k in ROOT_DIGEST_KEYS
                    else dict.fromkeys(v, "<compared as a file>") if k == MANIFEST_KEY and isinstance(v, dict) else _mask_json(v, roots))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v, roots) for v in value]
    if isinstance(value, str):
        return value.replace(roots[0], "<root>").replace(roots[1], "<root>")
    return value


def _text(path: Path, root: str) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").replace(root, "<root>")
    text = VOLATILE_TEXT.sub(r"\1<t>", text)
    return re.sub(r"\d+(\.\d+)? (sentences|posts|images|steps)/s", r"<t> \2/s", text)


def _same_tensors(a: Path, b: Path) -> str | None:
    from safetensors.numpy import load_file

    ta, tb = load_file(str(a)), load_file(str(b))
    if sorted(ta) != sorted(tb):
        return f"tensor names differ: {sorted(set(ta) ^ set(tb))[:5]}"
    for name in ta:
        if ta[name].dtype != tb[name].dtype or ta[name].shape != tb[name].shape or ta[name].tobytes() != tb[name].tobytes():
            return f"tensor {name} differs"
    return None


def compare(before: Path, after: Path) -> tuple[list[str], list[str]]:
    """(differences, files compared by presence only)."""
    files_a = {p.relative_to(before) for p in before.rglob("*") if p.is_file()}
    files_b = {p.relative_to(after) for p in after.rglob("*") if p.is_file()}
    problems = [f"only in {before}: {p}" for p in sorted(files_a - files_b)] + [f"only in {after}: {p}" for p in sorted(files_b - files_a)]
    presence_only: list[str] = []
    roots = (str(before.resolve()), str(after.resolve()))
    for rel in sorted(files_a & files_b):
        a, b = before / rel, after / rel
        name = str(rel)
        if any(name.endswith(s) or s in rel.name for s in PRESENCE_ONLY):
            presence_only.append(name)
            continue
        if rel.suffix == ".safetensors":
            problem = _same_tensors(a, b)
        elif rel.suffix == ".json":
            try:
                same = _mask_json(json.loads(a.read_text(encoding="utf-8")), roots) == _mask_json(json.loads(b.read_text(encoding="utf-8")), roots)
            except json.JSONDecodeError:
                same = _text(a, roots[0]) == _text(b, roots[1])
            problem = None if same else "content differs"
        elif rel.suffix in {".jpg", ".jpeg", ".bin", ".model", ".npy"}:
            problem = None if a.read_bytes() == b.read_bytes() else "bytes differ"
        else:
            problem = None if _text(a, roots[0]) == _text(b, roots[1]) else "content differs"
        if problem:
            problems.append(f"{name}: {problem}")
    return problems, presence_only


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    before, after = Path(argv[0]), Path(argv[1])
    problems, presence_only = compare(before, after)
    total = sum(1 for p in before.rglob("*") if p.is_file())
    print(f"{total} files in {before}; {len(presence_only)} compared by presence only: {', '.join(sorted({Path(p).name for p in presence_only}))}")
    for line in problems:
        print("DIFF", line)
    print("identical" if not problems else f"{len(problems)} differences")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Runs fastText skipgram training in a fresh child process.

fastText 0.9 (``fasttext``/``fasttext-numpy2``) reads memory it has not
initialised while training: in a process whose heap already holds freed
garbage (any long-running Python process: a test suite, a notebook, the
demo) the loss turns NaN and training stops with "Encountered NaN", whatever
the corpus or settings. A new process starts from zeroed pages, so training
there is reliable; it also keeps a crash of the C++ code out of the caller.
The child writes the vectors (and optionally the ``.bin``) and exits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass

import numpy as np

NAN_EXIT_CODE = 3


@dataclass(frozen=True)
class FastTextJob:
    """Everything the child needs: corpus, fastText keyword arguments, where to write."""

    corpus: str
    kwargs: dict
    vec_path: str
    bin_path: str | None = None


def run_job(job: FastTextJob) -> None:
    """Train and write the vectors; called inside the child."""
    import fasttext

    from xlingual.embeddings.vectors import Vectors, save_vectors

    model = fasttext.train_unsupervised(job.corpus, model="skipgram", **job.kwargs)
    words = [w for w in model.get_words() if w != "</s>"]
    dim = job.kwargs["dim"]
    matrix = np.vstack([model.get_word_vector(w) for w in words]) if words else np.zeros((0, dim), np.float32)
    save_vectors(job.vec_path, Vectors(words, matrix.astype(np.float32)))
    if job.bin_path:
        model.save_model(job.bin_path)


def train_in_child(job: FastTextJob) -> None:
    """Run ``job`` in a new Python process; raise ``FloatingPointError`` if fastText reported NaN."""
    proc = subprocess.run(
        # -c rather than -m: the package imports this module, and runpy warns when re-running an imported module
        [sys.executable, "-c", "import sys; from xlingual.embeddings.fasttext_worker import main; sys.exit(main(sys.argv))", json.dumps(asdict(job))],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    if proc.returncode == NAN_EXIT_CODE:
        raise FloatingPointError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "Encountered NaN")
    if proc.returncode != 0:
        raise RuntimeError(f"fastText training failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)


def main(argv: list[str]) -> int:
    """Entry point of the child: ``argv[1]`` is the job as JSON."""
    job = FastTextJob(**json.loads(argv[1]))
    try:
        run_job(job)
    except RuntimeError as err:
        if "NaN" in str(err):
            print(f"fastText: {err}", file=sys.stderr)
            return NAN_EXIT_CODE
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

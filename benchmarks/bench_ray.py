"""``xl translate --ray``: 1 vs 2 Ray workers on the same sentences, and Ray's overhead against one process.

Three runs of the same command on the same N Twitter2015 sentences
(``--sentences``, 2,000 by default), CTranslate2 int8, greedy, the first
placeholder strategy only, one thread per process or worker:

(a) ``xl translate`` in one process;
(b) ``xl translate --ray --workers 1`` (a local Ray runtime started by the command);
(c) ``xl translate --ray --workers 2``.

Each is a fresh ``xl`` process timed from start to exit, so (b) and (c)
include starting and stopping Ray and loading the model in each worker.
Reported: the throughput ratio (b)/(c) (close to 2 on two idle cores) and the
overhead (b)/(a) - 1 (target < 10 %), plus Ray's start and stop alone, and how
many posts' outputs differ from (a): none for a translator whose output for a
text does not depend on the other texts of its batch; CTranslate2 int8 on
random weights (degenerate 60-token outputs) is not such a translator, since
shards batch texts differently. The model is a
full-size random Marian with opus-mt-en-zh's shape, built as
``bench_translate.py`` builds it (``--model full``), or the tiny test Marian
(``--model tiny``: decoding costs almost nothing, so the run measures Ray's
fixed costs). Both are converted to CTranslate2 once, before timing.

On a machine shared with other work the load average is recorded with each
figure; with a load near 2 or above, two workers cannot get two cores.

    .venv/bin/python benchmarks/bench_ray.py --data ../shared/data --sentences 2000
    .venv/bin/python benchmarks/bench_ray.py --sentences 200 --model tiny
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _record import add_results_option, cpu_model, load_average, recorder



def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    return seconds


def differing_posts(one: Path, other: Path) -> int:
    """Posts (lines of the projected and the left-out files) that differ between two output folders."""
    count = 0
    for name in ("train.jsonl", "train.failures.jsonl"):
        a, b = (one / name).read_text().splitlines(), (other / name).read_text().splitlines()
        count += sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="data dir holding twitter2015/train.txt")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--model", choices=("full", "tiny"), default="full", help="full-size random Marian, or the tiny test one")
    parser.add_argument("--shard-size", type=int, default=1024, help="sentences per shard (default: the command's)")
    add_results_option(parser)
    args = parser.parse_args()

    from xlingual.data.formats import read_samples, write_samples
    from xlingual.translate.ct2 import convert_to_ctranslate2

    samples = read_samples(args.data / "twitter2015" / "train.txt")[: args.sentences]
    model_name = "full-size random Marian" if args.model == "full" else "tiny random Marian"
    out = recorder(__file__, args, f"{model_name}, CTranslate2 int8, {len(samples)} Twitter2015 sentences, greedy, numbered strategy, "
                                   f"shards of {args.shard_size}, 1 thread per process/worker")
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    if not os.environ.get("XLINGUAL_BENCH_KEEP"):
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    print(f"work folder: {work}")
    source = work / "train.txt"
    write_samples(source, samples, "twitter")
    if args.model == "full":
        from bench_translate import build_full_size_marian

        marian = build_full_size_marian(work / "marian", [s.text for s in samples[:500]])
    else:
        from xlingual.testing.tiny_mt import build_tiny_marian

        marian = build_tiny_marian(work / "marian", "en", "zh")
    converted = convert_to_ctranslate2(marian, work / "ct2-int8", "int8")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; {len(samples)} sentences, {model_name}; load before {load_average()}", flush=True)

    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    xl = [sys.executable, "-m", "xlingual", "translate", "--src", "en", "--tgt", "zh", "--input", str(source), "--backend", "ctranslate2",
          "--model", str(converted), "--threads", "1", "--beam-size", "1", "--strategies", "numbered", "--json"]
    ray_flags = ["--ray", "--shard-size", str(args.shard_size), "--workers"]
    runs = {"one process": [], "Ray, 1 worker": [*ray_flags, "1"], "Ray, 2 workers": [*ray_flags, "2"]}
    seconds = {}
    for number, (name, extra) in enumerate(runs.items()):
        seconds[name] = timed([*xl, "--output", str(work / f"out{number}"), *extra], env)
        print(f"{name:16s} {seconds[name]:8.1f} s  ({len(samples) / seconds[name]:.1f} sentences/s, load {load_average()})", flush=True)
    startup = timed([sys.executable, "-c", "import ray; ray.init(num_cpus=2, include_dashboard=False, logging_level='ERROR'); ray.shutdown()"], env)
    print(f"Ray start + stop alone {startup:6.1f} s")
    differing = {n: differing_posts(work / "out0", work / f"out{n}") for n in (1, 2)}
    print(f"posts whose output differs from the single process: 1 worker {differing[1]}, 2 workers {differing[2]} of {len(samples)}"
          " (a translation that depends on its batch-mates: see docs/scale.md)")
    single, one, two = seconds["one process"], seconds["Ray, 1 worker"], seconds["Ray, 2 workers"]
    print(f"2 workers vs 1: {one / two:.2f}x the throughput; Ray overhead (1 worker vs one process): {100 * (one / single - 1):+.1f} %")
    out.record("`xl translate --ray --workers 2` vs `--workers 1` (expected close to 2x on 2 idle cores)", two, "s", one / two, "faster", threads=1)
    out.record("`xl translate --ray --workers 1` vs one process: Ray's overhead (target < 10 %)", one, "s", one / single, "the single-process time",
               threads=1)
    out.record("`xl translate --ray --workers 1` less the runtime's start and stop vs one process: Ray's overhead on a running cluster"
               " (`--ray auto` starts nothing)", one - startup, "s", (one - startup) / single, "the single-process time", threads=1)
    out.record("`xl translate` in one process, same sentences", single, "s", threads=1)
    out.record("Ray runtime start and stop alone (part of every local --ray run)", startup, "s", threads=1)
    out.record("posts whose output differs from the single process (2 workers; batch-dependent MT)", differing[2], "posts", threads=1)


if __name__ == "__main__":
    main()

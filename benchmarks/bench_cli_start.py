"""How long ``xl`` takes to start: every command, even ``--help``, pays its import time.

Runs ``xl --help`` and ``xl data --help`` as fresh processes ``--runs`` times
each and reports the median wall time, beside the time of a bare
``python -c pass`` (the interpreter's own floor) and of ``import torch`` (what
every command paid when the CLI imported it). Target: ``xl --help`` under 0.5 s.

    python benchmarks/bench_cli_start.py --runs 10
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from _record import add_results_option, recorder

XL = [sys.executable, "-c", "from xlingual.cli import app; app()"]  # what the `xl` script runs


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="processes started per command (the median is reported)")
    add_results_option(parser)
    args = parser.parse_args()
    out = recorder(__file__, args, f"median of {args.runs} fresh processes per command")
    floor = median_seconds([sys.executable, "-c", "pass"], args.runs)
    torch_import = median_seconds([sys.executable, "-c", "import torch"], args.runs)
    help_root = median_seconds(XL + ["--help"], args.runs)
    help_data = median_seconds(XL + ["data", "--help"], args.runs)
    print(f"python -c pass   {floor:6.3f} s")
    print(f"import torch     {torch_import:6.3f} s")
    print(f"xl --help        {help_root:6.3f} s")
    print(f"xl data --help   {help_data:6.3f} s")
    out.record("`xl --help` start-up, fresh process (target < 0.5 s)", help_root, "s", ratio=torch_import / help_root,
               ratio_of="faster than `import torch` alone, which every command paid before", threads=1)
    out.record("`xl data --help` start-up, fresh process", help_data, "s", threads=1)
    out.record("bare interpreter (`python -c pass`), the floor", floor, "s", threads=1)


if __name__ == "__main__":
    main()

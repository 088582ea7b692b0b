"""Every throughput ratio streamwatch holds itself to, in one run: the four benchmarks, then one table.

Runs, one after the other on this machine, ``bench/producer.py`` (the SDK against a bare
``produce()``), ``bench/core.py`` (the pipeline against ``orjson.loads``), ``bench/worker.py``
(Kafka to ClickHouse against a bare consumer) and ``bench/replay.py`` (a replayed file against a
bare ``orjson`` pass), each measuring its two sides side by side, and prints each one's ratio next
to its goal. Each benchmark's own output follows, for the details (the README quotes them).

    .venv/bin/python bench/ratios.py            # about ten minutes
    .venv/bin/python bench/ratios.py --quick    # a smoke run of the same
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent

#: (benchmark, what it measures, the pattern of its ratio line, the goal, whether a ratio meets it)
RATIOS: list[tuple[str, str, str, str, Callable[[float], bool]]] = [
    (
        "producer.py",
        "SDK log_prediction / bare produce()",
        r"ratio SDK / bare produce\(\): ([0-9.]+)x",
        "<= 2.5x",
        lambda r: r <= 2.5,
    ),
    (
        "core.py",
        "pipeline / orjson.loads, per event",
        r"ratio pipeline / orjson.loads: ([0-9.]+)x",
        "<= 3x",
        lambda r: r <= 3,
    ),
    (
        "worker.py",
        "worker, Kafka to ClickHouse / bare consumer",
        r"worker / bare consumer: ([0-9.]+)%",
        ">= 50%",
        lambda r: r >= 50,
    ),
    (
        "replay.py",
        "replay of a file / bare orjson pass",
        r"goal: replay >= 20% of the bare pass: ([0-9.]+)%",
        ">= 20%",
        lambda r: r >= 20,
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="each benchmark's smoke run")
    args = parser.parse_args()
    outputs: dict[str, str] = {}
    for script, *_ in RATIOS:
        started = time.perf_counter()
        command = [sys.executable, str(HERE / script), *(["--quick"] if args.quick else [])]
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
        if done.returncode != 0:
            sys.exit(f"bench/{script} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        outputs[script] = done.stdout
        print(f"bench/{script}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(f"\n{'path':46}{'ratio':>10}{'goal':>10}  verdict")
    for script, what, pattern, goal, meets in RATIOS:
        found = re.search(pattern, outputs[script])
        if found is None:
            sys.exit(f"bench/{script} printed no ratio line matching {pattern!r}")
        value = float(found.group(1))
        unit = "%" if goal.endswith("%") else "x"
        verdict = "met" if meets(value) else "MISSED"
        print(f"{what:46}{value:>9g}{unit}{goal:>10}  {verdict}")
    for script, *_ in RATIOS:
        print(f"\n--- bench/{script} ---{outputs[script].rstrip()}")


if __name__ == "__main__":
    main()

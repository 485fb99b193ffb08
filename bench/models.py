"""Two models' whole ``catsort --headless --dry-run`` of one folder, interleaved in fresh processes, in one run.

    python bench/models.py FOLDER CARD_A CARD_B [--rounds 3]

Where the photos are small, the model is most of a sort's cost, so this is how issue 17's budget is
checked end to end ("a whole ``--dry-run`` takes <= 0.6x v1's time"): decoding, start-up and the
cascade's gate all included, as a user meets them. Both cards run on this checkout's code; a cascade's
cost depends on what its gate lets through, so give it the kind of folder the budget is about (mostly
non-pets) and say which. Prints each round's wall and CPU seconds and the B / A ratios, median and range.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from throughput import loadavg, sort_dry_run, spread


def dry_run(folder: Path, card: Path) -> tuple[float, float, dict]:
    """(wall, CPU) seconds and the JSON summary of one dry run with ``card`` (the bench's own fresh-process run)."""
    run = sort_dry_run(folder, None, extra=("--model", str(card)))[2]
    return run.wall, run.cpu, json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("a", type=Path, help="the card to compare with (e.g. v1's model.json)")
    parser.add_argument("b", type=Path, help="the card measured")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dry_run(args.folder, args.b)  # warm the optimised-graph cache and the page cache for both
    dry_run(args.folder, args.a)
    walls: dict[str, list[float]] = {"a": [], "b": []}
    cpus: dict[str, list[float]] = {"a": [], "b": []}
    print(f"{args.folder}: load {loadavg():.1f}")
    for i in range(args.rounds):
        for name in ("a", "b") if i % 2 == 0 else ("b", "a"):
            wall, cpu, summary = dry_run(args.folder, getattr(args, name))
            walls[name].append(wall)
            cpus[name].append(cpu)
            print(f"round {i + 1} {name}: {summary['files']} files, {summary['moved']} would move, wall {wall:.2f} s, CPU {cpu:.2f} s")
    ratio_wall = [b / a for a, b in zip(walls["a"], walls["b"], strict=True)]
    ratio_cpu = [b / a for a, b in zip(cpus["a"], cpus["b"], strict=True)]
    print(f"wall b/a {spread(ratio_wall, '.3f')}; CPU b/a {spread(ratio_cpu, '.3f')}; "
          f"median wall a {statistics.median(walls['a']):.2f} s, b {statistics.median(walls['b']):.2f} s")


if __name__ == "__main__":
    main()

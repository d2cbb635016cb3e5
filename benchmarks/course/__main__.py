"""`python -m benchmarks.course [--quick] [--only N ...] [--out DIR] [--no-plots] [--seed S]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import SECTIONS, Config
from .tour import Result, run


def main(argv: list[str] | None = None) -> list[Result]:
    """Parse the command line and run the tour; returns the results (see `tour.run`)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.course",
        description="Every claim of the course's notes, measured on this library.")
    parser.add_argument("--quick", action="store_true", help="smaller runs (3-7 s of CPU)")
    parser.add_argument("--only", nargs="+", type=int, choices=sorted(SECTIONS), metavar="N",
                        help=f"sections to run (of {sorted(SECTIONS)})")
    parser.add_argument("--out", type=Path, default=Path("runs/course"),
                        help="where plots go (default runs/course; needs matplotlib)")
    parser.add_argument("--no-plots", action="store_true", help="write no plots")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = Config(quick=args.quick, out=None if args.no_plots else args.out, seed=args.seed)
    return run(config, args.only)


if __name__ == "__main__":
    main()

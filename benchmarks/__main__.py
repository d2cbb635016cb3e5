"""`python -m benchmarks [--quick] [--only SUITE ...]`: every suite, ratios to NumPy in one run."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import benchmarks


def _suites() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)
                  if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--only", nargs="*", default=None,
                        help=f"suites to run (of {', '.join(_suites())})")
    args = parser.parse_args(argv)
    names = _suites()
    if args.only:
        unknown = sorted({f"bench_{n}" if not n.startswith("bench_") else n
                          for n in args.only} - set(names))
        if unknown:
            parser.error(f"unknown suites {unknown}; available: {names}")
        names = [n for n in names if n in args.only or n.removeprefix("bench_") in args.only]
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        for row in module.run(quick=args.quick):
            print(row.format(), flush=True)


if __name__ == "__main__":
    main()

"""``python -m bench [--quick] [--only NAME ...] [--repeats N] [--sample-ms MS] [--out PATH]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import DEFAULT_OUT, SCENARIOS, run, select
from bench._harness import Config


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the benchmarks, print the tables; 0 even when targets are missed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="buttress and its peers, side by side."
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts, 1 repeat (smoke run)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run the scenarios whose name contains NAME (repeatable), e.g. breaker.open",
    )
    defaults = Config()
    parser.add_argument(
        "--repeats",
        type=int,
        default=defaults.repeats,
        help=f"interleaved rounds ({defaults.repeats})",
    )
    parser.add_argument(
        "--sample-ms",
        type=float,
        default=defaults.sample_ms,
        help=f"target ms per sample ({defaults.sample_ms:g})",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON ({DEFAULT_OUT})")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:<24} {s.title}")
        return 0
    if args.repeats < 1 or args.sample_ms <= 0:
        parser.error("--repeats must be >= 1 and --sample-ms > 0")
    config = Config(repeats=args.repeats, sample_ms=args.sample_ms, quick=args.quick)
    if not select(args.only):
        parser.error(f"no scenario matches {args.only!r}; see --list")
    run(only=args.only, config=config, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

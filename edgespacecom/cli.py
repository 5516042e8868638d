"""The ``edgespacecom`` command line.

    edgespacecom run SCENARIO.yaml [--out DIR] [--set dotted.key=value ...] [--workers N]
    edgespacecom validate SCENARIO.yaml [--set ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ScenarioError, load_scenario, to_yaml


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgespacecom", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def scenario_args(p):
        p.add_argument("scenario", type=Path, help="scenario YAML file")
        p.add_argument(
            "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
            help="override a key (dotted path; value parsed as YAML), repeatable",
        )

    run = sub.add_parser("run", help="run a scenario and write its tables, plots and summary.json")
    scenario_args(run)
    run.add_argument("--out", type=Path, default=None, help="output folder (default results/<name>/)")
    run.add_argument("--workers", type=int, default=None, help="worker processes (sets compute.workers)")

    val = sub.add_parser("validate", help="check a scenario and print the resolved config")
    scenario_args(val)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = list(args.overrides)
    if getattr(args, "workers", None) is not None:
        overrides.append(f"compute.workers={args.workers}")
    try:
        scenario = load_scenario(args.scenario, overrides)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "validate":
        print(to_yaml(scenario), end="")
        return 0

    from .runner import run_scenario

    out_dir = args.out if args.out is not None else Path("results") / scenario.name
    try:
        summary, table = run_scenario(scenario, out_dir)
    except (ScenarioError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table)
    print(f"results in {out_dir}/ (summary.json, tables, plots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

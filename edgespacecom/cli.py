"""The ``edgespacecom`` command line.

    edgespacecom run SCENARIO.yaml [--out DIR] [--set dotted.key=value ...] [--workers N]
                                   [--executor local|dask] [--scheduler ADDRESS]
    edgespacecom validate SCENARIO.yaml [--set ...]
    edgespacecom data list|fetch|verify [NAMES ...] [--mirror DIR]
    edgespacecom scenarios list | copy NAME [DIR]
    edgespacecom export tle|isl SCENARIO.yaml --out PATH [--set ...] [--format parquet|csv]
    edgespacecom view RUN_DIR | SCENARIO.yaml [--at TIME] [--frames N] [--out view.html] [--gif out.gif]
    edgespacecom train --arch bmshj2018-hyperprior --lambda 0.0067 [--steps N] [--out DIR]

Every error is one line on stderr and exit status 2; Ctrl-C is one line and 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .config import ScenarioError, apply_overrides, load_raw, to_yaml, validate_scenario
from .kinds import commands
from .progress import configure_logging, quiet_library_warnings

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgespacecom", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"edgespacecom {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more messages (debug)")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="only warnings and errors")
    parser.add_argument("--allow-unverified-weights", action="store_true",
                        help="load codec checkpoints whose tensors carry no checksum (refused by default)")
    sub = parser.add_subparsers(dest="command", required=True)

    def scenario_args(p):
        p.add_argument("scenario", type=Path, help="scenario YAML file")
        p.add_argument(
            "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
            help="override a key (dotted path; value parsed as YAML; paths relative to the scenario's folder), "
                 "repeatable",
        )

    run = sub.add_parser("run", help="run a scenario and write its tables, plots and summary.json")
    scenario_args(run)
    run.add_argument("--out", type=Path, default=None, help="output folder (default results/<name>/)")
    run.add_argument("--allow-unverified-weights", action="store_true", default=argparse.SUPPRESS,
                     help="load codec checkpoints whose tensors carry no checksum (refused by default)")
    run.add_argument("--workers", type=int, default=None,
                     help="worker processes: sweep points in parallel, or compute.workers for one run")
    run.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="where sweep points, or one sync run's time chunks, run")
    run.add_argument("--scheduler", default=None,
                     help="Dask scheduler address, tcp://HOST:PORT (default: a local Dask cluster of --workers)")

    val = sub.add_parser("validate", help="check a scenario and the files it names; print the resolved config")
    scenario_args(val)

    data = sub.add_parser("data", help="the data registry: list, fetch or verify data files by name")
    data.add_argument("action", choices=("list", "fetch", "verify"))
    data.add_argument("names", nargs="*", help="names or globs (eo:rgb/test/*.tif); default: every file")
    data.add_argument("--mirror", type=Path, default=None,
                      help="fill the cache from a local copy with the same layout (default $EDGESPACECOM_DATA_MIRROR)")

    ex = sub.add_parser("export", help="a scenario's constellation as TLEs, or its ISLs per time step as edge lists")
    ex.add_argument("what", choices=("tle", "isl"))
    scenario_args(ex)
    ex.add_argument("--out", type=Path, required=True, help="tle: the file to write; isl: the folder")
    ex.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="isl: the edge table's format")

    vw = sub.add_parser("view", help="an interactive globe of a run (or of a scenario at one instant) as one "
                                     "offline view.html; --gif for an animation")
    vw.add_argument("source", type=Path, help="a run's folder (its config.resolved.yaml and tables) or a scenario")
    vw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a scenario key (scenario files only), repeatable")
    vw.add_argument("--at", default=None, help="one instant (ISO 8601 UTC, e.g. 2026-01-01T00:30:00Z) instead of "
                                               "frames over the window")
    vw.add_argument("--frames", type=int, default=None, help="instants over the window (default 36)")
    vw.add_argument("--out", type=Path, default=None,
                    help="the page to write (default: RUN_DIR/view.html, or view.html beside the scenario)")
    vw.add_argument("--gif", type=Path, default=None, help="also write an animation of the frames (matplotlib)")

    sc = sub.add_parser("scenarios", help="the scenarios shipped with the package")
    sc.add_argument("action", choices=("list", "copy"))
    sc.add_argument("name", nargs="?", help="copy: the scenario's name (quickstart, paper_table_a1, ...)")
    sc.add_argument("dest", nargs="?", type=Path, default=Path("."), help="copy: destination folder (default .)")

    for command in commands().values():  # subcommands of the layers above the core (train)
        command.arguments(sub.add_parser(command.name, help=command.help))
    return parser


def _data(args) -> int:
    from .datasets import mirror_from_env, registry

    reg = registry()
    entries = reg.select(args.names)
    if args.action == "list":
        for e in entries:
            print(f"{e.name}\t{e.size / 1e6:7.2f} MB\t{reg.status(e)}\t{e.licence}")
        print(f"# {len(entries)} files; cache {reg.cache_dir}", file=sys.stderr)
        return 0
    if args.action == "verify":
        bad = [(e, s) for e, s in reg.verify(args.names) if s not in ("vendored", "cached")]
        for e, status in bad:
            print(f"{e.name}: {status}")
        print(f"{len(entries) - len(bad)} of {len(entries)} files present and intact")
        return 0 if not bad else 1
    mirror = args.mirror or mirror_from_env()
    if mirror is not None and not Path(mirror).is_dir():
        raise FileNotFoundError(f"--mirror: {mirror} is not a folder")
    from .progress import progress

    for e in progress(entries, desc="data fetch", unit="file"):
        reg.fetch(e, mirror=mirror)
    print(f"{len(entries)} files present and verified in {reg.cache_dir} (or shipped with the package)")
    return 0


def _scenarios(args) -> int:
    from .scenarios import copy_scenario, shipped_scenarios

    if args.action == "list":
        for name, path in shipped_scenarios().items():
            raw = load_raw(path)
            comments = [line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#")]
            summary = (str(raw.get("description") or "").strip().splitlines() or comments or [""])[0]
            print(f"{name:24s} {raw.get('kind', '?'):14s} {summary[:80]}")
        return 0
    if not args.name:
        raise ScenarioError("scenarios copy: give a scenario name (see `edgespacecom scenarios list`)")
    print(f"copied to {copy_scenario(args.name, args.dest)}")
    return 0


def _export(args) -> int:
    from .export import write_isl, write_tle

    raw = apply_overrides(load_raw(args.scenario), list(args.overrides))
    if isinstance(raw, dict) and raw.get("sweep") is not None:
        raise ScenarioError(f"{args.scenario}: export takes one scenario, not a sweep")
    scenario = validate_scenario(raw, source=str(args.scenario), base_dir=args.scenario.resolve().parent)
    needed = ("constellation", "time") if args.what == "tle" else ("constellation", "time", "isl", "link", "network")
    missing = [k for k in needed if not hasattr(scenario, k)]
    if missing:
        raise ScenarioError(f"{args.scenario}: a {scenario.kind} scenario has no {', '.join(missing)} to export")
    if args.what == "tle":
        path = write_tle(scenario, args.out)
        print(f"{path}: the constellation of {scenario.name} as TLEs (epoch {scenario.time.start:%Y-%m-%dT%H:%M:%SZ})")
        return 0
    info = write_isl(scenario, args.out, args.format)
    print(f"{args.out}/: {info['edges']} links over {info['samples']} samples of {info['satellites']} satellites "
          f"({', '.join(Path(f).name for f in info['files'])})")
    return 0


def _view(args) -> int:
    import datetime as dt

    from .view import DEFAULT_FRAMES, view_data, write_gif, write_view

    source = args.source
    run_dir = None
    if source.is_dir():
        run_dir, source = source, source / "config.resolved.yaml"
        if not source.is_file():
            raise ScenarioError(f"{run_dir}: not a run's folder (no config.resolved.yaml)")
        if args.overrides:
            raise ScenarioError("--set: a run's folder is viewed as it was run; --set is for scenario files")
    elif not source.is_file():
        raise FileNotFoundError(2, "no such run folder or scenario", str(source))
    raw = apply_overrides(load_raw(source), list(args.overrides))
    if isinstance(raw, dict) and raw.get("sweep") is not None:
        raise ScenarioError(f"{source}: a sweep has one view per point; view a point's folder (OUT/points/ID)")
    scenario = validate_scenario(raw, source=str(source), base_dir=source.resolve().parent)
    if not hasattr(scenario, "constellation"):
        raise ScenarioError(f"{source}: a {scenario.kind} scenario has no constellation to view")
    frames = DEFAULT_FRAMES if args.frames is None else args.frames
    if frames < 1:
        raise ScenarioError("--frames: give at least 1")
    at = None
    if args.at is not None:
        try:
            at = dt.datetime.fromisoformat(args.at.replace("Z", "+00:00"))
        except ValueError:
            raise ScenarioError(f"--at: {args.at!r} is not an ISO 8601 time (2026-01-01T00:30:00Z)") from None
        at = at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)
    data = view_data(scenario, run_dir, at, frames)
    out = args.out or ((run_dir or source.parent) / "view.html")
    write_view(data, out)
    print(f"{out}: {len(data.frames)} frame(s) of {scenario.name} ({out.stat().st_size / 1e6:.1f} MB, opens offline)")
    if args.gif is not None:
        write_gif(data, args.gif)
        print(f"{args.gif}: animation of {len(data.frames)} frame(s)")
    return 0


def _scenario_command(args) -> int:
    from .runner import scenario_inputs

    raw = apply_overrides(load_raw(args.scenario), list(args.overrides))
    base_dir = args.scenario.resolve().parent
    is_sweep = isinstance(raw, dict) and raw.get("sweep") is not None
    if not is_sweep and getattr(args, "workers", None) is not None:
        raw = apply_overrides(raw, [f"compute.workers={args.workers}"])
    executor = getattr(args, "executor", "local")
    if not is_sweep and (executor != "local" or getattr(args, "scheduler", None)):
        # one run: its time chunks go to the executor (sync scenarios; other kinds refuse it below)
        raw = apply_overrides(raw, [f"compute.executor={executor}"]
                              + ([f"compute.scheduler={args.scheduler}"] if args.scheduler else []))
    scenario = validate_scenario(raw, source=str(args.scenario), base_dir=base_dir)
    if not is_sweep and scenario.kind != "sync" and getattr(getattr(scenario, "compute", None), "executor", "local") != "local":
        raise ValueError(f"compute.executor: {scenario.kind} scenarios run in this process; "
                         "only sync scenarios run their time chunks on Dask")
    points = []
    if is_sweep:
        from .sweep import expand

        points = expand(raw, str(args.scenario), base_dir)  # every point validated before any run
        for p in points:
            p["inputs"] = scenario_inputs(p["scenario"])
    else:
        inputs = scenario_inputs(scenario)  # every file it names exists (and data is fetched) before any work
    if args.command == "validate":
        print(to_yaml(scenario), end="")
        if is_sweep:
            print(f"# sweep: {len(points)} points, all valid")
        return 0

    out_dir = args.out if args.out is not None else Path("results") / scenario.name
    if is_sweep:
        from .sweep import run_sweep

        summary, table = run_sweep(raw, out_dir, points=points, workers=args.workers or 1, executor=args.executor,
                                   scheduler=args.scheduler, source=str(args.scenario), base_dir=base_dir)
    else:
        from .runner import run_scenario

        summary, table = run_scenario(scenario, out_dir, inputs=inputs)
    print(table)
    print(f"results in {out_dir}/ (summary.json, tables, plots)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.verbose - args.quiet)
    if args.allow_unverified_weights:  # read by the codec layer when it loads a checkpoint (and by workers)
        os.environ["EDGESPACECOM_ALLOW_UNVERIFIED_WEIGHTS"] = "1"
    quiet_library_warnings()
    try:
        plugin = commands().get(args.command)
        if plugin is not None:
            return plugin.load()(args)
        if args.command == "data":
            return _data(args)
        if args.command == "scenarios":
            return _scenarios(args)
        if args.command == "export":
            return _export(args)
        if args.command == "view":
            return _view(args)
        return _scenario_command(args)
    except KeyboardInterrupt:
        print("interrupted (no partial summary.json is left behind)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as exc:  # ScenarioError, DataError, CodecError are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # unwritable output or cache, full disk, missing file, ...
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

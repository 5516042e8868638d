"""The ``edgespacecom`` command line.

    edgespacecom run SCENARIO.yaml [--out DIR] [--set dotted.key=value ...] [--workers N]
                                   [--executor local|dask] [--scheduler ADDRESS]
    edgespacecom validate SCENARIO.yaml [--set ...]
    edgespacecom train --arch bmshj2018-hyperprior --lambda 0.0067 [--steps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ScenarioError, apply_overrides, load_raw, to_yaml, validate_scenario


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
    run.add_argument("--workers", type=int, default=None,
                     help="worker processes: sweep points in parallel, or compute.workers for one run")
    run.add_argument("--executor", choices=("local", "dask"), default="local", help="where sweep points run")
    run.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a local Dask cluster)")

    val = sub.add_parser("validate", help="check a scenario and print the resolved config")
    scenario_args(val)

    tr = sub.add_parser("train", help="rate-distortion training of a CompressAI codec on EO crops (resumable)")
    tr.add_argument("--arch", required=True, help="CompressAI architecture, e.g. bmshj2018-hyperprior")
    tr.add_argument("--lambda", dest="lmbda", type=float, required=True, help="λ of λ·255²·MSE + bpp")
    tr.add_argument("--steps", type=int, default=20000)
    tr.add_argument("--batch", type=int, default=8)
    tr.add_argument("--crop", type=int, default=256, help="crop size [px], a multiple of 64")
    tr.add_argument("--lr", type=float, default=1e-4)
    tr.add_argument("--quality", type=int, default=3, help="CompressAI quality level giving (N, M)")
    tr.add_argument("--channels", type=int, nargs=2, metavar=("N", "M"), default=None,
                    help="hidden and latent widths instead of the quality level's (e.g. 128 192)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--data", nargs="+", default=None, help="training scenes (paths or globs); default: the EO train split")
    tr.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    tr.add_argument("--checkpoint-every", type=int, default=200)
    tr.add_argument("--out", type=Path, default=None, help="run folder (resume state); default runs/<arch>_lambda<λ>")
    tr.add_argument("--export", type=Path, default=None, help="fp16 checkpoint path; default the shipped weights path")
    tr.add_argument("--downscale", type=float, default=1.0, metavar="F",
                    help="take crops from regions up to F times larger, resampled to --crop (removes source JPEG artefacts)")
    tr.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: transforms in bfloat16 autocast (faster on CPUs with AVX-512 BF16); entropy models stay fp32")
    tr.add_argument("--device", default="auto",
                    help="auto (a CUDA GPU if torch sees one, else the CPU), cpu, cuda or cuda:I")
    tr.add_argument("--init", type=Path, default=None,
                    help="warm start a new run from a checkpoint or run state (another λ or a related architecture)")
    return parser


def _train(args) -> int:
    from dlrc_agents.codecs import lambda_tag
    from dlrc_agents.train import train

    out = args.out or Path("runs") / f"{args.arch}_lambda{lambda_tag(args.lmbda)}"
    try:
        path = train(args.arch, args.lmbda, out, steps=args.steps, batch_size=args.batch, crop=args.crop, lr=args.lr,
                     quality=args.quality, channels=args.channels, seed=args.seed, data=args.data, threads=args.threads,
                     checkpoint_every=args.checkpoint_every, export=args.export, init=args.init,
                     max_downscale=args.downscale, precision=args.precision, device=args.device)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"checkpoint written to {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "train":
        return _train(args)
    overrides = list(args.overrides)
    try:
        raw = apply_overrides(load_raw(args.scenario), overrides)
        is_sweep = isinstance(raw, dict) and raw.get("sweep") is not None
        if not is_sweep and getattr(args, "workers", None) is not None:
            raw = apply_overrides(raw, [f"compute.workers={args.workers}"])
        scenario = validate_scenario(raw, source=str(args.scenario))
        if is_sweep:
            from .sweep import expand

            points = expand(raw, str(args.scenario))  # every point validated before any run
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "validate":
        print(to_yaml(scenario), end="")
        if is_sweep:
            print(f"# sweep: {len(points)} points, all valid")
        return 0

    out_dir = args.out if args.out is not None else Path("results") / scenario.name
    try:
        if is_sweep:
            from .sweep import run_sweep

            summary, table = run_sweep(raw, out_dir, points=points, workers=args.workers or 1,
                                       executor=args.executor, scheduler=args.scheduler, source=str(args.scenario))
        else:
            from .runner import run_scenario

            summary, table = run_scenario(scenario, out_dir)
    except (ScenarioError, ValueError, FileNotFoundError) as exc:  # CodecError, DataError are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table)
    print(f"results in {out_dir}/ (summary.json, tables, plots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The DLRC scenario kinds, registered with the simulator core (:mod:`edgespacecom.kinds`).

Named in this distribution's ``edgespacecom.kinds`` entry point, so the core finds them
without importing this package. Importing this module imports neither torch nor CompressAI:
runners are named and loaded when a scenario runs.
"""

from __future__ import annotations

import functools
from pathlib import Path

from edgespacecom.kinds import Command, ScenarioKind, register_command, register_kind

from dlrc_agents.studies.config import (CodecRDScenario, DLRCAblationScenario, DownstreamScenario, MultiviewScenario, RDScenario)
from dlrc_agents.mission.config import MissionScenario


#: Checkpoints of each distinct codec section seen in this process (a sweep's points mostly share
#: theirs), by the section's JSON; a missing file raises and is not remembered.
_CODEC_FILES: dict[str, dict[str, Path]] = {}


def _codec_files(codec_cfg) -> dict[str, Path]:
    from dlrc_agents.codecs.files import checkpoint_files  # torch-free

    key = codec_cfg.model_dump_json()
    if key not in _CODEC_FILES:
        _CODEC_FILES[key] = checkpoint_files(codec_cfg)
    return dict(_CODEC_FILES[key])


def _scenes(scenario) -> dict[str, Path]:
    return dict(_scene_files(tuple(scenario.data.scenes)))


@functools.lru_cache(maxsize=256)
def _scene_files(patterns: tuple) -> tuple:
    """The scenes of a data section, once per distinct list in a process (as :func:`_codec_files_of`)."""
    from dlrc_agents.common.data import scene_names

    return tuple(scene_names(list(patterns)).items())


def codec_scenario_inputs(scenario) -> dict[str, Path]:
    """Scenes and weights of an rd, dlrc_ablation or mission scenario."""
    inputs = _scenes(scenario)
    inputs.update(_codec_files(scenario.codec))
    if getattr(scenario, "constellation", None) is not None and scenario.constellation.tle_file is not None:
        from edgespacecom.sync_kind import sync_inputs

        inputs.update(sync_inputs(scenario))
    return inputs


def codec_rd_inputs(scenario) -> dict[str, Path]:
    from dlrc_agents.common.data import scene_names

    inputs = _scenes(scenario)
    for band_set in scenario.band_sets:
        inputs.update(scene_names(band_set.files))
    for model in scenario.models:
        inputs.update(_codec_files(model))
    return inputs


register_kind(ScenarioKind(
    name="rd", schema=RDScenario, runner="dlrc_agents.studies.rd:run_rd", formatter="dlrc_agents.studies.rd:format_rd_summary",
    inputs=codec_scenario_inputs, sweep_y=("bpp_reduction",),
    description="R–D of a codec with and without DLRC on overlapping patches (Figures 6, 7)"))
register_kind(ScenarioKind(
    name="codec_rd", schema=CodecRDScenario, runner="dlrc_agents.studies.codec_rd:run_codec_rd",
    formatter="dlrc_agents.studies.codec_rd:format_codec_rd_summary", inputs=codec_rd_inputs, sweep_y=("psnr",),
    description="learned codecs against JPEG and JPEG 2000 on whole scenes and N-band data"))


def downstream_inputs(scenario) -> dict[str, Path]:
    from dlrc_agents.common.data import scene_names, task_input_files

    inputs = {}
    for model in scenario.models:
        inputs.update(_codec_files(model))
    for task in scenario.index_tasks:
        inputs.update(scene_names(task.band_set.files))
        inputs.update(scene_names([task.label]))
    for task in scenario.segmentation_tasks:
        inputs.update(task_input_files(task))
    return inputs


register_kind(ScenarioKind(
    name="downstream", schema=DownstreamScenario, runner="dlrc_agents.studies.downstream:run_downstream",
    formatter="dlrc_agents.studies.downstream:format_downstream_summary", inputs=downstream_inputs, sweep_y=("f1_pos",),
    description="products of decoded bands against labels: index thresholds (NDWI water) and U-Nets "
                "trained on decoded data (clouds, water, buildings), per codec and rate; joint training"))
register_kind(ScenarioKind(
    name="dlrc_ablation", schema=DLRCAblationScenario, runner="dlrc_agents.studies.ablation:run_ablation",
    formatter="dlrc_agents.studies.ablation:format_ablation_summary", inputs=codec_scenario_inputs,
    sweep_y=("bpp_reduction",), description="DLRC against k and the representative strategy (Figure 12)"))
register_kind(ScenarioKind(
    name="mission", schema=MissionScenario, runner="dlrc_agents.mission.run:run_mission",
    formatter="dlrc_agents.mission.summary:format_mission_summary", inputs=codec_scenario_inputs,
    sweep_y=("g_down_analytic", "g_down_analytic_paper", "g_down_simulated"),
    sweep_figures="dlrc_agents.mission.summary:sweep_figures",
    description="SimPy agents, real DLRC, routed signature flows, ground segment, G_down"))


def joint_train_command(args, out: Path) -> int:
    from dlrc_agents.studies.segmentation import joint_command

    scenario, sep, task = args.joint_task.rpartition(":")
    if not sep or not scenario or not task:
        raise ValueError("--joint-task: expected SCENARIO.yaml:TASK")
    if args.gamma < 0:
        raise ValueError("--gamma: must be >= 0 (0: the separate-training control)")
    if args.freeze_codec and args.gamma != 0:
        raise ValueError("--freeze-codec: the frozen-codec control takes --gamma 0")
    summary = joint_command(Path(scenario), task, args.gamma, args.steps, out, architecture=args.arch,
                            lmbda=args.lmbda, init=args.init, seed=args.seed, codec_lr=args.lr,
                            freeze_codec=args.freeze_codec)
    s, j = summary["standalone"], summary["joint"]
    print(f"{task}: standalone {s['bpp']:.4f} bpp, F1+ {s['f1_pos']:.3f}; joint (γ={args.gamma:g}) "
          f"{j['bpp']:.4f} bpp, F1+ {j['f1_pos']:.3f}; written to {out}")
    return 0


def train_arguments(parser) -> None:
    """Options of ``edgespacecom train``."""
    parser.add_argument("--arch", required=True, help="CompressAI architecture, e.g. bmshj2018-hyperprior")
    parser.add_argument("--lambda", dest="lmbda", type=float, default=None,
                        help="λ of λ·255²·MSE + bpp (required, except for a variable-rate --arch)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=None,
                        help="variable-rate --arch (bmshj2018-hyperprior-vr): the λ of its levels, ascending "
                             "(default 0.0067 0.013 0.025 0.0483)")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256, help="crop size [px], a multiple of 64")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--quality", type=int, default=3, help="CompressAI quality level giving (N, M)")
    parser.add_argument("--channels", type=int, nargs=2, metavar=("N", "M"), default=None,
                    help="hidden and latent widths instead of the quality level's (e.g. 128 192)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", nargs="+", default=None,
                    help="training scenes (registry names, paths or globs); default: the EO train split")
    parser.add_argument("--val", nargs="+", default=None,
                    help="validation scenes (model selection); default: the EO validation split (NAIP 2009)")
    parser.add_argument("--val-every", type=int, default=None,
                    help="evaluate on the validation split every N steps (default: every checkpoint)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="run folder (resume state); default runs/<arch>_lambda<λ>")
    parser.add_argument("--export", type=Path, default=None,
                    help="checkpoint path; default $EDGESPACECOM_WEIGHTS/<arch>_lambda<λ>.pt (never the package)")
    parser.add_argument("--downscale", type=float, default=1.0, metavar="F",
                    help="take crops from regions up to F times larger, resampled to --crop (removes source JPEG artefacts)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: transforms in bfloat16 autocast (faster on CPUs with AVX-512 BF16); entropy models stay fp32")
    parser.add_argument("--device", default="auto",
                    help="auto (a CUDA GPU if torch sees one, else the CPU), cpu, cuda or cuda:I")
    parser.add_argument("--band-set", dest="band_sets", nargs="+", default=None, metavar="SPEC",
                        help="train an N-band model on raw band sets: PATTERN[,PATTERN][@FIRST:END] (rows), "
                             "e.g. 'eo:segmentation/sentinel2_oncloudn_cloud/chip_1/B0*.tif'")
    parser.add_argument("--val-band-set", dest="val_band_sets", nargs="+", default=None, metavar="SPEC",
                        help="the N-band model's validation split (same form as --band-set)")
    parser.add_argument("--joint-task", default=None, metavar="SCENARIO.yaml:TASK",
                        help="joint codec + U-Net training (the seed's Equation 1) on a downstream scenario's "
                             "segmentation task, from the --init checkpoint (or the --arch/--lambda band model)")
    parser.add_argument("--gamma", type=float, default=0.1, help="--joint-task: γ, the segmentation loss's weight")
    parser.add_argument("--freeze-codec", action="store_true",
                        help="--joint-task with --gamma 0: the frozen-codec control (only the U-Net trains)")
    parser.add_argument("--init", type=Path, default=None,
                    help="warm start a new run from a checkpoint or run state (another λ or a related architecture)")
    parser.add_argument("--sample-range", type=float, default=None, metavar="MAX",
                        help="with --band-set: normalise every band by [0, MAX], what the sensor or product can "
                             "return (Sentinel-2 L1C/L2A: 32767, 15-bit; an 11-bit pan band: 2047), instead of the "
                             "training split's 0.1/99.9 percentiles (which clip brighter test data)")
    parser.add_argument("--adapter", action="store_true",
                        help="with --band-set and --init: train a band adapter on the frozen --init model (only the "
                             "first and last layers and the hyper-latent prior learn; the checkpoint stores those)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop this call after so many minutes of training: validate, save the state (run again "
                             "to continue) and export the validation's choice so far")
    parser.add_argument("--ema", type=float, default=None, metavar="DECAY",
                        help="validate, select and export an exponential moving average of the weights with this "
                             "decay (e.g. 0.999: about the last 1000 steps)")
    parser.add_argument("--storage", choices=("fp16", "int8"), default="fp16",
                        help="how the exported checkpoint stores its parameters (int8: 8-bit codes with per-channel "
                             "scales, as shipped)")


def train_command(args) -> int:
    from dlrc_agents.codecs.files import VARIABLE_RATE_ARCHITECTURES
    from dlrc_agents.codecs.registry import lambda_tag
    from dlrc_agents.codecs.train import train

    variable_rate = args.arch in VARIABLE_RATE_ARCHITECTURES
    if args.lmbda is None and not variable_rate and not args.joint_task:
        raise ValueError(f"--lambda: required for {args.arch} (a fixed-λ architecture)")
    out = args.out or Path("runs") / (args.arch if variable_rate or args.lmbda is None
                                      else f"{args.arch}_lambda{lambda_tag(args.lmbda)}")
    if args.joint_task:
        return joint_train_command(args, out)
    path = train(args.arch, args.lmbda, out, steps=args.steps, batch_size=args.batch, crop=args.crop, lr=args.lr,
                 quality=args.quality, channels=args.channels, seed=args.seed, data=args.data, val=args.val,
                 val_every=args.val_every, threads=args.threads, checkpoint_every=args.checkpoint_every,
                 export=args.export, init=args.init, max_downscale=args.downscale, precision=args.precision,
                 device=args.device, band_sets=args.band_sets, val_band_sets=args.val_band_sets,
                 adapter=args.adapter, storage=args.storage, lambdas=args.lambdas, sample_range=args.sample_range,
                 ema=args.ema, max_wall_s=None if args.max_minutes is None else 60 * args.max_minutes)
    print(f"checkpoint written to {path}")
    return 0


register_command(Command(name="train", help="rate-distortion training of a CompressAI codec on EO crops (resumable)",
                         arguments=train_arguments, handler="dlrc_agents.kinds:train_command"))
def figure_a2_arguments(parser) -> None:
    """Options of ``edgespacecom figure-a2``."""
    parser.add_argument("paper", type=Path, help="sweep folder of the paper's model (results/paper_gdown)")
    parser.add_argument("realistic", type=Path, help="sweep folder of the realistic model (results/geometric_gdown)")
    parser.add_argument("--out", type=Path, default=Path("results/figure_a2_twice.png"), help="figure to write")


register_command(Command(name="figure-a2", help="Figure A2 twice: the paper's model of G_down next to the realistic "
                                                 "one, from two mission sweeps",
                         arguments=figure_a2_arguments, handler="dlrc_agents.mission.compare:compare_command"))


def multiview_inputs(scenario) -> dict[str, Path]:
    from dlrc_agents.common.data import scene_names

    inputs = _codec_files(scenario.codec)
    names = (scene_names(scenario.data.scenes) if scenario.data.scenes
             else {k: v for s in scenario.data.sets for k, v in scene_names(s.scenes + ([s.dem] if s.dem else [])).items()})
    for name, path in names.items():
        inputs[name] = path
        geom = Path(path).with_suffix(".geom")  # the view's RPC, when not in its tags
        if geom.is_file():
            inputs[name.rsplit(".", 1)[0] + ".geom"] = geom
    return inputs


register_kind(ScenarioKind(
    name="multiview", schema=MultiviewScenario, runner="dlrc_agents.studies.multiview:run_multiview",
    formatter="dlrc_agents.studies.multiview:format_multiview_summary", inputs=multiview_inputs, sweep_y=("bpp_reduction",),
    description="DLRC on real simultaneous multi-view captures (Pléiades), orthorectified from their RPCs"))

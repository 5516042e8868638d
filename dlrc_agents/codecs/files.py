"""Where codec checkpoints live and what they are called: the shipped weights, the locally trained
ones, their portable names. Imports neither torch nor CompressAI, so that checking a scenario's
files (and a large sweep's) stays fast; :mod:`.codecs` loads them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgespacecom.cache import user_cache

from dlrc_agents.common.config import VARIABLE_RATE_ARCHITECTURES  # one checkpoint for every λ

WEIGHTS_DIR = Path(str(resources.files("dlrc_agents.codecs") / "weights"))
#: Architectures whose RGB weights ship in ``dlrc_agents/codecs/weights/`` (:data:`dlrc_agents.codecs.ARCHITECTURES`
#: says the same per architecture; a test keeps the two in step).
SHIPPED_ARCHITECTURES = ("bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "elic2022-official",
                         "bmshj2018-hyperprior-vr")
#: How to re-train the shipped RGB models: the hyperprior ladder, and the context models.
TRAIN_SHIPPED = {"bmshj2018-hyperprior": "make models", "mbt2018-mean": "make models",
                 "mbt2018": "make models-context", "cheng2020-anchor": "make models-context",
                 "elic2022-official": "make models-context", "bmshj2018-hyperprior-vr": "make models-variable-rate"}
#: How to re-train the shipped N-band models (band adapters, and the 4-band Cheng 2020 GMM).
TRAIN_MULTISPECTRAL = "make models-multispectral"


class CodecError(ValueError):
    """A codec or checkpoint that cannot be used; the message names it."""


def missing_weights(architecture: str, lmbda: float, bands: int = 3) -> CodecError:
    """The error for weights that are neither shipped nor trained locally, saying how to make them."""
    where = (f"neither shipped ({shipped_checkpoint(architecture, lmbda, bands)}) nor trained locally "
             f"({local_checkpoint(architecture, lmbda, bands)})")
    if bands != 3:
        return CodecError(f"no weights for the {bands}-band {architecture} at λ={lambda_tag(lmbda)}: {where}. "
                          f"The shipped band models (1, 4 and 13 bands) are re-made by `{TRAIN_MULTISPECTRAL}`; "
                          f"train another with `edgespacecom train --band-set ...` (see README, Training)")
    if architecture in VARIABLE_RATE_ARCHITECTURES:  # one file for every λ
        return CodecError(f"no weights for {architecture}: {where}. Train it with `edgespacecom train --arch "
                          f"{architecture} --export {local_checkpoint(architecture, lmbda)}` (see docs/training.md)")
    return CodecError(
        f"no weights for {architecture} at λ={lambda_tag(lmbda)}: {where}. "
        + (f"The shipped λ are re-made by `{TRAIN_SHIPPED[architecture]}`; train this one with "
           if architecture in SHIPPED_ARCHITECTURES else "This architecture is not shipped; train it with ")
        + f"`edgespacecom train --arch {architecture} --lambda {lambda_tag(lmbda)} --export {local_checkpoint(architecture, lmbda)}`"
    )


def lambda_tag(lmbda: float) -> str:
    """0.0067 -> '0.0067' (file-name safe)."""
    return f"{lmbda:g}"




def checkpoint_name(architecture: str, lmbda: float, bands: int = 3) -> str:
    """``ARCH_lambdaΛ.pt`` for RGB models, ``ARCH_Bband_lambdaΛ.pt`` for B-band ones, ``ARCH.pt`` for a
    variable-rate model (one file for every λ)."""
    if architecture in VARIABLE_RATE_ARCHITECTURES:
        return f"{architecture}.pt"
    return f"{architecture}{'' if bands == 3 else f'_{bands}band'}_lambda{lambda_tag(lmbda)}.pt"


def shipped_checkpoint(architecture: str, lmbda: float, bands: int = 3) -> Path:
    return WEIGHTS_DIR / checkpoint_name(architecture, lmbda, bands)


def local_weights_dir() -> Path:
    """Where locally trained checkpoints live: $EDGESPACECOM_WEIGHTS, else the platform's user cache."""
    return user_cache("EDGESPACECOM_WEIGHTS", "weights")


def portable_name(path: Path) -> str:
    """A checkpoint's name without host paths: ``shipped:FILE``, ``local:FILE`` or ``file:FOLDER/FILE``
    (a user's file keeps its folder's name, so two versions of one model stay apart)."""
    path = Path(path)
    for tag, folder in (("shipped", WEIGHTS_DIR), ("local", local_weights_dir())):
        if path.parent.resolve() == Path(folder).resolve():
            return f"{tag}:{path.name}"
    return f"file:{path.parent.name}/{path.name}"


def local_checkpoint(architecture: str, lmbda: float, bands: int = 3) -> Path:
    return local_weights_dir() / checkpoint_name(architecture, lmbda, bands)


def checkpoint_files(cfg) -> dict[str, Path]:
    """{portable name: file} of every checkpoint a ``codec`` section uses, without loading them;
    CodecError (with the command that makes it) for the first that is missing."""
    if cfg.pretrained:
        return {}
    if cfg.checkpoint is not None:
        if not Path(cfg.checkpoint).is_file():
            raise CodecError(f"codec.checkpoint: {cfg.checkpoint} does not exist")
        return {portable_name(cfg.checkpoint): Path(cfg.checkpoint)}
    out = {}
    for lmbda in cfg.model_lambdas:
        path = next((p for p in (shipped_checkpoint(cfg.architecture, lmbda, cfg.bands),
                                 local_checkpoint(cfg.architecture, lmbda, cfg.bands)) if p.is_file()), None)
        if path is None:
            raise missing_weights(cfg.architecture, lmbda, cfg.bands)
        out[portable_name(path)] = path
    return out

"""Where codec checkpoints live and what they are called: the shipped weights, the locally trained
ones, their portable names. Imports neither torch nor CompressAI, so that checking a scenario's
files (and a large sweep's) stays fast; :mod:`.codecs` loads them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgespacecom.cache import user_cache

WEIGHTS_DIR = Path(str(resources.files("dlrc_agents") / "weights"))


def lambda_tag(lmbda: float) -> str:
    """0.0067 -> '0.0067' (file-name safe)."""
    return f"{lmbda:g}"


def checkpoint_name(architecture: str, lmbda: float, bands: int = 3) -> str:
    """``ARCH_lambdaΛ.pt`` for RGB models, ``ARCH_Bband_lambdaΛ.pt`` for B-band ones."""
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
            from .codecs import CodecError

            raise CodecError(f"codec.checkpoint: {cfg.checkpoint} does not exist")
        return {portable_name(cfg.checkpoint): Path(cfg.checkpoint)}
    out = {}
    for lmbda in cfg.model_lambdas:
        path = next((p for p in (shipped_checkpoint(cfg.architecture, lmbda, cfg.bands),
                                 local_checkpoint(cfg.architecture, lmbda, cfg.bands)) if p.is_file()), None)
        if path is None:
            from .codecs import load_codec  # imports torch: only to say how to make what is missing

            load_codec(cfg.architecture, lmbda=lmbda, bands=cfg.bands)  # raises the error that says how to train it
        out[portable_name(path)] = path
    return out

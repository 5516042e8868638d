"""Codecs: the registry of CompressAI architectures and the project's checkpoints (:mod:`.registry`),
the checkpoint files and shipped weights (:mod:`.files`, ``weights/``), the Gaussian-mixture entropy
coder (:mod:`.gmm`), JPEG 2000 through OpenJPEG (:mod:`.jpeg2000`) and training (:mod:`.train`).

A new codec goes here: its architecture in :data:`.registry.ARCHITECTURES` (and its family), its
weights in ``weights/``. ``from dlrc_agents.codecs import load_codecs`` reads the registry; the
registry (and torch) load on first use, so :mod:`.files` stays light for validating scenarios.
"""

from __future__ import annotations


def __getattr__(name: str):
    # the registry's public names, loaded when first asked for (it imports torch and CompressAI);
    # a submodule's name (``from dlrc_agents.codecs import jpeg2000``) falls through to the import system
    import importlib

    if name.startswith("__"):
        raise AttributeError(name)
    registry = importlib.import_module(".registry", __name__)
    try:
        return getattr(registry, name)
    except AttributeError:
        raise AttributeError(f"module 'dlrc_agents.codecs' has no attribute {name!r}") from None

"""Scenario kinds: a registry the CLI, the validator and sweeps look kinds up in.

A kind registers itself (as CompressAI registers its models) with its config schema, its
runner, its table formatter and the files a scenario of that kind reads. The simulator
core registers ``sync`` (:mod:`edgespacecom.sync_kind`); packages above it register theirs
from a module named in the ``edgespacecom.kinds`` entry-point group of their distribution
(``dlrc_agents.kinds`` for ``rd``, ``codec_rd``, ``dlrc_ablation`` and ``mission``). So the
core never imports the layer above it, and the layer above can add kinds without editing it.

Runners and formatters are named ``"module:function"`` and imported only when a scenario
of that kind runs: validating a scenario never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

ENTRY_POINT_GROUP = "edgespacecom.kinds"
_BUILTIN = ("edgespacecom.sync_kind",)


@dataclass(frozen=True)
class ScenarioKind:
    """A scenario kind.

    ``runner(scenario, run: RunContext) -> summary dict`` and ``formatter(summary) -> str``
    are ``"module:function"`` names. ``inputs(scenario) -> {portable name: local path}``
    lists every file the scenario reads (scenes, weights, TLEs); it raises ``ValueError``
    naming the first one that is missing, so a run stops before any work.
    """

    name: str
    schema: type
    runner: str
    formatter: str
    inputs: Callable[[Any], dict[str, Path]] = field(default=lambda scenario: {})
    sweep_y: tuple[str, ...] = ()
    sweep_figures: str | None = None  # "module:function"(table, keys, out_dir) -> {file name: figure}
    description: str = ""

    def load(self, attribute: str) -> Callable:
        """The function named by ``attribute`` ('runner', 'formatter', 'sweep_figures')."""
        module, _, func = getattr(self, attribute).partition(":")
        return getattr(importlib.import_module(module), func)


@dataclass(frozen=True)
class Command:
    """A command-line subcommand a layer above the core adds (``edgespacecom train``).

    ``arguments(parser)`` declares its options on an argparse sub-parser; ``handler`` is a
    ``"module:function"`` taking the parsed arguments and returning the exit status.
    """

    name: str
    help: str
    arguments: Callable[[Any], None]
    handler: str

    def load(self) -> Callable:
        module, _, func = self.handler.partition(":")
        return getattr(importlib.import_module(module), func)


_KINDS: dict[str, ScenarioKind] = {}
_COMMANDS: dict[str, Command] = {}
_loaded = False


def register_command(command: Command) -> Command:
    _COMMANDS[command.name] = command
    return command


def commands() -> dict[str, Command]:
    """Every subcommand registered by a plugin, by name."""
    _load_plugins()
    return dict(_COMMANDS)


def register_kind(kind: ScenarioKind) -> ScenarioKind:
    """Add a kind; registering the same name twice with another schema is an error."""
    existing = _KINDS.get(kind.name)
    if existing is not None and existing.schema is not kind.schema:
        raise ValueError(f"scenario kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN:
        importlib.import_module(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        importlib.import_module(ep.value.partition(":")[0])


def kinds() -> dict[str, ScenarioKind]:
    """Every registered kind, by name."""
    _load_plugins()
    return dict(_KINDS)


def get_kind(name: str) -> ScenarioKind | None:
    return kinds().get(name)

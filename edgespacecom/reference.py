"""The scenario key reference (docs/scenario-keys.md), generated from the kinds' schemas.

``python -m edgespacecom.reference > docs/scenario-keys.md`` writes it; a test checks that
the page in the repository is the one the code generates, so it never lists a key, a
default or a description the code does not have.
"""

from __future__ import annotations

import json
import re
import typing

from pydantic import BaseModel

from .kinds import kinds


def _type_name(annotation) -> str:
    text = str(annotation).replace("typing.", "").replace("pathlib.", "").replace("<class '", "").replace("'>", "")
    # a schema's module path (the core's config, or a kind's own schema module) says nothing to a user
    text = re.sub(r"\b(?:[a-z_]+\.)+(?=[A-Z])", "", text).replace("datetime.", "")
    text = re.sub(r"Annotated\[Path, AfterValidator\(func=<function resolve_relative at 0x[0-9a-f]+>\), "
                  r"AfterValidator\(func=<function existing_file at 0x[0-9a-f]+>\)\]",
                  "existing file (relative to the scenario file)", text)
    text = re.sub(r"Annotated\[Path, AfterValidator\(func=<function resolve_relative at 0x[0-9a-f]+>\)\]",
                  "path (relative to the scenario file)", text)
    return re.sub(r"^Optional\[(.*)\]$", r"\1 | None", text)


def _model_of(annotation) -> type[BaseModel] | None:
    """The config model inside an annotation (``X``, ``X | None``), if any."""
    candidates = [annotation, *typing.get_args(annotation)]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def _default_text(field) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return json.dumps([v.model_dump(mode="json") for v in value])
    try:
        return json.dumps(value, default=str)
    except TypeError:
        return str(value)


def _rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = _model_of(field.annotation)
        if sub is not None and typing.get_origin(field.annotation) is not list:
            doc = (field.description or sub.__doc__ or "").strip().splitlines()
            rows.append((key, sub.__name__, _default_text(field), doc[0] if doc else ""))
            rows.extend(_rows(sub, key + "."))
        else:
            type_name = "list of " + _model_of(field.annotation).__name__ if sub is not None else \
                _type_name(field.annotation)
            rows.append((key, type_name, _default_text(field), (field.description or "").strip()))
    return rows


def scenario_reference() -> str:
    out = ["# Scenario keys", "",
           "Every key of every scenario kind, with its default and meaning, generated from the schemas",
           "(`python -m edgespacecom.reference > docs/scenario-keys.md`; a test checks this page against",
           "the code). How to run, override and sweep scenarios: [scenarios.md](scenarios.md).", ""]
    for name, kind in kinds().items():
        out += [f"## kind: {name}", "", kind.description or (kind.schema.__doc__ or "").strip().splitlines()[0], "",
                "| key | type | default | meaning |", "|---|---|---|---|"]
        for key, type_name, default, meaning in _rows(kind.schema):
            if key == "kind":
                continue
            cell = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
            out.append(f"| `{key}` | {cell(type_name)} | {cell(default)} | {cell(meaning)} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(scenario_reference(), end="")

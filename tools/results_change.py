"""What a re-run changed: the numbers of each result's ``summary.json`` at a git revision against the
working tree, as a Markdown table.

    python tools/results_change.py --base REV results/A results/B ... [--keys REGEX] [--out FILE]

Numbers are flattened to dotted keys (lists by index, at most four levels; provenance and timings left
out) and kept when their key matches ``--keys`` (default: rates, qualities, savings, G_down, BD and F1).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

DEFAULT_KEYS = r"(bpp|psnr|g_down|bd_rate|bd_psnr|reduction|saving|f1|delta|exact|target)"
SKIP = re.compile(r"(provenance|wall|_s$|_ms$|seconds|started|timing|time_)")


def flatten(value, prefix: str = "", depth: int = 0) -> dict[str, float]:
    out = {}
    if isinstance(value, bool):
        return {prefix: float(value)}
    if isinstance(value, (int, float)):
        return {prefix: float(value)}
    if depth >= 4:
        return out
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for k, v in items:
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k), depth + 1))
    return out


def old_summary(base: str, folder: Path) -> dict | None:
    try:
        text = subprocess.run(["git", "show", f"{base}:{folder.as_posix()}/summary.json"], check=True,
                              capture_output=True, text=True).stdout
    except subprocess.CalledProcessError:
        return None
    return json.loads(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--base", required=True, help="git revision of the earlier results")
    ap.add_argument("--keys", default=DEFAULT_KEYS)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    keys = re.compile(args.keys)
    lines = [f"Made by `python tools/results_change.py --base {args.base} {' '.join(str(f) for f in args.folders)}`", ""]
    for folder in args.folders:
        new_path = folder / "summary.json"
        old = old_summary(args.base, folder)
        if old is None or not new_path.is_file():
            lines += [f"## {folder.name}", "", "no earlier summary to compare" if old is None else "not re-run", ""]
            continue
        a, b = flatten(old), flatten(json.loads(new_path.read_text()))
        rows = [(k, a[k], b[k]) for k in sorted(set(a) & set(b))
                if keys.search(k) and not SKIP.search(k) and abs(a[k] - b[k]) > 1e-9 * max(1.0, abs(a[k]))]
        lines += [f"## {folder.name}", "", "| key | before | after | change |", "|---|---|---|---|"]
        lines += [f"| `{k}` | {x:.6g} | {y:.6g} | {y - x:+.4g} |" for k, x, y in rows[:60]]
        if len(rows) > 60:
            lines.append(f"| … {len(rows) - 60} more | | | |")
        if not rows:
            lines.append("| (no number matching the keys changed) | | | |")
        lines.append("")
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

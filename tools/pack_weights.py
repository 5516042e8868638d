"""Re-export checkpoints in 8-bit storage (dlrc_agents.codecs.registry.pack_int8), as shipped.

    python tools/pack_weights.py SRC.pt DST.pt [SRC2.pt DST2.pt ...]

Each source is verified against its tensors' sha256 first; the target keeps its metadata and
names the source's checksum (``repacked_from``).
"""

import sys
from pathlib import Path

from dlrc_agents.codecs.registry import repack_checkpoint


def main(argv: list[str]) -> int:
    if not argv or len(argv) % 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for src, dst in zip(argv[::2], argv[1::2]):
        out = repack_checkpoint(src, dst, "int8")
        print(f"{src} -> {out} ({Path(src).stat().st_size / 1e6:.1f} MB -> {out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

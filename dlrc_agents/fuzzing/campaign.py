"""A seeded mutation fuzzer for the ground decoder and the scenario loader.

Bitstreams: real containers of two captures (DLRC streams of a hyperprior and a context codec,
and the codec-alone streams of the baseline world) are mutated, most with their integrity fields
recomputed so that the mutation reaches past them: header fields, sections, strings, member and
map lists, whole streams replayed from another capture, streams re-signed under another key. Each
case ends in one outcome:

- ``refused``: the project's :class:`BitstreamError`;
- ``exact``: a decode equal to the unmutated streams' decode;
- ``wrong``: a decode that differs, with no error (possible only where the fuzzer recomputed the
  integrity fields over altered bytes and the ground holds no mission key: a CRC cannot tell);
- ``crash``: any other exception; ``hang``: over :data:`CASE_LIMIT_S`; ``memory``: the process's
  peak resident memory grew more than :data:`CASE_LIMIT_BYTES` over the campaign's start.

Scenarios: shipped scenarios with values replaced by odd ones and keys added or removed end in a
valid scenario or a one-line :class:`~edgespacecom.config.ScenarioError`, nothing else.

``python -m dlrc_agents.fuzzing --bitstreams 10000 --scenarios 1000 --out results/fuzz`` runs a
campaign and writes its counts (``summary.json``); the test suite runs a few thousand cases.
"""

from __future__ import annotations

import argparse
import copy
import resource
import struct
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dlrc_agents.codecs.registry import build_model, codec_from_model
from dlrc_agents.dlrc.alone import decode_alone, decode_alone_jpeg2000, encode_alone, encode_alone_jpeg2000
from dlrc_agents.dlrc.bitstream import (FLAG_AUTHENTICATED, HEADER_FIELDS, HYPER_STRIDE, LATENT_STRIDE, BitstreamError, Container, DecodeBounds, lzma_compress, pack_container, split_container)
from dlrc_agents.dlrc.onboard import DLRCConfig, encode_group
from dlrc_agents.dlrc.reconstructor import reconstruct
from dlrc_agents.common.imaging import patch_tensor, to_uint8

CASE_LIMIT_S = 10.0
CASE_LIMIT_BYTES = 1 << 30
MISSION_KEY = bytes(range(32))  # the ground's key in keyed campaigns (the fuzzer plays an outsider without it)
ATTACKER_KEY = b"\xa5" * 32
SCENE = "eo:rgb/test/inria_bellingham1_1024.tif"
OUTCOMES = ("refused", "exact", "wrong", "crash", "hang", "memory")
_INT_TOPS = {"u8": 255, "u16": 65535, "u32": 2**32 - 1}
_FIELD_KIND = {"version": "u8", "flags": "u8", "architecture": "u8", "map_form": "u8", "map_coding": "u8",
               "context_fill": "u8", "capture": "u32", "offset": "u32", "retained": "u32"}


# ------------------------------------------------------------------ the streams under test


@dataclass
class Target:
    """One kind of stream set: its codec, the streams of two captures, and the reference decode."""

    name: str
    codec: object
    streams: dict  # capture -> list of bytes
    reference: object = None  # the decode of capture 1's streams
    alone: bool | str = False  # True: a learned codec alone; "jpeg2000": JPEG 2000 codestreams
    size: int = 256  # the capture size [px] the ground expects


def _crops(scene: np.ndarray, offsets, size: int) -> dict:
    return {s: patch_tensor(scene, y, x, size) for s, (y, x) in enumerate(offsets)}


@torch.no_grad()
def build_targets(scene: np.ndarray, key: bytes | None) -> list[Target]:
    """Small randomly initialised codecs (the decoder's parsing and entropy decoding paths are those
    of trained ones; random weights keep a case fast): bmshj2018-hyperprior with joint dense and
    reference maps at 256², and in predict mode (residuals against a peer, flags, side strings; its
    hyperprior scaled so that prediction pays somewhere), mbt2018 (autoregressive context) at 128², the
    codec alone, and JPEG 2000."""
    torch.manual_seed(2)
    hyper = codec_from_model(build_model("bmshj2018-hyperprior", 32, 48), "bmshj2018-hyperprior", 32, 48)
    torch.manual_seed(3)
    context = codec_from_model(build_model("mbt2018", 32, 48), "mbt2018", 32, 48)
    shots = {1: [(0, 0), (64, 32), (128, 128)], 2: [(32, 0), (0, 96), (96, 96)]}
    torch.manual_seed(2)
    codec_predictive = codec_from_model(build_model("bmshj2018-hyperprior", 32, 48), "bmshj2018-hyperprior", 32, 48)
    with torch.no_grad():  # a random g_a gives near-zero latents, where nothing is worth predicting
        codec_predictive.model.g_a[-1].weight.mul_(40.0)
    targets = []
    for name, codec, size, cfg in (
            ("hyperprior-joint", hyper, 256, DLRCConfig(map_transport="joint")),
            ("hyperprior-references", hyper, 256, DLRCConfig(map_transport="references")),
            ("context-references", context, 128, DLRCConfig(map_transport="references", context_fill="prediction"))):
        streams = {cap: list(encode_group(codec, _crops(scene, off, size), cfg, capture=cap, key=key).streams.values())
                   for cap, off in shots.items()}
        targets.append(Target(name, codec, streams, size=size))
    origins = {1: {0: (0, 0), 1: (64, 32), 2: (128, 128)}, 2: {0: (32, 0), 1: (0, 96), 2: (96, 96)}}
    streams = {cap: list(encode_group(codec_predictive, _crops(scene, off, 256), DLRCConfig(mode="predict"), capture=cap,
                                      key=key, origins={s: (y // 16 * 16, x // 16 * 16) for s, (y, x) in origins[cap].items()}
                                      ).streams.values())
               for cap, off in ((c_, list(origins[c_].values())) for c_ in (1, 2))}
    targets.append(Target("hyperprior-predict", codec_predictive, streams))
    streams = {cap: [encode_alone(hyper, x, s, cap, (0, 1, 2)).to_bytes(key)
                     for s, x in _crops(scene, off, 256).items()] for cap, off in shots.items()}
    targets.append(Target("codec-alone", hyper, streams, alone=True))
    # what satellites fly today: mutations that survive the container reach OpenJPEG's own parser
    streams = {cap: [encode_alone_jpeg2000(to_uint8(x), 1.0, s, cap, (0, 1, 2)).to_bytes(key)
                     for s, x in _crops(scene, off, 256).items()] for cap, off in shots.items()}
    targets.append(Target("jpeg2000-alone", None, streams, alone="jpeg2000"))
    for t in targets:
        t.reference = decode(t, t.streams[1], key)
    return targets


def decode(t: Target, streams: list, key: bytes | None, expect: bool = True):
    """The ground's decode of ``streams``; ``expect``: it knows the capture size and the member count
    (a mission's or the rd kind's ground), else only the absolute pixel limit applies (standalone)."""
    bounds = DecodeBounds.expect((t.size, t.size), 3) if expect else None
    if t.alone == "jpeg2000":
        return [torch.from_numpy(decode_alone_jpeg2000(s, key, capture=1, bounds=bounds)) for s in streams]
    if t.alone:
        return [decode_alone(t.codec, s, key, capture=1, bounds=bounds) for s in streams]
    out = reconstruct(t.codec, streams, synthesize=False, key=key, capture=1, bounds=bounds)
    return {s: d["y_tilde"] for s, d in out.items()}


def same_decode(a, b) -> bool:
    if isinstance(a, list):
        return len(a) == len(b) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b))
    return a.keys() == b.keys() and all(a[s].shape == b[s].shape and torch.equal(a[s], b[s]) for s in a)


# ------------------------------------------------------------------ mutations


def _repack(c: Container, original_tag: bytes, integrity: str) -> bytes:
    """Bytes of ``c`` with integrity fields as the mutation says: 'crc' (CRC-32 recomputed, the
    original tag kept in place), 'resign' (tag and CRC recomputed under the attacker's key),
    'strip' (tag removed, CRC recomputed)."""
    if integrity == "resign":
        return pack_container(c, ATTACKER_KEY)
    body = bytearray(pack_container(c)[:-4])
    if integrity == "crc" and original_tag:
        body[5] |= FLAG_AUTHENTICATED
        body += original_tag
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


#: The mutation families, by the kind number :func:`mutate_family` draws (reported per family).
FAMILIES = {0: "byte flip", 1: "replay", 2: "header field", 3: "header field", 4: "member or map list",
            5: "string or map bytes", 6: "string or map bytes", 7: "string or map bytes", 8: "string or map bytes",
            9: "string count", 10: "declared size", 11: "declared size"}


def mutate_family(stream: bytes, rng: np.random.Generator, other: bytes) -> tuple[bytes, str, str]:
    """(one mutation of ``stream``, its integrity: 'stale', 'crc', 'resign', 'strip' or 'replay', and its
    family: :data:`FAMILIES`). ``other``: a stream of another capture, for replays."""
    kind = int(rng.integers(0, 12))
    out = _mutate(stream, rng, other, kind)
    return out[0], out[1], FAMILIES[kind]


def _mutate(stream: bytes, rng: np.random.Generator, other: bytes, kind: int) -> tuple[bytes, str]:
    if kind == 0:  # a random byte anywhere, integrity fields left stale
        b = bytearray(stream)
        b[int(rng.integers(0, len(b)))] ^= int(rng.integers(1, 256))
        return bytes(b), "stale"
    if kind == 1:  # a whole stream replayed from another capture
        return other, "replay"
    try:
        c = split_container(stream)
    except BitstreamError:  # an earlier mutation left it unparseable: flip a byte, CRC recomputed
        b = bytearray(stream[:-4])
        b[int(rng.integers(0, len(b)))] ^= 0xFF
        return bytes(b) + struct.pack("<I", zlib.crc32(bytes(b))), "crc"
    integrity = str(rng.choice(["crc", "crc", "crc", "resign", "strip"]))
    if kind in (10, 11):  # a declared size: oversize (up to the format's 16384²), or another capture size
        h, w = c.fields["image_h"], c.fields["image_w"]
        if kind == 10:
            h, w = (int(rng.choice([4096, 8192, 16383, 16384])) for _ in range(2))
        else:
            f = float(rng.choice([0.25, 0.5, 2.0, 4.0]))
            h, w = min(65535, max(16, int(h * f))), min(65535, max(16, int(w * f)))
        # every grid consistent with it, so only the size itself can refuse it
        c.fields.update(image_h=h, image_w=w, latent_h=-(-h // LATENT_STRIDE), latent_w=-(-w // LATENT_STRIDE),
                        z_h=-(-h // HYPER_STRIDE), z_w=-(-w // HYPER_STRIDE))
        if rng.random() < 0.5:  # the retained count too, so nothing but the size is out of place
            c.fields["retained"] = min(c.fields["latent_h"] * c.fields["latent_w"], 0xFFFFFFFF)
        if c.map_section and rng.random() < 0.5:  # maps of all-zero symbols for the whole declared grid
            c.map_section = lzma_compress(bytes(4 * c.fields["latent_h"] * c.fields["latent_w"] * len(c.map_sats)))
        return _repack(c, c.tag, integrity), integrity
    if kind in (2, 3):  # a header field
        name = HEADER_FIELDS[int(rng.integers(1, len(HEADER_FIELDS) - 2))]
        if name == "fingerprint":
            c.fields[name] = rng.bytes(8)
        elif name == "lmbda":
            c.fields[name] = float(rng.choice([0.0, -1.0, np.inf, np.nan, 1e30, 0.0067]))
        else:
            top = _INT_TOPS[_FIELD_KIND.get(name, "u16")]
            old = int(c.fields[name])
            c.fields[name] = int(rng.choice([0, 1, top, int(rng.integers(0, top + 1)),
                                             min(top, max(0, old + int(rng.integers(-3, 4))))]))
    elif kind == 4:  # the member or map list
        lists = ["members", "map_sats"]
        which = lists[int(rng.integers(0, 2))]
        values = list(getattr(c, which))
        action = int(rng.integers(0, 3))
        if action == 0 and values:
            values[int(rng.integers(0, len(values)))] = int(rng.integers(0, 65536))
        elif action == 1 and values:
            values.pop(int(rng.integers(0, len(values))))
        else:
            values.append(int(rng.integers(0, 8)))
        setattr(c, which, tuple(values))
    else:  # a string or the map section
        parts = list(c.strings) + [c.map_section]
        at = int(rng.integers(0, len(parts)))
        s = bytearray(parts[at])
        action = kind - 5
        if action == 0 and s:  # a byte of it
            s[int(rng.integers(0, len(s)))] ^= int(rng.integers(1, 256))
        elif action == 1:  # truncated or emptied
            s = s[:int(rng.integers(0, len(s) + 1))]
        elif action == 2:  # random bytes in its place
            s = bytearray(rng.bytes(int(rng.integers(0, 64))))
        elif action == 3:  # grown
            s += rng.bytes(int(rng.integers(1, 32)))
        else:  # one string more or fewer
            if len(c.strings) > 1 and rng.random() < 0.5:
                c.strings = c.strings[:-1]
            else:
                c.strings = c.strings + [rng.bytes(int(rng.integers(1, 16)))]
            return _repack(c, c.tag, integrity), integrity
        parts[at] = bytes(s)
        c.strings, c.map_section = parts[:-1], parts[-1]
    return _repack(c, c.tag, integrity), integrity


# ------------------------------------------------------------------ the campaign


@dataclass
class Tally:
    cases: int = 0
    outcomes: dict = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    wrong_by_integrity: dict = field(default_factory=dict)
    by_family: dict = field(default_factory=dict)  # family of the last mutation -> {outcome: cases}
    slowest_s: float = 0.0
    peak_rss_growth_bytes: int = 0
    failures: list = field(default_factory=list)  # (case, outcome, detail) of crashes, hangs, memory

    def as_dict(self) -> dict:
        return {"cases": self.cases, **self.outcomes, "wrong_by_integrity": dict(self.wrong_by_integrity),
                "by_family": {f: dict(v) for f, v in sorted(self.by_family.items())},
                "slowest_s": round(self.slowest_s, 3), "peak_rss_growth_mb": round(self.peak_rss_growth_bytes / 2**20, 1),
                "failures": self.failures[:20]}


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def run_bitstream_cases(targets: list[Target], cases: int, seed: int, key: bytes | None,
                        tally: Tally | None = None, progress=None) -> Tally:
    """Mutate and decode ``cases`` stream sets (one or two mutations of one stream of capture 1)."""
    tally = Tally() if tally is None else tally
    rng = np.random.default_rng(seed)
    rss0 = _peak_rss_bytes()
    for i in range(cases):
        t = targets[i % len(targets)]
        good = t.streams[1]
        at = int(rng.integers(0, len(good)))
        bad, integrity, family = mutate_family(good[at], rng, t.streams[2][at])
        if rng.random() < 0.3:  # the last one says what the CRC and tag cover, and names the family
            bad, integrity, family = mutate_family(bad, rng, t.streams[2][at])
        start = time.perf_counter()
        try:
            out = decode(t, good[:at] + [bad] + good[at + 1:], key, expect=bool(i % 2))
        except BitstreamError:
            outcome = "refused"
        except Exception as exc:  # noqa: BLE001: what the campaign exists to find
            outcome = "crash"
            tally.failures.append((i, t.name, f"{type(exc).__name__}: {str(exc)[:200]}"))
        else:
            outcome = "exact" if same_decode(out, t.reference) else "wrong"
            if outcome == "wrong":
                tally.wrong_by_integrity[integrity] = tally.wrong_by_integrity.get(integrity, 0) + 1
        took = time.perf_counter() - start
        tally.slowest_s = max(tally.slowest_s, took)
        if took > CASE_LIMIT_S:
            outcome = "hang"
            tally.failures.append((i, t.name, f"{took:.1f} s"))
        growth = _peak_rss_bytes() - rss0
        tally.peak_rss_growth_bytes = max(tally.peak_rss_growth_bytes, growth)
        if growth > CASE_LIMIT_BYTES:
            outcome = "memory"
            tally.failures.append((i, t.name, f"peak RSS +{growth / 2**30:.2f} GiB"))
            rss0 = _peak_rss_bytes()  # report each further case on its own
        tally.outcomes[outcome] += 1
        per = tally.by_family.setdefault(family, dict.fromkeys(OUTCOMES, 0))
        per[outcome] += 1
        tally.cases += 1
        if progress is not None:
            progress(1)
    return tally


ODD_VALUES = [None, True, -1, 0, 2**63, -2**63, 1e308, -1e-308, float("nan"), float("inf"), "", "x" * 10_000,
              "2026-02-30T00:00:00Z", [], {}, [1, "a", None], {"a": {"b": {"c": 1}}}, "../../etc/passwd", "\x00",
              "eo:does/not/exist.tif", 3.5, "1e400"]
SCENARIOS = ("quickstart", "paper_table_a1", "geometric_day", "rd_bmshj2018", "ablation_bmshj2018", "codec_rd_test")


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def run_scenario_cases(name: str, cases: int, seed: int = 0) -> dict:
    """Mutate shipped scenario ``name`` ``cases`` times: {'valid', 'refused', 'crash', 'multiline'}."""
    import yaml

    from edgespacecom.config import ScenarioError, validate_scenario
    from edgespacecom.scenarios import shipped_scenarios

    base = yaml.safe_load(shipped_scenarios()[name].read_text())
    paths = list(_paths(base))
    rng = np.random.default_rng([zlib.crc32(name.encode()), seed])
    outcome = {"valid": 0, "refused": 0, "crash": 0, "multiline": 0, "failures": []}
    for i in range(cases):
        raw = copy.deepcopy(base)
        for _ in range(int(rng.integers(1, 4))):
            path = paths[int(rng.integers(0, len(paths)))]
            node = raw
            try:
                for part in path[:-1]:
                    node = node[part]
                action = rng.integers(0, 3)
                if action == 0:
                    node[path[-1]] = ODD_VALUES[int(rng.integers(0, len(ODD_VALUES)))]
                elif action == 1 and isinstance(node, dict):
                    node.pop(path[-1], None)
                elif isinstance(node, dict):
                    node[f"unknown_{int(rng.integers(0, 9))}"] = 1
            except (KeyError, IndexError, TypeError):
                continue  # an earlier mutation removed or replaced the parent
        try:
            validate_scenario(raw, "s.yaml")
            outcome["valid"] += 1
        except ScenarioError as exc:
            message = str(exc)
            if "\n" in message.strip() or len(message) >= 2000:
                outcome["multiline"] += 1
                outcome["failures"].append((i, message[:300]))
            else:
                outcome["refused"] += 1
        except Exception as exc:  # noqa: BLE001
            outcome["crash"] += 1
            outcome["failures"].append((i, f"{type(exc).__name__}: {str(exc)[:200]}"))
    return outcome


def main(argv: list[str] | None = None) -> int:
    """Run a campaign: both key modes, then the scenarios; write ``summary.json`` under ``--out``."""
    from edgespacecom.datasets import registry
    from edgespacecom.outputs import write_json
    from edgespacecom.progress import progress
    import datetime as dt

    from edgespacecom.provenance import git_commit, library_versions, provenance_of

    from dlrc_agents.common.data import read_rgb

    ap = argparse.ArgumentParser(prog="python -m dlrc_agents.fuzzing", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bitstreams", type=int, default=10000, help="cases per key mode (no key, mission key)")
    ap.add_argument("--scenarios", type=int, default=1000, help="scenario cases in all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="folder for summary.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    started_utc = dt.datetime.now(dt.timezone.utc)
    scene = read_rgb(registry().path(SCENE))
    result: dict = {"command": "python -m dlrc_agents.fuzzing " + " ".join(sys.argv[1:] if argv is None else argv),
                    "limits": {"case_s": CASE_LIMIT_S, "peak_rss_growth_bytes": CASE_LIMIT_BYTES},
                    "versions": library_versions(), "commit": git_commit(), "bitstreams": {}}
    started = time.perf_counter()
    for mode, key in (("no_key", None), ("mission_key", MISSION_KEY)):
        targets = build_targets(scene, key)
        with progress(total=args.bitstreams, desc=f"bitstreams ({mode})", unit="case") as bar:
            tally = run_bitstream_cases(targets, args.bitstreams, args.seed + (key is not None), key,
                                        progress=bar.update)
        result["bitstreams"][mode] = tally.as_dict()
        print(f"{mode}: {tally.as_dict()}", file=sys.stderr)
    per = max(1, args.scenarios // len(SCENARIOS))
    result["scenarios"] = {name: run_scenario_cases(name, per, args.seed) for name in SCENARIOS}
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["provenance"] = provenance_of(vars(args) | {"out": None}, {SCENE: registry().path(SCENE)}, started_utc)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / "summary.json", result)
    bad = sum(result["bitstreams"][m][o] for m in result["bitstreams"] for o in ("crash", "hang", "memory"))
    bad += result["bitstreams"]["mission_key"]["wrong"]
    bad += sum(s["crash"] + s["multiline"] for s in result["scenarios"].values())
    print(f"fuzz: {bad} failures", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

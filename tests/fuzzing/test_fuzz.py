"""The seeded mutation fuzzer (:mod:`dlrc_agents.fuzzing`) in the normal run: thousands of corrupted
streams of two captures (DLRC streams of a hyperprior and a context codec, codec-alone streams of a
learned codec and of JPEG 2000), most with their CRC-32 (and tag) recomputed so the mutations reach
past them, with and without a mission key. Every case must end in the project's BitstreamError or a decode, never another exception,
within a time and memory bound; with the key, never a wrong decode. The slow case runs 5000 more
of each; scenarios follow."""

import pytest

from dlrc_agents.fuzzing.campaign import (MISSION_KEY, SCENARIOS, build_targets, run_bitstream_cases, run_scenario_cases)


@pytest.fixture(scope="module")
def targets(scene):
    return {mode: build_targets(scene, key) for mode, key in (("no_key", None), ("mission_key", MISSION_KEY))}


def _check(tally, keyed: bool):
    out = tally.as_dict()
    assert out["crash"] == out["hang"] == out["memory"] == 0, out["failures"]
    assert out["refused"] + out["exact"] + out["wrong"] == out["cases"]
    if keyed:  # nothing the fuzzer made without the key decodes to anything but the original
        assert out["wrong"] == 0
    else:  # a wrong decode only where the fuzzer recomputed the CRC over altered bytes
        assert set(out["wrong_by_integrity"]) <= {"crc", "strip"}
    assert out["refused"] > 0.6 * out["cases"]
    return out


def test_mutated_streams_without_a_key(targets):
    _check(run_bitstream_cases(targets["no_key"], 1500, seed=1, key=None), keyed=False)


def test_mutated_streams_with_the_mission_key(targets):
    out = _check(run_bitstream_cases(targets["mission_key"], 1500, seed=2, key=MISSION_KEY), keyed=True)
    assert out["refused"] > 0.95 * out["cases"]  # all but mutations that changed nothing


@pytest.mark.slow
def test_two_thousand_more_mutated_streams_each_way(targets):
    """More draws of the same families (the full campaign, 10,000 streams, is results/fuzz)."""
    _check(run_bitstream_cases(targets["no_key"], 2000, seed=3, key=None), keyed=False)
    _check(run_bitstream_cases(targets["mission_key"], 2000, seed=4, key=MISSION_KEY), keyed=True)


# ------------------------------------------------------------------ scenarios


@pytest.mark.parametrize("name", SCENARIOS)
def test_mutated_scenarios_are_valid_or_one_line_errors(name):
    """Shipped scenarios with values replaced by odd ones, keys added and removed: validation ends in a
    valid scenario or a one-line ScenarioError, never another exception (200 cases per scenario)."""
    outcome = run_scenario_cases(name, 200)
    assert outcome["crash"] == outcome["multiline"] == 0, outcome["failures"]
    assert outcome["refused"] > 50

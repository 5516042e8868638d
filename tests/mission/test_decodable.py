"""Decodability accounting on hand-made deliveries: patches arrive as a fluid, a DLRC patch decodes
when every stream it copies from has arrived, and latencies come out per patch."""

import numpy as np
import pandas as pd
import pytest

from dlrc_agents.mission.decodable import (arrival_curve, decodability, needed_slots, patch_arrivals,
                                           weighted_percentiles)


def test_patches_arrive_as_the_fluid_passes_them():
    # 4 patches of 100 bits at 10 bit/s: 200 bits in [0, 20] s, nothing until 50 s, 200 more in [50, 70] s
    deliveries = pd.DataFrame({"t_s": [20.0, 70.0], "bits": [200.0, 200.0]})
    times, levels = arrival_curve(deliveries, 10.0)
    assert list(times) == [0.0, 20.0, 50.0, 70.0] and list(levels) == [0.0, 200.0, 200.0, 400.0]
    np.testing.assert_allclose(patch_arrivals(400.0, 4, times, levels), [10.0, 20.0, 60.0, 70.0])
    partial = patch_arrivals(400.0, 4, times[:2], levels[:2])
    assert partial[1] == 20.0 and np.isinf(partial[2:]).all()


def test_needed_slots_follow_copies_transitively():
    assert needed_slots({0: (), 1: (0,), 2: (1,)}, 2) == {0, 1, 2}
    assert needed_slots({1: (0,)}, 1) is None  # slot 0's stream never stored


def test_a_patch_decodes_when_the_stream_it_copies_from_has_arrived():
    # one round, two satellites: slot 1 copies from slot 0; slot 1's small stream arrives first
    items = pd.DataFrame([
        {"world": "dlrc", "slot": 0, "first_round": 0, "rounds": 2, "bits": 200.0, "raw_bits": 1000.0,
         "captured_s": 0.0, "stored_s": 2.0, "copies_from": ()},
        {"world": "dlrc", "slot": 1, "first_round": 0, "rounds": 2, "bits": 40.0, "raw_bits": 1000.0,
         "captured_s": 0.0, "stored_s": 2.0, "copies_from": (0,)},
    ])
    deliveries = pd.DataFrame([
        {"world": "dlrc", "slot": 0, "first_round": 0, "t_s": 30.0, "bits": 200.0},  # 10 bit/s from 10 s
        {"world": "dlrc", "slot": 1, "first_round": 0, "t_s": 6.0, "bits": 40.0},    # from 2 s
    ])
    table, lat = decodability(items, deliveries, 10.0, window_start_s=25.0)
    t = table.set_index("slot")
    assert list(t["patches_arrived"]) == [2, 2] and list(t["patches_decodable"]) == [2, 2]
    # slot 0's patches arrive at 20 s and 30 s; slot 1's at 4 s and 6 s but decode with slot 0's
    assert t.loc[1, "first_decodable_s"] == pytest.approx(20.0) and t.loc[1, "last_decodable_s"] == pytest.approx(30.0)
    assert list(t["patches_decodable_in_span"]) == [1, 1]
    values, weights = lat["dlrc"]
    # patch j was captured at j s (the batch ran from 0 to 2 s): latencies 20, 29 for both slots
    assert sorted(values[weights > 0]) == pytest.approx([20.0, 20.0, 29.0, 29.0]) and values.max() == 29.0
    # without slot 0's delivery nothing of slot 1 is decodable, although it all arrived
    table, _ = decodability(items, deliveries[deliveries["slot"] == 1], 10.0, 0.0)
    assert list(table.set_index("slot")["patches_decodable"]) == [0, 0]


def test_weighted_percentiles():
    assert weighted_percentiles(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 2.0]), (50, 95)) == [2.0, 3.0]

"""Link budget against hand-computed values (Table A1)."""

import math

import numpy as np
import pytest

from edgespacecom.config import LinkConfig
from edgespacecom.links import fspl_db, hop_delay_s, link_rate_bps, noise_power_dbm, propagation_delay_s


def test_fspl_3000km_20ghz():
    assert fspl_db(3000.0, 20_000.0) == pytest.approx(188.0, abs=0.05)
    # 20·log10(4π d f / c) written out
    assert fspl_db(3000.0, 20_000.0) == pytest.approx(20 * math.log10(4 * math.pi * 3e6 * 20e9 / 299792458.0), abs=1e-9)


def test_thermal_noise_290K_100MHz():
    assert noise_power_dbm(290.0, 100e6) == pytest.approx(-93.98, abs=0.01)
    # k·T·B in watts, converted to dBm by hand
    assert noise_power_dbm(290.0, 100e6) == pytest.approx(10 * math.log10(1.380649e-23 * 290 * 100e6 / 1e-3), abs=1e-9)


def test_paper_noise_formula_counts_temperature_twice():
    paper = noise_power_dbm(290.0, 100e6, "paper_as_printed")
    assert paper == pytest.approx(-174 + 10 * math.log10(290) + 80, abs=1e-9)
    assert paper - noise_power_dbm(290.0, 100e6) == pytest.approx(10 * math.log10(290), abs=0.05)  # 24.6 dB (-174 is k·290 K rounded)


def test_rate_at_3000km():
    # By hand: Pr = 40 + 35 + 35 - 188.01 - 10 = -88.01 dBm; SNR = 5.965 dB = 3.951;
    # 100 MHz · log2(4.951) · 0.8 = 184.6 Mb/s.
    rate = link_rate_bps(3000.0, LinkConfig())
    assert rate == pytest.approx(184.7e6, abs=0.25e6)
    snr = 10 ** ((40 + 35 + 35 - 188.0108 - 10 + 93.9752) / 10)
    assert rate == pytest.approx(100e6 * math.log2(1 + snr) * 0.8, rel=1e-5)
    # the paper's printed noise floor makes it ~100x slower
    paper = link_rate_bps(3000.0, LinkConfig(noise_model="paper_as_printed"))
    assert 60 < rate / paper < 140


def test_rate_falls_with_distance_and_delta_scales():
    d = np.linspace(100, 5000, 50)
    r = link_rate_bps(d, LinkConfig())
    assert np.all(np.diff(r) < 0)
    np.testing.assert_allclose(link_rate_bps(d, LinkConfig(delta=0.0)) * 0.8, r)


def test_light_delay_3000km():
    assert propagation_delay_s(3000.0) * 1e3 == pytest.approx(10.007, abs=5e-4)


def test_hop_delay_adds_transmission():
    cfg = LinkConfig()
    bits = 128 * 1024 * 8
    assert hop_delay_s(3000.0, 128, cfg) == pytest.approx(3e6 / 299792458.0 + bits / link_rate_bps(3000.0, cfg))

"""RF link budget of an inter-satellite link and the per-hop delay (paper Appendix A).

All functions are pure and vectorised over numpy arrays of distance.

Noise floor. The thermal noise power is N = k·T·B. In dBm that is
``-198.6 + 10·log10(T [K]) + 10·log10(B [Hz])`` (k = 1.380649e-23 J/K is
-228.6 dBW/K/Hz = -198.6 dBm/K/Hz); at 290 K and 100 MHz, -93.98 dBm.
The paper prints ``-174 + 10·log10(T) + 10·log10(B)``: -174 dBm/Hz is already
k·290 K, so that formula counts the temperature twice and puts the noise
24.6 dB too high (rates ~100× too low at 3000 km). It is kept as
``noise_model="paper_as_printed"`` for comparison only.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import constants

from .config import LinkConfig

#: 10·log10(k) in dBm/K/Hz (k in mW/K/Hz): -198.599...
BOLTZMANN_DBM_PER_K_HZ = 10.0 * math.log10(constants.k * 1e3)
#: The paper's noise spectral density constant, which already includes T = 290 K.
PAPER_NOISE_DBM_PER_HZ = -174.0


def fspl_db(distance_km, frequency_mhz, speed_of_light_m_s: float = constants.c):
    """Free-space path loss 20·log10(4π d f / c) [dB], d in km and f in MHz.

    Equals 32.45 + 20·log10(d_km) + 20·log10(f_MHz) with the exact c
    (the paper rounds the constant to 32.44, i.e. c = 3e8 m/s).
    """
    constant = 20.0 * math.log10(4.0 * math.pi * 1e3 * 1e6 / speed_of_light_m_s)
    return constant + 20.0 * np.log10(distance_km) + 20.0 * math.log10(frequency_mhz)


def noise_power_dbm(temperature_k: float, bandwidth_hz: float, model: str = "thermal") -> float:
    """Receiver noise power [dBm]: k·T·B ('thermal') or the paper's printed formula."""
    if model == "thermal":
        base = BOLTZMANN_DBM_PER_K_HZ
    elif model == "paper_as_printed":
        # Wrong on purpose: -174 dBm/Hz is k·290 K, and T is added again below.
        base = PAPER_NOISE_DBM_PER_HZ
    else:
        raise ValueError(f"unknown noise model {model!r}")
    return base + 10.0 * math.log10(temperature_k) + 10.0 * math.log10(bandwidth_hz)


def received_power_dbm(distance_km, cfg: LinkConfig):
    """P_r = P_t + G_t + G_r - FSPL(d, f) - L_sys [dBm]."""
    loss = fspl_db(distance_km, cfg.frequency_ghz * 1e3)
    return cfg.tx_power_dbm + cfg.tx_gain_dbi + cfg.rx_gain_dbi - loss - cfg.system_loss_db


def snr_db(distance_km, cfg: LinkConfig):
    """Signal-to-noise ratio at distance ``distance_km`` [dB]."""
    noise = noise_power_dbm(cfg.noise_temperature_k, cfg.bandwidth_mhz * 1e6, cfg.noise_model)
    return received_power_dbm(distance_km, cfg) - noise


def link_rate_bps(distance_km, cfg: LinkConfig):
    """Effective rate B·log2(1 + SNR)·(1 - δ) [bit/s]."""
    snr = 10.0 ** (snr_db(distance_km, cfg) / 10.0)
    return cfg.bandwidth_mhz * 1e6 * np.log2(1.0 + snr) * (1.0 - cfg.delta)


def propagation_delay_s(distance_km, speed_of_light_m_s: float = constants.c):
    """Light time d/c [s]."""
    return np.asarray(distance_km) * 1e3 / speed_of_light_m_s


def payload_bits(payload_kib: float) -> float:
    """S_bit = S·1024·8."""
    return payload_kib * 1024.0 * 8.0


def hop_delay_s(distance_km, payload_kib: float, cfg: LinkConfig, speed_of_light_m_s: float = constants.c):
    """t_hop = d/c + S_bit / B(d) [s]."""
    return propagation_delay_s(distance_km, speed_of_light_m_s) + payload_bits(payload_kib) / link_rate_bps(
        distance_km, cfg
    )

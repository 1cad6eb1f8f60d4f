"""Energy from counters and the architecture's price table (docs/timing-model.md, section 5).

Kept apart from the engines so that every engine, and every custom component, is priced the
same way: the engines count actions, this module alone turns actions into picojoules.
"""

from __future__ import annotations

import numpy as np

from .phase import C

# component -> (counter, price key, multiplier name or None)
COMPONENTS = ("mac", "ac", "sram_read", "sram_write", "queue", "noc", "neuron_update", "leakage")


def prices(arch) -> dict[str, float]:
    """pJ per counted action, per component."""
    e, W = arch["energy"], arch.get("sram.bank_width_bits")
    return {
        "mac": e["mac_pj"],
        "ac": e["ac_pj"],
        "sram_read": e["sram_read_pj_per_bit"] * W,  # per word read
        "sram_write": e["sram_write_pj_per_bit"] * W,
        "queue": e["queue_push_pj"] + e["queue_pop_pj"],  # per event through a queue
        "noc": e["noc_hop_pj_per_flit"],  # per flit-hop
        "neuron_update": e["neuron_update_pj"],
        "leakage": e["leakage_pj_per_pe_cycle"],  # per PE-cycle
    }


def energy_pj(counts: np.ndarray, cycles, n_pe: int, arch) -> dict[str, np.ndarray]:
    """Energy per component for counter rows `counts` (shape [..., N_COUNTERS]) lasting `cycles`."""
    p = prices(arch)
    counts = np.asarray(counts, dtype=np.float64)
    actions = {
        "mac": counts[..., C["macs"]],
        "ac": counts[..., C["acs"]],
        "sram_read": counts[..., C["sram_reads"]],
        "sram_write": counts[..., C["sram_writes"]],
        "queue": counts[..., C["events"]],
        "noc": counts[..., C["flit_hops"]],
        "neuron_update": counts[..., C["neuron_updates"]],
        "leakage": np.asarray(cycles, dtype=np.float64) * n_pe,
    }
    return {k: actions[k] * p[k] for k in COMPONENTS}

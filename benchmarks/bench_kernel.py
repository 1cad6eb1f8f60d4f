"""Speed of the fast engine's kernel on a synthetic but realistic op-by-op workload.

8x8 mesh, one linear op 144 -> 576 (9 output neurons per PE) per time step, 30 % of the 144
input channels active per step, every event multicast to all 64 PEs; 250 steps = 250 phases,
43 packets and 2,752 (packet, destination) interactions each (688,000 in all).

    pytest benchmarks/bench_kernel.py --benchmark-only

``test_run_batch_realistic_speed`` times ``fast.run_batch`` on the realistic workload (the
benchmark trace on archs/pe64.yaml, first 10 steps) and reports pairs/s and ns/pair.

The figure to track is interactions per second (``extra_info``); a full 10 s utterance is
about 68 M interactions.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.engines import fast
from hwsim.phase import MESH, Phase, Timing

ROWS = COLS = 8
N_PE = ROWS * COLS
IN_CH, OUT_CH = 144, 576
STEPS = 250
ACTIVE = 0.30


def _owner_blocks(n: int, p: int) -> np.ndarray:
    """Even split of n neurons over p PEs (the first n % p PEs get one more)."""
    owned = np.full(p, n // p)
    owned[: n % p] += 1
    return np.repeat(np.arange(p), owned)


def workload(seed: int = 0, steps: int = STEPS) -> list[Phase]:
    rng = np.random.default_rng(seed)
    src_of = _owner_blocks(IN_CH, N_PE)
    owned = np.bincount(_owner_blocks(OUT_CH, N_PE), minlength=N_PE)
    dests = np.flatnonzero(owned)
    weight_bits, state_bits, width, lanes = 8, 16, 64, 4
    reads_d = -(-owned[dests] * weight_bits // width)
    cycles_d = -(-owned[dests] // lanes)
    upd_reads = -(-owned * state_bits // width)
    phases = []
    for _ in range(steps):
        ch = np.sort(rng.choice(IN_CH, int(round(ACTIVE * IN_CH)), replace=False))
        K = len(ch)
        D = len(dests)
        phases.append(Phase(
            N_PE, src_of[ch], np.full(K, 1), np.arange(K + 1) * D, np.tile(dests, K),
            np.tile(reads_d, K), np.tile(cycles_d, K), np.tile(owned[dests], K),
            np.zeros(K * D, np.int64), upd_reads, upd_reads, owned * 2, np.zeros(N_PE, np.int64),
            owned))
    return phases


TIMINGS = {
    "private_sram": Timing(ROWS, COLS, MESH, queue_depth=16, decode_cycles=1, banks=4,
                           read_latency=1, sharing=1, hop_latency=1, credit_latency=1,
                           barrier_latency=4),
    "shared_sram_shallow_queue": Timing(ROWS, COLS, MESH, queue_depth=4, decode_cycles=1,
                                        banks=4, read_latency=2, sharing=2, hop_latency=1,
                                        credit_latency=2, barrier_latency=4),
}


@pytest.mark.parametrize("name", sorted(TIMINGS))
def test_run_phases_speed(benchmark, name):
    phases = workload()
    tm = TIMINGS[name]
    fast.run_phases(phases[:2], tm)  # compile / load the cache outside the timing
    res = benchmark(fast.run_phases, phases, tm)
    pairs = sum(len(p.dst) for p in phases)
    benchmark.extra_info["backend"] = fast.BACKEND
    benchmark.extra_info["interactions"] = pairs
    benchmark.extra_info["interactions_per_s"] = pairs / benchmark.stats.stats.mean
    benchmark.extra_info["total_cycles"] = int(sum(r.cycles for r in res))
    assert len(res) == STEPS


# --------------------------------------------------------------------------------------------
# The realistic workload: hwsim.synth.benchmark_trace() (12 layers, d_model 144) on
# archs/pe64.yaml, op_by_op, its first BENCH_STEPS time steps as one PhaseBatch (about 2.5 M
# (packet, destination) pairs for 10 steps; the full 250 steps are about 25x that).
# --------------------------------------------------------------------------------------------
BENCH_STEPS = 10


def realistic_batch(steps: int = BENCH_STEPS):
    from pathlib import Path

    from hwsim.arch import load_arch
    from hwsim.mapping import Mapping
    from hwsim.phase import PhaseBatch
    from hwsim.synth import benchmark_trace

    arch = load_arch(Path(__file__).resolve().parents[1] / "archs" / "pe64.yaml")
    mapping = Mapping(benchmark_trace(), arch)
    phases = [mapping.build(key) for key in mapping.phase_keys(steps)]
    return PhaseBatch.concat(phases), arch.timing()


@pytest.mark.parametrize("validate", [True, False])
def test_run_batch_realistic_speed(benchmark, validate):
    batch, tm = realistic_batch()
    fast.run_batch(batch, tm)  # compile / load the cache outside the timing
    cycles, _ = benchmark(fast.run_batch, batch, tm, validate=validate)
    pairs = len(batch.dst)
    benchmark.extra_info["backend"] = fast.BACKEND
    benchmark.extra_info["phases"] = batch.n_phases
    benchmark.extra_info["pairs"] = pairs
    benchmark.extra_info["pairs_per_s"] = pairs / benchmark.stats.stats.min
    benchmark.extra_info["ns_per_pair"] = benchmark.stats.stats.min / pairs * 1e9
    benchmark.extra_info["total_cycles"] = int(cycles.sum())
    assert len(cycles) == batch.n_phases

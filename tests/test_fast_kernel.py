"""The fast engine (hwsim/engines/fast.py): worked examples, conservation, backends, oracle.

* docs/timing-model.md section 6 (E1-E5): every counter of every PE, on the numba kernel and
  on the pure-Python path of the same source;
* conservation properties on random phases (hypothesis);
* numba == pure Python on random phases, in-process (``backend="python"``) and in a subprocess
  with ``HWSIM_DISABLE_NUMBA=1``;
* fast == detailed (the SimPy oracle) on random small phases and random Timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.engines import fast
from hwsim.phase import BUS, C, COUNTERS, CYCLE_CLASSES, MESH, Phase, Timing

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["python"] + (["numba"] if fast.BACKEND == "numba" else [])


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def timing(**kw) -> Timing:
    """The architecture of the worked examples (docs/timing-model.md section 6)."""
    d = dict(rows=1, cols=2, topology=MESH, queue_depth=4, decode_cycles=1, banks=2,
             read_latency=1, sharing=1, hop_latency=1, credit_latency=1, barrier_latency=2)
    d.update(kw)
    return Timing(**d)


def phase(n_pe, packets, **kw) -> Phase:
    """packets: (src, dests, reads, cycles, flits) with the same reads/cycles per destination."""
    src, fl, ptr, dst, rd, cy = [], [], [0], [], [], []
    for s, ds, r, c, f in packets:
        src.append(s)
        fl.append(f)
        dst += list(ds)
        rd += [r] * len(ds)
        cy += [c] * len(ds)
        ptr.append(len(dst))
    J = len(dst)
    z = np.zeros(n_pe, np.int64)
    return Phase(n_pe, src, fl, ptr, dst, rd, cy, np.zeros(J, np.int64), np.zeros(J, np.int64),
                 z, z, z, z, z, **kw)


def row(**counters) -> list[int]:
    return [counters.get(name, 0) for name in COUNTERS]


def check(result, cycles, rows):
    assert result.cycles == cycles
    want = np.array(rows, dtype=np.int64)
    assert result.pe.shape == want.shape
    bad = [(p, COUNTERS[c], int(result.pe[p, c]), int(want[p, c]))
           for p, c in np.argwhere(result.pe != want)]
    assert not bad, f"(PE, counter, got, want): {bad}"


# --------------------------------------------------------------------------------------------
# worked examples E1-E5
# --------------------------------------------------------------------------------------------
EXAMPLES = {
    "E1": (timing(), phase(2, [(0, [0], 2, 3, 1)]), 9, [
        row(compute=5, noc_wait=2, barrier=2, events=1, sram_reads=2, queue_hwm=1,
            packets_sent=1),
        row(idle=9),
    ]),
    "E2": (timing(), phase(2, [(0, [1], 2, 3, 1)]), 10, [
        row(idle=10, flit_hops=1, packets_sent=1),
        row(compute=5, noc_wait=3, barrier=2, events=1, sram_reads=2, queue_hwm=1),
    ]),
    "E3": (timing(queue_depth=1, credit_latency=2), phase(2, [(0, [0], 0, 1, 1)] * 3), 14, [
        row(compute=6, noc_wait=2, backpressure=4, barrier=2, events=3, queue_hwm=1,
            packets_sent=3, credit_wait=6),
        row(idle=14),
    ]),
    "E4": (timing(sharing=2), phase(2, [(0, [0], 4, 1, 1), (1, [1], 4, 1, 1)]), 10, [
        row(compute=4, noc_wait=2, barrier=4, events=1, sram_reads=4, queue_hwm=1,
            packets_sent=1),
        row(compute=4, sram_conflict=2, noc_wait=2, barrier=2, events=1, sram_reads=4,
            queue_hwm=1, packets_sent=1),
    ]),
    "E5": (timing(cols=3), phase(3, [(0, [2], 2, 3, 2), (1, [2], 2, 3, 2)]), 16, [
        row(idle=16, flit_hops=4, packets_sent=1),
        row(idle=16, flit_hops=2, packets_sent=1),
        row(compute=10, noc_wait=4, barrier=2, events=2, sram_reads=4, queue_hwm=1),
    ]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_worked_examples(name, backend):
    tm, ph, cycles, rows = EXAMPLES[name]
    check(fast.run_phase(ph, tm, backend=backend), cycles, rows)


@pytest.mark.parametrize("backend", BACKENDS)
def test_worked_examples_in_one_call(backend):
    """run_phases over different phases gives each phase's own result (no state leaks)."""
    tm = timing()
    names = ["E1", "E2", "E1", "E2"]
    res = fast.run_phases([EXAMPLES[n][1] for n in names], tm, backend=backend)
    for n, r in zip(names, res):
        check(r, EXAMPLES[n][2], EXAMPLES[n][3])


def test_empty_phase_and_update_only():
    tm = timing(barrier_latency=3)
    r = fast.run_phase(Phase.empty(2, extra_barrier=2), tm)
    check(r, 5, [row(idle=5), row(idle=5)])
    # an update-only PE: SRAM read of 4 words (2 cycles busy, +0 latency), then 3 cycles
    ph = Phase.empty(2)
    ph.upd_reads = np.array([0, 4])
    ph.upd_cycles = np.array([0, 3])
    ph.upd_writes = np.array([0, 4])
    ph.upd_macs = np.array([0, 7])
    ph.upd_neurons = np.array([0, 5])
    r = fast.run_phase(ph, tm)
    check(r, 8, [row(idle=8),
                 row(compute=5, barrier=3, macs=7, sram_reads=4, sram_writes=4,
                     neuron_updates=5)])


def test_bus_local_and_remote():
    """Bus: the source's own PE skips the bus; one bus transfer is one flit-hop per flit."""
    tm = timing(cols=3, topology=BUS)
    r = fast.run_phase(phase(3, [(1, [0, 1, 2], 0, 1, 2)]), tm)
    # sent 0; local ejection at 1 -> queue 3; bus granted 1, at destinations at 2,
    # ejection 2 -> queue 4; each core: decode 1 + 1 cycle
    assert r.counter("flit_hops").tolist() == [0, 2, 0]
    assert r.counter("noc_wait").tolist() == [4, 3, 4]
    assert r.cycles == 6 + 2


def test_multicast_tree_flit_hops():
    """XY multicast tree on a 3x3 mesh from the centre to the four corners: the row
    (2 links) plus both columns up and down (4 links) = 6 links."""
    tm = timing(rows=3, cols=3)
    r = fast.run_phase(phase(9, [(4, [0, 2, 6, 8], 0, 1, 3)]), tm)
    assert r.counter("flit_hops").tolist() == [0, 0, 0, 0, 18, 0, 0, 0, 0]
    assert r.counter("events").tolist() == [1, 0, 1, 0, 0, 0, 1, 0, 1]


def test_rejects_bad_input():
    from hwsim.errors import InputError
    with pytest.raises(InputError):
        fast.run_phase(Phase.empty(3), timing())
    with pytest.raises(InputError):
        fast.run_phase(phase(2, [(0, [1, 0], 0, 1, 1)]), timing())
    with pytest.raises(InputError):
        fast.run_phase(Phase.empty(2), timing(hop_latency=0))


# --------------------------------------------------------------------------------------------
# random phases
# --------------------------------------------------------------------------------------------
def random_timing(rng: np.random.Generator) -> Timing:
    while True:
        rows, cols = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        if rows * cols <= 16:
            break
    return Timing(rows, cols, int(rng.integers(2)), queue_depth=int(rng.integers(1, 9)),
                  decode_cycles=int(rng.integers(1, 4)), banks=int(rng.integers(1, 4)),
                  read_latency=int(rng.integers(1, 4)), sharing=int(rng.integers(1, 5)),
                  hop_latency=int(rng.integers(1, 4)), credit_latency=int(rng.integers(1, 4)),
                  barrier_latency=int(rng.integers(0, 4)))


def random_phase(rng: np.random.Generator, n: int, max_packets: int = 20) -> Phase:
    """Random packets: multicast to a shared destination set (like one op's PEs), to all,
    to none, or to a random set; random reads/cycles (including 0); random update work."""
    K = int(rng.integers(0, max_packets + 1))
    src = np.sort(rng.integers(0, n, K)) if rng.random() < 0.3 else rng.integers(0, n, K)
    ptr, dst = [0], []
    common = np.sort(rng.choice(n, int(rng.integers(1, n + 1)), replace=False))
    for _ in range(K):
        u = rng.random()
        if u < 0.4:
            ds = common
        elif u < 0.5:
            ds = np.arange(n)
        elif u < 0.55:
            ds = np.zeros(0, np.int64)
        else:
            ds = np.sort(rng.choice(n, int(rng.integers(1, n + 1)), replace=False))
        dst += [int(d) for d in ds]
        ptr.append(len(dst))
    J = len(dst)
    act = rng.random(n) < 0.5
    return Phase(n, src, rng.integers(1, 4, K), ptr, dst,
                 rng.integers(0, 6, J), rng.integers(0, 4, J), rng.integers(0, 5, J),
                 rng.integers(0, 5, J),
                 rng.integers(0, 5, n) * act, rng.integers(0, 5, n), rng.integers(0, 5, n) * act,
                 rng.integers(0, 4, n), rng.integers(0, 4, n),
                 extra_barrier=int(rng.integers(0, 3)))


SEEDS = st.integers(0, 2**32 - 1)
PROP = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@PROP
@given(seed=SEEDS)
def test_conservation(seed):
    rng = np.random.default_rng(seed)
    tm = random_timing(rng)
    ph = random_phase(rng, tm.n_pe, max_packets=int(rng.integers(0, 40)))
    r = fast.run_phase(ph, tm)
    pe = r.pe
    # every (packet, destination) pair is one event
    assert pe[:, C["events"]].sum() == len(ph.dst)
    assert np.array_equal(pe[:, C["events"]], np.bincount(ph.dst, minlength=tm.n_pe))
    # the six classes partition the phase for every PE
    classes = [C[c] for c in CYCLE_CLASSES]
    assert np.all(pe[:, classes].sum(axis=1) == r.cycles)
    assert np.all(pe >= 0)
    assert np.all(pe[:, C["queue_hwm"]] <= tm.queue_depth)
    assert np.all((pe[:, C["queue_hwm"]] > 0) == (pe[:, C["events"]] > 0))
    assert pe[:, C["packets_sent"]].sum() == len(ph.src)
    assert pe[:, C["macs"]].sum() == ph.macs.sum() + ph.upd_macs.sum()
    assert pe[:, C["acs"]].sum() == ph.acs.sum()
    busy = (ph.upd_cycles > 0) | (ph.upd_reads > 0)
    assert pe[:, C["sram_reads"]].sum() == ph.reads.sum() + ph.upd_reads[busy].sum()
    assert r.cycles >= tm.barrier_latency + ph.extra_barrier


@PROP
@given(seed=SEEDS)
def test_numba_equals_python(seed):
    if fast.BACKEND != "numba":
        pytest.skip("numba not available")
    rng = np.random.default_rng(seed)
    tm = random_timing(rng)
    phases = [random_phase(rng, tm.n_pe, max_packets=int(rng.integers(0, 40)))
              for _ in range(3)]
    a = fast.run_phases(phases, tm, backend="numba")
    b = fast.run_phases(phases, tm, backend="python")
    for x, y in zip(a, b):
        assert x == y, x.diff(y)


def test_kernel_compiles_without_wraparound():
    """The kernel is compiled without numba's negative-index wraparound (a third of its time):
    checked on a one-line function, because the kernel itself never indexes below 0. If a numba
    version stops honouring the replaced index fix-up, this fails (the speed is gone, not the
    results)."""
    if fast.BACKEND != "numba":
        pytest.skip("numba not available")
    import numba

    from hwsim.engines import _kernel

    def at(a, i):
        return a[i]

    whole = np.arange(5)
    view = whole[1:]
    assert numba.njit(at)(view, -1) == 4  # numba as usual: wraps to the end
    assert _kernel._without_wraparound(numba.njit(at))(view, -1) == 0  # the word before view
    assert _kernel.run_many.__wrapped__ is not _kernel.run_many  # the kernel goes through it


def test_overflow_heap_and_long_phases():
    """Work far beyond the bucket ring (long compute) goes through the overflow heap."""
    tm = timing(queue_depth=2)
    ph = phase(2, [(0, [0, 1], 3, 5000, 1), (1, [0, 1], 1, 7000, 2), (0, [1], 0, 3, 1)])
    for b in BACKENDS:
        r = fast.run_phase(ph, tm, backend=b)
        assert np.all(r.pe[:, :6].sum(axis=1) == r.cycles)
    assert fast.run_phase(ph, tm, backend="python") == fast.run_phase(ph, tm)


_SUBPROCESS = """
import json, sys
sys.path.insert(0, {tests!r})
import numpy as np
from test_fast_kernel import random_phase, random_timing
from hwsim.engines import fast
out = {{"backend": fast.BACKEND, "results": []}}
for seed in range(40):
    rng = np.random.default_rng(seed)
    tm = random_timing(rng)
    phases = [random_phase(rng, tm.n_pe) for _ in range(2)]
    out["results"].append([[r.cycles, r.pe.tolist()] for r in fast.run_phases(phases, tm)])
print(json.dumps(out))
"""


def test_disable_numba_env_gives_same_results():
    """HWSIM_DISABLE_NUMBA=1 selects the pure path, which gives the same counters."""
    env = dict(os.environ, HWSIM_DISABLE_NUMBA="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    code = _SUBPROCESS.format(tests=str(Path(__file__).resolve().parent))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600, check=True)
    got = json.loads(done.stdout)
    assert got["backend"] == "python"
    for seed in range(40):
        rng = np.random.default_rng(seed)
        tm = random_timing(rng)
        phases = [random_phase(rng, tm.n_pe) for _ in range(2)]
        mine = [[r.cycles, r.pe.tolist()] for r in fast.run_phases(phases, tm)]
        assert mine == got["results"][seed], f"seed {seed}"


# --------------------------------------------------------------------------------------------
# fast == detailed (the SimPy oracle)
# --------------------------------------------------------------------------------------------
try:
    from hwsim.engines import detailed
except ImportError:  # pragma: no cover - the detailed engine is another module of the project
    detailed = None

needs_detailed = pytest.mark.skipif(detailed is None, reason="hwsim.engines.detailed missing")


@st.composite
def timings(draw):
    rows = draw(st.integers(1, 4))
    cols = draw(st.integers(1, 16 // rows))
    return Timing(rows, cols, draw(st.sampled_from([MESH, BUS])),
                  queue_depth=draw(st.integers(1, 8)), decode_cycles=draw(st.integers(1, 3)),
                  banks=draw(st.integers(1, 3)), read_latency=draw(st.integers(1, 3)),
                  sharing=draw(st.integers(1, 4)), hop_latency=draw(st.integers(1, 3)),
                  credit_latency=draw(st.integers(1, 3)),
                  barrier_latency=draw(st.integers(0, 3)))


@st.composite
def phases_for(draw, n):
    K = draw(st.integers(0, 14))
    common = sorted(draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n)))
    src, flits, ptr, dst = [], [], [0], []
    for _ in range(K):
        src.append(draw(st.integers(0, n - 1)))
        flits.append(draw(st.integers(1, 3)))
        kind = draw(st.sampled_from(["common", "all", "random", "none"]))
        if kind == "common":
            ds = common
        elif kind == "all":
            ds = list(range(n))
        elif kind == "none":
            ds = []
        else:
            ds = sorted(draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n)))
        dst += ds
        ptr.append(len(dst))
    J = len(dst)
    small = st.integers(0, 5)
    arr = lambda m, s=small: draw(st.lists(s, min_size=m, max_size=m))  # noqa: E731
    upd = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    ur = [x if u else 0 for x, u in zip(arr(n), upd)]
    uc = [x if u else 0 for x, u in zip(arr(n), upd)]
    return Phase(n, src, flits, ptr, dst, arr(J), arr(J, st.integers(0, 4)), arr(J), arr(J),
                 ur, arr(n), uc, arr(n), arr(n), extra_barrier=draw(st.integers(0, 2)))


@needs_detailed
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_equals_detailed(data):
    tm = data.draw(timings())
    ph = data.draw(phases_for(tm.n_pe))
    a = fast.run_phase(ph, tm)
    b = detailed.run_phase(ph, tm)
    assert a == b, a.diff(b)


@needs_detailed
@pytest.mark.parametrize("seed", range(6))
def test_fast_equals_detailed_congested(seed):
    """Heavier multicast back-pressure (many packets, shallow queues) than hypothesis draws."""
    rng = np.random.default_rng(1000 + seed)
    for _ in range(10):
        tm = random_timing(rng)
        ph = random_phase(rng, tm.n_pe, max_packets=60)
        a = fast.run_phase(ph, tm)
        b = detailed.run_phase(ph, tm)
        assert a == b, a.diff(b)


# --------------------------------------------------------------------------------------------
# the lean kernel (private SRAMs) under the conditions its shortcuts rely on
# --------------------------------------------------------------------------------------------
def lean_case(seed: int) -> tuple[Timing, Phase]:
    """Private SRAMs (the lean kernel), with deeper congestion, multicast off and bus mixed in."""
    rng = np.random.default_rng(seed)
    tm = random_timing(rng)
    kw = {**tm.__dict__, "sharing": 1}
    if rng.random() < 0.4:  # shallow queues: back-pressure on most packets
        kw["queue_depth"] = int(rng.integers(1, 3))
    tm = Timing(**kw)
    ph = random_phase(rng, tm.n_pe, max_packets=int(rng.choice([8, 30, 80])))
    if rng.random() < 0.3:  # multicast off: one unicast packet per destination, in order
        cnt = np.diff(ph.dst_ptr)
        J = len(ph.dst)
        ph = Phase(ph.n_pe, np.repeat(ph.src, cnt), np.repeat(ph.flits, cnt), np.arange(J + 1),
                   ph.dst, ph.reads, ph.cycles, ph.macs, ph.acs, ph.upd_reads, ph.upd_writes,
                   ph.upd_cycles, ph.upd_macs, ph.upd_neurons, extra_barrier=ph.extra_barrier)
    return tm, ph


@needs_detailed
@pytest.mark.parametrize("block", range(8))
def test_fast_equals_detailed_private_sram(block):
    """The lean kernel (sharing == 1: lazy credits, cores served at their ejection, heads
    ordered per router) against the oracle: mesh and bus, shallow queues, multicast off."""
    for seed in range(2000 + 40 * block, 2000 + 40 * (block + 1)):
        tm, ph = lean_case(seed)
        a = fast.run_phase(ph, tm)
        b = detailed.run_phase(ph, tm)
        assert a == b, f"seed {seed}: {a.diff(b)}"


def one_set_case(seed: int) -> tuple[Timing, Phase]:
    """Every packet to the same destinations (a linear op's phase: all PEs, or some), more packets
    than a queue holds, private SRAMs: the lean kernel's one-destination-set credit check."""
    rng = np.random.default_rng(seed)
    tm = random_timing(rng)
    tm = Timing(**{**tm.__dict__, "sharing": 1, "queue_depth": int(rng.integers(1, 5))})
    n = tm.n_pe
    ds = np.arange(n) if rng.random() < 0.5 else np.sort(
        rng.choice(n, int(rng.integers(1, n + 1)), replace=False))
    K = int(rng.integers(tm.queue_depth + 1, 4 * tm.queue_depth + 12))
    J = K * len(ds)
    src = np.sort(rng.integers(0, n, K)) if rng.random() < 0.3 else rng.integers(0, n, K)
    flits = np.full(K, int(rng.integers(1, 3))) if rng.random() < 0.7 else rng.integers(1, 4, K)
    act = rng.random(n) < 0.5
    return tm, Phase(n, src, flits, np.arange(K + 1) * len(ds), np.tile(ds, K),
                     rng.integers(0, 6, J), rng.integers(0, 4, J), rng.integers(0, 5, J),
                     rng.integers(0, 5, J), rng.integers(0, 5, n) * act, rng.integers(0, 5, n),
                     rng.integers(0, 5, n) * act, rng.integers(0, 4, n), rng.integers(0, 4, n))


@needs_detailed
@pytest.mark.parametrize("block", range(4))
def test_fast_equals_detailed_one_destination_set(block):
    """Phases whose packets all share their destinations (linear ops) take a credit check of
    their own in the lean kernel: against the oracle, mesh and bus, queues 1-4 deep."""
    for seed in range(5000 + 50 * block, 5000 + 50 * (block + 1)):
        tm, ph = one_set_case(seed)
        a = fast.run_phase(ph, tm)
        b = detailed.run_phase(ph, tm)
        assert a == b, f"seed {seed}: {a.diff(b)}"


@needs_detailed
def test_fast_equals_detailed_benchmark_trace_first_ops():
    """The realistic workload (hwsim.synth.benchmark_trace on archs/pe64.yaml): the first
    layer's phases of step 0, and the same with shared SRAMs (the general kernel)."""
    import dataclasses

    from hwsim.arch import load_arch
    from hwsim.mapping import Mapping
    from hwsim.synth import benchmark_trace

    arch = load_arch(ROOT / "archs" / "pe64.yaml")
    m = Mapping(benchmark_trace(steps=1), arch)
    phases = [m.build(k) for k in m.phase_keys(1)[:9]]
    tm = arch.timing()
    for t in (tm, dataclasses.replace(tm, sharing=2, queue_depth=8)):
        got = fast.run_phases(phases, t)
        for ph, r in zip(phases, got):
            want = detailed.run_phase(ph, t)
            assert r == want, f"{ph.label} sharing {t.sharing}: {r.diff(want)}"


# --------------------------------------------------------------------------------------------
# run_batch: a PhaseBatch in, (cycles, counters) arrays out
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sharing", [1, 3])
def test_run_batch_equals_run_phases(backend, sharing):
    from hwsim.phase import PhaseBatch
    rng = np.random.default_rng(7 + sharing)
    for _ in range(6):
        tm = random_timing(rng)
        tm = Timing(**{**tm.__dict__, "sharing": sharing})
        phases = [random_phase(rng, tm.n_pe, max_packets=30) for _ in range(5)]
        cycles, counters = fast.run_batch(PhaseBatch.concat(phases), tm, backend=backend)
        assert cycles.dtype == np.int64 and counters.dtype == np.int64
        assert counters.shape == (5, tm.n_pe, len(COUNTERS))
        for i, r in enumerate(fast.run_phases(phases, tm, backend=backend)):
            assert cycles[i] == r.cycles
            assert np.array_equal(counters[i], r.pe)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sharing", [1, 3])
def test_folded_batch_equals_numpy_fold(backend, sharing):
    """The kernel folds each phase into a run's rows and per-step totals as it ends; that must
    be hwsim.runner.fold of the per-PE counters (sums, high-water maxima, sync), steps of
    several phases and empty steps included."""
    from hwsim.phase import PhaseBatch
    from hwsim.runner import fold
    rng = np.random.default_rng(11 + sharing)
    for _ in range(4):
        tm = random_timing(rng)
        tm = Timing(**{**tm.__dict__, "sharing": sharing})
        phases = [random_phase(rng, tm.n_pe, max_packets=25) for _ in range(7)]
        batch = PhaseBatch.concat(phases)
        slot = np.sort(rng.integers(0, 4, size=7))
        cycles, counters = fast.run_batch(batch, tm, backend=backend)
        got = fast.run_batch_folded(batch, tm, slot, 4, backend=backend)
        want = fold(counters, batch.extra_barrier, slot, 4, tm.barrier_latency)
        assert np.array_equal(got[0], cycles)
        assert np.array_equal(got[1], want[0]) and np.array_equal(got[2], want[1])
        assert got[2][..., -1].sum() > 0  # sync is counted (non-idle PEs exist)


@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_phases_simulated_once(backend):
    """A run simulates identical phases once (``copies``: Mapping.distinct); folding one phase
    into all its copies must give exactly what simulating every copy gives: cycles and rows for
    each, counters in each copy's step, whatever the steps; a phase with no copy adds nothing."""
    from hwsim.phase import PhaseBatch
    rng = np.random.default_rng(5)
    for _ in range(4):
        tm = random_timing(rng)
        phases = [random_phase(rng, tm.n_pe, max_packets=25) for _ in range(4)]
        copies = rng.integers(0, 3, size=9)  # phase 3 is never copied
        slot = np.sort(rng.integers(0, 5, size=9))
        want = fast.run_batch_folded(PhaseBatch.concat([phases[c] for c in copies]), tm, slot, 5,
                                     backend=backend)
        got = fast.run_batch_folded(PhaseBatch.concat(phases), tm, slot, 5, copies=copies,
                                    backend=backend)
        assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_run_batch_empty_and_rejects_bad_input():
    from hwsim.errors import InputError
    from hwsim.phase import PhaseBatch
    tm = timing()
    cycles, counters = fast.run_batch(PhaseBatch.concat([]), tm)
    assert cycles.shape == (0,) and counters.shape == (0, 2, len(COUNTERS))
    good = PhaseBatch.concat([phase(2, [(0, [0, 1], 1, 1, 1)]), phase(2, [(1, [0], 1, 1, 1)])])
    fast.run_batch(good, tm)
    bad = PhaseBatch.concat([phase(2, [(0, [1, 0], 1, 1, 1)])])
    with pytest.raises(InputError, match="increasing"):
        fast.run_batch(bad, tm)
    bad = PhaseBatch.concat([phase(2, [(0, [1], 1, 1, 0)])])
    with pytest.raises(InputError, match="flits"):
        fast.run_batch(bad, tm)
    bad = PhaseBatch.concat([phase(2, [(0, [1], 1, 1, 1)])])
    bad.dst = bad.dst + 5
    with pytest.raises(InputError, match="dst"):
        fast.run_batch(bad, tm)
    with pytest.raises(InputError, match="n_pe"):
        fast.run_batch(PhaseBatch.concat([Phase.empty(3)]), tm)


# --------------------------------------------------------------------------------------------
# mutation test: the equality check against the oracle catches planted kernel faults
# --------------------------------------------------------------------------------------------
FAULTS = {
    "flipped tie-break between sources": (fast._kernel.FAULT_TIEBREAK, 1),
    "credit returned one cycle early": (fast._kernel.FAULT_CREDIT_EARLY, 1),
    "SRAM latency off by one (private SRAM)": (fast._kernel.FAULT_SRAM_LATENCY, 1),
    "SRAM latency off by one (shared SRAM)": (fast._kernel.FAULT_SRAM_LATENCY, 2),
    "ejection port free one cycle early": (fast._kernel.FAULT_PORT_FREE, 1),
}


def _mutation_cases(sharing: int) -> list[tuple[Timing, Phase]]:
    cases = []
    for seed in range(40):
        tm, ph = lean_case(5000 + seed)
        cases.append((Timing(**{**tm.__dict__, "sharing": sharing}), ph))
    return cases


@needs_detailed
@pytest.mark.parametrize("name", sorted(FAULTS))
def test_equality_check_catches_planted_faults(name):
    """Each planted fault makes fast != detailed on at least one of a fixed set of phases,
    while the unmutated kernel is equal on all of them (so the equality tests can fail)."""
    fault, sharing = FAULTS[name]
    caught = 0
    for tm, ph in _mutation_cases(sharing):
        want = detailed.run_phase(ph, tm)
        assert fast.run_phase(ph, tm) == want
        if fast.run_phase(ph, tm, _fault=fault) != want:
            caught += 1
    assert caught > 0, f"planted fault not detected: {name}"


def test_planted_fault_is_seen_by_the_pure_python_path_too():
    """The fault flag is a run-time argument: the pure-Python copy honours it identically."""
    tm, ph = lean_case(5003)
    for fault, _ in FAULTS.values():
        a = fast.run_phase(ph, tm, _fault=fault)
        b = fast.run_phase(ph, tm, _fault=fault, backend="python")
        assert a == b, a.diff(b)


def test_run_batch_compact_form():
    """A batch whose pair arrays are shared per-channel tables (pair_lo) gives the same."""
    from hwsim.phase import PhaseBatch
    if "pair_lo" not in PhaseBatch.__dataclass_fields__:
        pytest.skip("PhaseBatch has no compact form")
    rng = np.random.default_rng(11)
    tm = timing(rows=2, cols=3)
    phases = [random_phase(rng, tm.n_pe, max_packets=20) for _ in range(4)]
    full = PhaseBatch.concat(phases)
    # compact: every pair row stored once more, in reverse, and addressed through pair_lo
    J = len(full.dst)
    rev = lambda a: a[::-1].copy()  # noqa: E731
    lo = (J - full.dst_ptr[1:]).astype(np.int64)
    import dataclasses
    compact = dataclasses.replace(full, dst=rev(full.dst), reads=rev(full.reads),
                                  cycles=rev(full.cycles), macs=rev(full.macs), acs=rev(full.acs),
                                  pair_lo=lo)
    # reversed rows reverse each packet's destinations: rebuild them increasing
    if not np.array_equal(compact.materialize().dst, full.dst):
        rows = full.pair_rows()
        compact = dataclasses.replace(full, pair_lo=full.dst_ptr[:-1].copy())
        assert np.array_equal(compact.materialize().dst, full.dst[rows])
    a = fast.run_batch(compact, tm)
    b = fast.run_batch(full, tm)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])

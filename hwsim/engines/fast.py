"""The fast engine: a compiled, time-ordered kernel for docs/timing-model.md.

``run_phase(phase, timing)`` and ``run_phases(phases, timing)`` return the same
:class:`~hwsim.phase.PhaseResult` as the detailed engine, counter for counter and cycle for
cycle. ``run_phases`` concatenates many phases into one kernel call; ``run_batch(batch, timing)``
takes a :class:`~hwsim.phase.PhaseBatch` (already concatenated) and returns plain arrays
``(cycles [n], counters [n, n_pe, len(COUNTERS)])`` without per-phase Python objects, and
``run_batch_folded`` returns only what a run keeps of them (``hwsim.runner.fold``): the hot path
of a full utterance. The kernel (:mod:`hwsim.engines._kernel`) is compiled with numba when it is
available; with ``HWSIM_DISABLE_NUMBA=1`` (or without numba) the same source runs as plain
Python, slower but never different. ``BACKEND`` says which; ``backend="python"`` forces the
pure path for one call (used by the tests to compare the two).
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np

from hwsim.engines import _kernel
from hwsim.errors import InputError
from hwsim.phase import (BUS, COUNTERS, MESH, N_COUNTERS, Phase, PhaseBatch, PhaseResult, Timing,
                         _i64)

BACKEND = _kernel.BACKEND

# The kernel's counter columns must be the contract's.
assert N_COUNTERS == _kernel.N_COUNTERS
assert COUNTERS.index("compute") == _kernel.C_COMPUTE
assert COUNTERS.index("idle") == _kernel.C_IDLE
assert COUNTERS.index("queue_hwm") == _kernel.C_HWM
assert COUNTERS.index("neuron_updates") == _kernel.C_NEUR
assert COUNTERS.index("sram_reads") == _kernel.C_READS
assert COUNTERS.index("flit_hops") == _kernel.C_FLITS
assert COUNTERS.index("credit_wait") == _kernel.C_CW

RING_BITS = 12  # 4096 cycle buckets; work further ahead waits in an overflow heap

_pure_module = None


def _pure_kernel():
    """A second copy of the kernel module with numba off (same source, plain Python)."""
    global _pure_module
    if _kernel.BACKEND == "python":
        return _kernel
    if _pure_module is None:
        name = "hwsim.engines._kernel_pure"
        spec = importlib.util.spec_from_file_location(name, _kernel.__file__)
        mod = importlib.util.module_from_spec(spec)
        mod.__dict__["_HWSIM_PURE"] = True
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        assert mod.BACKEND == "python"
        _pure_module = mod
    return _pure_module


def _check_timing(timing: Timing) -> np.ndarray:
    tim = timing.as_array()
    if timing.topology not in (MESH, BUS):
        raise InputError(f"timing.topology: expected MESH (0) or BUS (1), got {timing.topology}")
    for name, lo in (("rows", 1), ("cols", 1), ("queue_depth", 1), ("decode_cycles", 1),
                     ("banks", 1), ("read_latency", 1), ("sharing", 1), ("hop_latency", 1),
                     ("credit_latency", 1), ("barrier_latency", 0)):
        v = getattr(timing, name)
        if int(v) != v or v < lo:
            raise InputError(f"timing.{name}: expected an integer >= {lo}, got {v!r}")
    return tim


def _check_batch(b: PhaseBatch, n_pe: int, where: str = "batch") -> None:
    """Vectorised checks of a whole batch (a few numpy passes, no per-phase Python); errors
    start with `where`."""
    n = len(b.k_off) - 1
    if b.n_pe != n_pe and n > 0:
        raise InputError(f"{where}: n_pe {b.n_pe} != timing rows*cols {n_pe}")
    if n < 0 or b.k_off[0] != 0 or np.any(np.diff(b.k_off) < 0):
        raise InputError(f"{where}: k_off must rise from 0")
    K = int(b.k_off[-1])
    if (len(b.src) != K or len(b.flits) != K or len(b.dst_ptr) != K + 1
            or len(b.op_of) not in (0, K)):
        raise InputError(f"{where}: src, flits and dst_ptr must have K, K and K+1 entries")
    J = len(b.dst)
    if b.dst_ptr[0] != 0 or b.dst_ptr[-1] != J or np.any(np.diff(b.dst_ptr) < 0):
        raise InputError(f"{where}: dst_ptr must rise from 0 to len(dst)")
    for name in ("reads", "cycles", "macs", "acs"):
        a = getattr(b, name)
        if len(a) != J or (J and a.min() < 0):
            raise InputError(f"{where}: {name} must have one entry >= 0 per (packet, destination)")
    for name in ("upd_reads", "upd_writes", "upd_cycles", "upd_macs", "upd_neurons"):
        a = getattr(b, name)
        if a.shape != (n, n_pe) or (a.size and a.min() < 0):
            raise InputError(f"{where}: {name} must be [n_phases, n_pe], entries >= 0")
    if len(b.extra_barrier) != n or (n and b.extra_barrier.min() < 0):
        raise InputError(f"{where}: extra_barrier must have one entry >= 0 per phase")
    if K:
        if b.src.min() < 0 or b.src.max() >= n_pe:
            raise InputError(f"{where}: src out of range 0..{n_pe - 1}")
        if b.flits.min() < 1:
            raise InputError(f"{where}: flits must be >= 1")
    if J:
        if b.dst.min() < 0 or b.dst.max() >= n_pe:
            raise InputError(f"{where}: dst out of range 0..{n_pe - 1}")
        # strictly increasing within each packet: a non-increase only where a packet starts
        bad = np.flatnonzero(np.diff(b.dst) <= 0) + 1
        if len(bad):
            first = np.zeros(J + 1, bool)
            first[b.dst_ptr] = True  # pairs that start a packet
            if not first[bad].all():
                raise InputError(f"{where}: destinations of a packet must be strictly increasing")


def _check_compact(b: PhaseBatch) -> None:
    """A compact batch's packets must point inside its pair tables."""
    if b.pair_lo is None:
        return
    rows = len(b.dst)
    if any(len(getattr(b, f)) != rows for f in ("reads", "cycles", "macs", "acs")):
        raise InputError("batch: the pair tables dst, reads, cycles, macs, acs differ in length")
    if len(b.pair_lo) != len(b.src) or len(b.dst_ptr) != len(b.src) + 1:
        raise InputError("batch: pair_lo and dst_ptr must have K and K+1 entries")
    count = np.diff(b.dst_ptr)
    if len(count) and (b.pair_lo.min() < 0 or (b.pair_lo + count).max() > rows):
        raise InputError(f"batch: pair_lo points outside the pair tables (0..{rows - 1})")


def _kernel_for(backend: str | None):
    if backend not in (None, "python", "numba"):
        raise ValueError(f"backend must be 'numba' or 'python', got {backend!r}")
    if backend == "numba" and _kernel.BACKEND != "numba":
        raise RuntimeError("numba backend requested but numba is unavailable or disabled")
    return _pure_kernel() if backend == "python" else _kernel


def _run(kern, tim, n, n_pe, arrays, fault=0, fold=None):
    """One kernel call. ``fold``: None for per-PE counters [n * n_pe, N]; or ``(slot, n_slots,
    sync_latency, copies)`` for what a run keeps, (rows, step totals) (``hwsim.runner.fold``),
    of the ``len(slot)`` phases that the n simulated ones stand for (phase q is a copy of
    simulated phase ``copies[q]``)."""
    if fold is None:
        pcs = np.zeros(n, np.int64)
        out = np.zeros((n * n_pe, N_COUNTERS), np.int64)
        rows = np.zeros((0, N_COUNTERS + 1), np.int64)
        stp = np.zeros((0, n_pe, N_COUNTERS + 1), np.int64)
        slot, sync, same_ptr, same = (np.zeros(n, np.int64), 0, np.zeros(1, np.int64),
                                        np.zeros(0, np.int64))
    else:
        slot, n_slots, sync, copies = fold
        pcs = np.zeros(len(slot), np.int64)
        out = np.zeros((n_pe, N_COUNTERS), np.int64)  # one phase's scratch
        rows = np.zeros((len(slot), N_COUNTERS + 1), np.int64)
        stp = np.zeros((n_slots, n_pe, N_COUNTERS + 1), np.int64)
        copies = np.arange(n, dtype=np.int64) if copies is None else _i64(copies)
        same = np.argsort(copies, kind="stable").astype(np.int64)  # grouped by simulated phase
        same_ptr = np.searchsorted(copies[same], np.arange(n + 1)).astype(np.int64)
    status = kern.run_many(tim, *arrays, out, pcs, rows, stp, _i64(slot), same_ptr, same,
                           int(sync), RING_BITS, fault)
    if status != 0:  # pragma: no cover - internal consistency guard
        raise RuntimeError(f"fast engine: phase {status - 1} did not complete (kernel bug)")
    return pcs, (out.reshape(n, n_pe, N_COUNTERS) if fold is None else (rows, stp))


def _prepare(batch: PhaseBatch, timing: Timing, validate: bool):
    """The timing vector and the kernel's arrays of a batch (None for an empty batch)."""
    tim = _check_timing(timing)
    n_pe = timing.n_pe
    if n_pe >= 1 << 16:
        raise InputError(f"timing: {n_pe} PEs; the fast engine supports fewer than 65536")
    b = batch
    if len(b.k_off) <= 1:
        return tim, None
    if validate:
        _check_compact(b)
        _check_batch(b.materialize(), n_pe)
    pair_lo = b.dst_ptr[:-1] if b.pair_lo is None else b.pair_lo
    return tim, [_i64(x) for x in (b.k_off, b.dst_ptr, pair_lo, b.src, b.flits, b.dst, b.reads,
                                   b.cycles, b.macs, b.acs)] + [
        _i64(x).ravel() for x in (b.upd_reads, b.upd_writes, b.upd_cycles, b.upd_macs,
                                  b.upd_neurons, b.extra_barrier)]


def run_batch(batch: PhaseBatch, timing: Timing, *, backend: str | None = None,
              validate: bool = True, _fault: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Simulate every phase of a :class:`~hwsim.phase.PhaseBatch` in one kernel call.

    Returns ``(cycles int64[n_phases], counters int64[n_phases, n_pe, len(COUNTERS)])``,
    the same numbers as :func:`run_phases` on ``batch.phase(i)``, without building per-phase
    objects. Validation is a few vectorised numpy passes over the batch (expanded first when
    it is compact). The kernel reads compact batches (``pair_lo`` set) as they are.
    (``_fault`` plants a deliberate kernel bug, for the mutation tests only.)"""
    tim, arrays = _prepare(batch, timing, validate)
    if arrays is None:
        return np.zeros(0, np.int64), np.zeros((0, timing.n_pe, N_COUNTERS), np.int64)
    return _run(_kernel_for(backend), tim, batch.n_phases, timing.n_pe, arrays, _fault)


def run_batch_folded(batch: PhaseBatch, timing: Timing, slot: np.ndarray, n_slots: int, *,
                     copies: np.ndarray | None = None, backend: str | None = None,
                     validate: bool = True):
    """:func:`run_batch` folded as the phases end, into what a run keeps
    (``hwsim.runner.fold`` says what, in numpy): ``(cycles [m], rows [m, N + 1], step totals
    [n_slots, n_pe, N + 1])``, phase q belonging to step ``slot[q]``. It spares a run the
    per-PE counters of every phase (16 MB for 2048 phases on 64 PEs) and their reduction.

    ``copies`` (``[m]``, default ``arange(n)``): the m phases that the batch's n stand for,
    phase q being identical to the batch's phase ``copies[q]`` (``Mapping.distinct``), which is
    simulated once."""
    if copies is not None and len(copies) != len(slot):
        raise InputError(f"copies: {len(copies)} entries for {len(slot)} phases in slot")
    if copies is not None and len(copies) and (
            np.min(copies) < 0 or np.max(copies) >= batch.n_phases):
        raise InputError(f"copies: phase indices must lie in 0..{batch.n_phases - 1}")
    tim, arrays = _prepare(batch, timing, validate)
    if arrays is None:
        return (np.zeros(0, np.int64), np.zeros((0, N_COUNTERS + 1), np.int64),
                np.zeros((n_slots, timing.n_pe, N_COUNTERS + 1), np.int64))
    pcs, (rows, stp) = _run(_kernel_for(backend), tim, batch.n_phases, timing.n_pe, arrays,
                            fold=(slot, n_slots, timing.barrier_latency, copies))
    return pcs, rows, stp


def run_phases(phases: list[Phase], timing: Timing, *, backend: str | None = None,
               validate: bool = True, _fault: int = 0) -> list[PhaseResult]:
    """Simulate many phases (independent, each from empty queues) in one kernel call."""
    n_pe = timing.n_pe
    if validate:  # per phase, so that a message names the phase that is wrong
        for i, ph in enumerate(phases):
            where = f"phase {i}" + (f" ({ph.label})" if ph.label else "")
            _check_batch(PhaseBatch.concat([ph]), n_pe, where)
    if not phases:
        _check_timing(timing)
        return []
    pcs, out = run_batch(PhaseBatch.concat(phases), timing, backend=backend, validate=False,
                         _fault=_fault)
    return [PhaseResult(int(c), pe) for c, pe in zip(pcs, out)]


def run_phase(phase: Phase, timing: Timing, *, backend: str | None = None,
              _fault: int = 0) -> PhaseResult:
    """Simulate one phase (docs/timing-model.md) and return its per-PE counters."""
    return run_phases([phase], timing, backend=backend, _fault=_fault)[0]

"""Run a trace on an architecture: map it, run every phase on an engine, gather the counters.

SimPy is the orchestrator (a controller process that opens each phase and waits out its
barrier); the engine computes what happens inside a phase. Phases are independent given the
barrier, so `jobs > 1` farms contiguous runs of phases out to a process pool and gets the same
numbers.
"""

from __future__ import annotations

import importlib
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import simpy
from tqdm.auto import tqdm

from .components import registry
from .errors import InputError
from .mapping import Mapping
from .phase import COUNTERS, N_COUNTERS, PhaseBatch

# What a run accumulates: the engines' counters plus `sync`, the part of each PE's barrier wait
# that is the barrier's own latency (the rest of `barrier` is load imbalance).
RUN_COUNTERS = COUNTERS + ("sync",)
R = {name: i for i, name in enumerate(RUN_COUNTERS)}
from .trace import Trace

ENGINES = ("fast", "detailed")
# per-op static counts gathered from the phases' (packet, destination) arrays
OP_COUNTS = ("events", "deliveries", "macs", "acs", "sram_reads")


@dataclass
class Accumulator:
    """Everything a run keeps: per-phase rows and per-PE, per-step and per-op totals.

    Holding sums instead of every phase's per-PE matrix keeps a full utterance in a few MB.
    """

    n_pe: int
    n_ops: int
    steps: int
    keys: list = field(default_factory=list)  # (step, op or None) per phase
    cycles: list = field(default_factory=list)  # arrays of phase cycles, one per batch
    rows: list = field(default_factory=list)  # arrays [n, N]: counters summed over PEs
    pe: np.ndarray = None  # [n_pe, N] over all phases (hwm: max)
    step_pe: np.ndarray = None  # [steps, n_pe, N] (hwm: max)
    op: np.ndarray = None  # [n_ops, len(OP_COUNTS)]
    op_phase: np.ndarray = None  # [n_ops, N]: counters of the op's own phases (op_by_op only)
    op_cycles: np.ndarray = None  # [n_ops]

    def __post_init__(self):
        z = np.zeros
        self.pe = z((self.n_pe, len(RUN_COUNTERS)), np.int64)
        self.step_pe = z((self.steps, self.n_pe, len(RUN_COUNTERS)), np.int64)
        self.op = z((self.n_ops, len(OP_COUNTS)), np.int64)
        self.op_phase = z((self.n_ops, len(RUN_COUNTERS)), np.int64)
        self.op_cycles = z(self.n_ops, np.int64)

    def add(self, keys, batch: PhaseBatch, cycles: np.ndarray, counters: np.ndarray,
            barrier_latency: int, op_counts: np.ndarray):
        """Take in a batch's results: cycles [n], counters [n, n_pe, N], and the batch's static
        per-op counts [n_ops, len(OP_COUNTS)] (Mapping.op_counts)."""
        hwm, n_pe = R["queue_hwm"], self.n_pe
        cycles = np.asarray(cycles, dtype=np.int64)
        # idle PEs wait for nothing at the barrier: they have no work
        sync = (counters[:, :, R["idle"]] == 0) * (barrier_latency + batch.extra_barrier)[:, None]
        peak = counters[:, :, hwm]  # [n, n_pe]
        rows = np.empty((len(keys), len(RUN_COUNTERS)), np.int64)
        rows[:, :-1] = np.einsum("ipc->ic", counters)  # sum over PEs; 2.4x sum(axis=1) here
        rows[:, hwm] = peak.max(axis=1, initial=0)
        rows[:, -1] = sync.sum(axis=1)
        self.keys += list(keys)
        self.cycles.append(cycles)
        self.rows.append(rows)
        # per step: phases come in execution order, so a step's phases are runs of the batch
        steps = np.array([k[0] for k in keys], dtype=np.int64)
        bounds = np.flatnonzero(np.diff(steps, prepend=-1, append=-1))
        total = np.empty((n_pe, len(RUN_COUNTERS)), np.int64)
        for a, b in zip(bounds[:-1], bounds[1:]):
            total[:, :-1] = counters[a:b].sum(axis=0)
            total[:, -1] = sync[a:b].sum(axis=0)
            top = peak[a:b].max(axis=0)
            self._sum(self.step_pe[steps[a]], total, top)
            self._sum(self.pe, total, top)
        self.op += op_counts
        ops = np.array([-1 if k[1] is None else k[1] for k in keys], dtype=np.int64)
        mine = ops >= 0
        if mine.any():
            keep = self.op_phase[:, hwm].copy()
            np.add.at(self.op_phase, ops[mine], rows[mine])
            self.op_phase[:, hwm] = keep
            np.maximum.at(self.op_phase[:, hwm], ops[mine], rows[mine, hwm])
            np.add.at(self.op_cycles, ops[mine], cycles[mine])

    @staticmethod
    def _sum(into: np.ndarray, total: np.ndarray, peak):
        """Add counters, keeping the queue high-water mark a maximum."""
        hwm = R["queue_hwm"]
        keep = into[..., hwm].copy()
        into += total
        into[..., hwm] = np.maximum(keep, peak)

    def merge(self, other: "Accumulator"):
        """Append a later run of phases (phases are merged in execution order)."""
        hwm = R["queue_hwm"]
        self.keys += other.keys
        self.cycles += other.cycles
        self.rows += other.rows
        for name in ("pe", "step_pe", "op_phase"):
            theirs = getattr(other, name)
            self._sum(getattr(self, name), theirs, theirs[..., hwm])
        self.op += other.op
        self.op_cycles += other.op_cycles

    @property
    def phase_cycles(self) -> np.ndarray:
        return np.concatenate(self.cycles) if self.cycles else np.zeros(0, np.int64)

    @property
    def phase_rows(self) -> np.ndarray:
        return (np.concatenate(self.rows) if self.rows
                else np.zeros((0, len(RUN_COUNTERS)), np.int64))


def engine_module(name: str):
    if name not in ENGINES:
        raise InputError(f"--engine: expected one of {', '.join(ENGINES)}, got {name!r}")
    return importlib.import_module(f"hwsim.engines.{name}")


def resolve_engine(arch, engine: str) -> tuple[str, list[str]]:
    """The engine that will really run, and notes for the user when it differs."""
    name = arch.get("pe.component")
    cls = registry.get(name, where=arch.where("pe.component") + ": pe.component")
    notes = []
    if engine == "fast" and not getattr(cls, "has_fast_kernel", False):
        notes.append(f"component {name!r} has no fast kernel: ran the detailed engine")
        engine = "detailed"
    return engine, notes


# Phases per batch: big enough to amortise a kernel call, small enough to bound memory.
BATCH_PHASES = 2048


class _Worker:
    """Maps and simulates batches of phases; one per process (the trace is sent once)."""

    def __init__(self, trace: Trace, arch, engine: str):
        self.mapping = Mapping(trace, arch)
        self.acc_args = (self.mapping.n_pe, len(trace.ops), trace.steps)
        self.run_batch = _batch_runner(arch, engine)
        self.barrier_latency = arch.timing().barrier_latency

    def __call__(self, keys) -> Accumulator:
        acc = Accumulator(*self.acc_args)
        batch = self.mapping.batch(keys)
        acc.add(keys, batch, *self.run_batch(batch), self.barrier_latency,
                self.mapping.op_counts(keys))
        return acc


def _batch_runner(arch, engine: str):
    """A function batch -> (cycles [n], counters [n, n_pe, N]) for the chosen engine."""
    mod = engine_module(engine)
    timing = arch.timing()
    if engine == "detailed":
        pe = (registry.get(arch.get("pe.component")), arch.get("pe.component_params"))

        def run_detailed(batch):
            res = [mod.run_phase(batch.phase(i), timing, components={"pe": pe})
                   for i in range(batch.n_phases)]
            counters = np.stack([r.pe for r in res]) if res else np.zeros(
                (0, timing.n_pe, N_COUNTERS), np.int64)
            return np.array([r.cycles for r in res], dtype=np.int64), counters

        return run_detailed
    # the mapping's batches are well formed by construction (tests/test_mapping.py); checking
    # them again would cost a third of the kernel's time
    return lambda batch: mod.run_batch(batch, timing, validate=False)


_worker: _Worker | None = None


def _init_worker(trace, arch, engine):
    global _worker
    _worker = _Worker(trace, arch, engine)


def _work(keys) -> Accumulator:
    return _worker(keys)


def run(trace: Trace, arch, *, engine: str = "fast", steps: int | None = None, jobs: int = 1,
        progress: bool = True) -> "Result":
    """Simulate the first `steps` time steps (all by default) of `trace` on `arch`."""
    from .result import Result

    t0 = time.perf_counter()
    engine_module(engine)
    engine, notes = resolve_engine(arch, engine)
    if steps is not None:
        if steps < 1:
            raise InputError(f"--steps: expected an integer >= 1, got {steps}")
        trace = trace.head(min(steps, trace.steps))
    worker = _Worker(trace, arch, engine)  # validates the placement before any work starts
    mapping = worker.mapping
    keys = mapping.phase_keys(trace.steps)
    size = BATCH_PHASES if engine == "fast" else 1
    if jobs > 1:  # at least a few batches per worker, so that the pool stays busy
        size = max(1, min(size, -(-len(keys) // (4 * jobs))))
    batches = [keys[a:a + size] for a in range(0, len(keys), size)]
    acc = Accumulator(*worker.acc_args)
    bar = tqdm(total=len(keys), desc=f"{engine} engine", unit="phase", delay=2.0,
               disable=None if progress else True, leave=False)  # None: off when not a TTY
    if jobs <= 1 or len(batches) < 2:
        parts = map(worker, batches)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                   initargs=(trace, arch, engine))
        parts = pool.map(_work, batches)
    try:
        for part, chunk in zip(parts, batches):
            acc.merge(part)
            bar.update(len(chunk))
    finally:
        if jobs > 1 and len(batches) >= 2:
            pool.shutdown(cancel_futures=True)
        bar.close()
    starts = _orchestrate(acc.phase_cycles)
    return Result.from_run(trace, arch, mapping, acc, starts, engine=engine, notes=notes,
                           wall_s=time.perf_counter() - t0)


def _orchestrate(cycles: np.ndarray) -> np.ndarray:
    """The chip's controller as a SimPy process: open each phase, wait out its barrier.

    Returns each phase's start cycle on the chip's global clock.
    """
    env = simpy.Environment()
    starts = np.zeros(len(cycles), dtype=np.int64)

    def controller():
        for n, c in enumerate(cycles.tolist()):
            starts[n] = env.now
            yield env.timeout(c)

    env.process(controller())
    env.run()
    return starts

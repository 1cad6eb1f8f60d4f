"""Run a trace on an architecture: map it, run every phase on an engine, gather the counters.

SimPy is the orchestrator (a controller process that opens each phase and waits out its
barrier); the engine computes what happens inside a phase. Phases are independent given the
barrier, so `jobs > 1` farms contiguous runs of phases out to a pool and gets the same numbers:
threads where the engine releases the GIL (the compiled fast kernel: nothing to start, import or
pickle), processes otherwise (the detailed engine, the pure-Python kernel).
"""

from __future__ import annotations

import importlib
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import simpy
from tqdm.auto import tqdm

from .components import registry
from .errors import InputError
from .mapping import Mapping
from .phase import COUNTERS, N_COUNTERS

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

    def add(self, keys, steps: np.ndarray, cycles: np.ndarray, rows: np.ndarray,
            step_rows: np.ndarray, op_counts: np.ndarray):
        """Take in a batch's results, folded (:func:`fold`): its distinct steps (:func:`_steps`),
        cycles [n], rows [n, N] and the per-PE totals of its steps [len(steps), n_pe, N], and
        the batch's static per-op counts [n_ops, len(OP_COUNTS)] (Mapping.op_counts)."""
        hwm = R["queue_hwm"]
        self.keys += list(keys)
        self.cycles.append(np.asarray(cycles, dtype=np.int64))
        self.rows.append(rows)
        block = self.step_pe[steps]  # distinct steps: one block each
        self._sum(block, step_rows, step_rows[..., hwm])
        self.step_pe[steps] = block
        self._sum(self.pe, step_rows.sum(axis=0), step_rows[:, :, hwm].max(axis=0, initial=0))
        self.op += op_counts
        ops = np.array([-1 if k[1] is None else k[1] for k in keys], dtype=np.int64)
        mine = ops >= 0
        if mine.any():
            keep = self.op_phase[:, hwm].copy()
            np.add.at(self.op_phase, ops[mine], rows[mine])
            self.op_phase[:, hwm] = keep
            np.maximum.at(self.op_phase[:, hwm], ops[mine], rows[mine, hwm])
            np.add.at(self.op_cycles, ops[mine], self.cycles[-1][mine])

    @staticmethod
    def _sum(into: np.ndarray, total: np.ndarray, peak):
        """Add counters, keeping the queue high-water mark a maximum."""
        hwm = R["queue_hwm"]
        keep = into[..., hwm].copy()
        into += total
        into[..., hwm] = np.maximum(keep, peak)

    @property
    def phase_cycles(self) -> np.ndarray:
        return np.concatenate(self.cycles) if self.cycles else np.zeros(0, np.int64)

    @property
    def phase_rows(self) -> np.ndarray:
        return (np.concatenate(self.rows) if self.rows
                else np.zeros((0, len(RUN_COUNTERS)), np.int64))


def _steps(keys) -> tuple[np.ndarray, np.ndarray]:
    """The distinct steps of a batch's phases (in execution order, so nondecreasing) and each
    phase's index among them."""
    return np.unique(np.array([k[0] for k in keys], dtype=np.int64), return_inverse=True)


def fold(counters: np.ndarray, extra_barrier: np.ndarray, slot: np.ndarray, n_slots: int,
         barrier_latency: int) -> tuple[np.ndarray, np.ndarray]:
    """What a run keeps of a batch's per-PE counters [n, n_pe, N]: each phase's row [n, N + 1]
    (summed over PEs) and each step's per-PE totals [n_slots, n_pe, N + 1] (phase i is in step
    ``slot[i]``). The queue high-water mark is a maximum, not a sum; the extra last column is
    ``sync``, the barrier's own latency for every PE that is not idle. The fast engine folds in
    its kernel as each phase ends (``fast.run_batch_folded``); this is the detailed engine's."""
    n, n_pe, _ = counters.shape
    hwm = R["queue_hwm"]
    sync = (counters[:, :, R["idle"]] == 0) * (barrier_latency + extra_barrier)[:, None]
    rows = np.empty((n, len(RUN_COUNTERS)), np.int64)
    rows[:, :-1] = counters.sum(axis=1)
    rows[:, hwm] = counters[:, :, hwm].max(axis=1, initial=0)
    rows[:, -1] = sync.sum(axis=1)
    per_step = np.zeros((n_slots, n_pe, len(RUN_COUNTERS)), np.int64)
    np.add.at(per_step[..., :-1], slot, counters)
    np.add.at(per_step[..., -1], slot, sync)
    per_step[..., hwm] = 0
    np.maximum.at(per_step[..., hwm], slot, counters[:, :, hwm])
    return rows, per_step


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

    def __call__(self, keys) -> tuple:
        """A batch's results, folded (small enough to send back from a worker process): the
        arguments of :meth:`Accumulator.add`."""
        steps, slot = _steps(keys)
        return (keys, steps, *self.run_batch(self.mapping, keys, slot, len(steps)),
                self.mapping.op_counts(keys))


def _batch_runner(arch, engine: str):
    """A function (mapping, keys, slot, n_slots) -> (cycles [n], rows, step totals)
    (:func:`fold`) for the chosen engine."""
    mod = engine_module(engine)
    timing = arch.timing()
    if engine == "detailed":
        pe = (registry.get(arch.get("pe.component")), arch.get("pe.component_params"))

        def run_detailed(mapping, keys, slot, n_slots):
            batch = mapping.batch(keys)
            res = [mod.run_phase(batch.phase(i), timing, components={"pe": pe})
                   for i in range(batch.n_phases)]
            counters = np.stack([r.pe for r in res]) if res else np.zeros(
                (0, timing.n_pe, N_COUNTERS), np.int64)
            return (np.array([r.cycles for r in res], dtype=np.int64),
                    *fold(counters, batch.extra_barrier, slot, n_slots, timing.barrier_latency))

        return run_detailed
    def run_fast(mapping, keys, slot, n_slots):
        """Identical phases (a dense op's steps) are simulated once and copied. The mapping's
        batches are well formed by construction (tests/test_mapping.py); checking them again
        would cost a third of the kernel's time."""
        distinct, copies = mapping.distinct(keys)
        return mod.run_batch_folded(mapping.batch(distinct), timing, slot, n_slots,
                                    copies=copies, validate=False)

    return run_fast


_worker: _Worker | None = None


def _init_worker(trace, arch, engine):
    global _worker
    _worker = _Worker(trace, arch, engine)


def _work(keys) -> tuple:
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
    if jobs > 1:  # at least a few batches per worker and smaller ones, so that the workers
        # finish together (measured on the benchmark with 2 threads: 1024 phases beat 2048)
        size = max(1, min(size // 2, -(-len(keys) // (4 * jobs))))
    batches = [keys[a:a + size] for a in range(0, len(keys), size)]
    acc = Accumulator(*worker.acc_args)
    bar = tqdm(total=len(keys), desc=f"{engine} engine", unit="phase", delay=2.0,
               disable=None if progress else True, leave=False)  # None: off when not a TTY
    pool = None
    if jobs <= 1 or len(batches) < 2:
        parts = map(worker, batches)
    elif engine == "fast" and engine_module(engine).BACKEND == "numba":
        pool = ThreadPoolExecutor(max_workers=jobs)
        parts = pool.map(worker, batches)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                   initargs=(trace, arch, engine))
        parts = pool.map(_work, batches)
    controller = _Controller()
    try:
        for part, chunk in zip(parts, batches):
            acc.add(*part)
            controller.run(part[2])  # while the pool computes the next batches
            bar.update(len(chunk))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        bar.close()
    return Result.from_run(trace, arch, mapping, acc, controller.starts, engine=engine, notes=notes,
                           wall_s=time.perf_counter() - t0)


class _Controller:
    """The chip's controller as a SimPy process: it opens each phase and waits out its barrier,
    batch after batch as the engine returns them. ``starts``: each phase's start cycle on the
    chip's global clock."""

    def __init__(self):
        self.env = simpy.Environment()
        self._starts = []

    def run(self, cycles: np.ndarray):
        env = self.env
        starts = np.zeros(len(cycles), dtype=np.int64)

        def controller():
            for n, c in enumerate(cycles.tolist()):
                starts[n] = env.now
                yield env.timeout(c)

        env.process(controller())
        env.run()
        self._starts.append(starts)

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate(self._starts) if self._starts else np.zeros(0, np.int64)

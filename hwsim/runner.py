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
from dataclasses import dataclass

import numpy as np
import simpy
from tqdm.auto import tqdm

from .components import registry
from .errors import InputError
from .mapping import Mapping, PhaseKeys, key_arrays
from .phase import COUNTERS, N_COUNTERS

# What a run accumulates: the engines' counters plus `sync`, the part of each PE's barrier wait
# that is the barrier's own latency (the rest of `barrier` is load imbalance).
RUN_COUNTERS = COUNTERS + ("sync",)
R = {name: i for i, name in enumerate(RUN_COUNTERS)}
from .trace import Trace

ENGINES = ("fast", "detailed")


@dataclass
class Accumulator:
    """Everything a run keeps: each phase's cycles and row (counters summed over PEs), and
    per-step per-PE totals; the per-PE and per-op totals follow from them. (The static per-op
    counts are the mapping's: ``Mapping.op_totals``.)

    Holding sums instead of every phase's per-PE matrix keeps a full utterance in a few MB.
    """

    n_pe: int
    n_ops: int
    steps: int
    keys: PhaseKeys  # every phase, in execution order

    def __post_init__(self):
        n, N = len(self.keys), len(RUN_COUNTERS)
        self.step_of, self.op_of = key_arrays(self.keys)  # op -1: every op (layer_pipelined)
        self.phase_cycles = np.zeros(n, np.int64)
        self.phase_rows = np.zeros((n, N), np.int64)
        self.step_pe = np.zeros((self.steps, self.n_pe, N), np.int64)  # (hwm: max)

    def add(self, phases: np.ndarray, steps: np.ndarray, cycles: np.ndarray, rows: np.ndarray,
            step_rows: np.ndarray):
        """Take in a batch's results, folded (:func:`fold`): the phases they are for (indices
        into ``keys``), their steps' indices (distinct), each phase's cycles and row, and the
        per-PE totals of the batch's phases in each of those steps [len(steps), n_pe, N]."""
        self.phase_cycles[phases] = cycles
        self.phase_rows[phases] = rows
        hwm = R["queue_hwm"]
        block = self.step_pe[steps]
        peak = np.maximum(block[..., hwm], step_rows[..., hwm])
        block += step_rows
        block[..., hwm] = peak
        self.step_pe[steps] = block

    @property
    def pe(self) -> np.ndarray:
        """[n_pe, N]: every PE's counters over the run (hwm: max)."""
        return _totals(self.step_pe, axis=0)

    @property
    def op_phase(self) -> np.ndarray:
        """[n_ops, N]: the counters of each op's own phases (op_by_op; hwm: max)."""
        ops = self.op_of
        mine = ops >= 0
        out = np.zeros((self.n_ops, len(RUN_COUNTERS)), np.int64)
        np.add.at(out, ops[mine], self.phase_rows[mine])
        hwm = R["queue_hwm"]
        out[:, hwm] = 0
        np.maximum.at(out[:, hwm], ops[mine], self.phase_rows[mine, hwm])
        return out

    @property
    def op_cycles(self) -> np.ndarray:
        ops = self.op_of
        out = np.zeros(self.n_ops, np.int64)
        np.add.at(out, ops[ops >= 0], self.phase_cycles[ops >= 0])
        return out


def _totals(counters: np.ndarray, axis: int) -> np.ndarray:
    """Counters summed over `axis`, the queue high-water mark a maximum."""
    hwm = R["queue_hwm"]
    out = counters.sum(axis=axis)
    out[..., hwm] = counters[..., hwm].max(axis=axis, initial=0)
    return out


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
    rows[:, :-1] = _totals(counters, axis=1)
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


# Simulated phases per batch: big enough to amortise a kernel call, small enough to bound memory.
BATCH_PHASES = 2048


class _Worker:
    """Maps and simulates batches of phases; one per process (the trace is sent once)."""

    def __init__(self, trace: Trace, arch, engine: str):
        self.mapping = Mapping(trace, arch)
        self.run_batch = _batch_runner(arch, engine)

    def __call__(self, job) -> tuple:
        """A batch's results, folded (small enough to send back from a worker process): the
        arguments of :meth:`Accumulator.add` after the first. ``job``: the phases to simulate
        (keys), and for each phase that they stand for, its copy (an index into them) and step."""
        keys, copies, steps = job
        steps, slot = np.unique(steps, return_inverse=True)
        return steps, *self.run_batch(self.mapping, keys, copies, slot.ravel(), len(steps))


def _batch_runner(arch, engine: str):
    """A function (mapping, keys, copies, slot, n_slots) -> (cycles [m], rows, step totals)
    (:func:`fold`) of the m phases that copy the phases `keys` (``fast.run_batch_folded``)."""
    mod = engine_module(engine)
    timing = arch.timing()
    if engine == "detailed":
        pe = (registry.get(arch.get("pe.component")), arch.get("pe.component_params"))

        def run_detailed(mapping, keys, copies, slot, n_slots):
            batch = mapping.batch(keys)
            res = [mod.run_phase(batch.phase(i), timing, components={"pe": pe})
                   for i in range(batch.n_phases)]
            counters = np.stack([r.pe for r in res]) if res else np.zeros(
                (0, timing.n_pe, N_COUNTERS), np.int64)
            return (np.array([r.cycles for r in res], dtype=np.int64)[copies],
                    *fold(counters[copies], batch.extra_barrier[copies], slot, n_slots,
                          timing.barrier_latency))

        return run_detailed

    def run_fast(mapping, keys, copies, slot, n_slots):
        """The mapping's batches are well formed by construction (tests/test_mapping.py);
        checking them again would cost a third of the kernel's time."""
        return mod.run_batch_folded(mapping.batch(keys), timing, slot, n_slots, copies=copies,
                                    validate=False)

    return run_fast


_worker: _Worker | None = None


def _init_worker(trace, arch, engine):
    global _worker
    _worker = _Worker(trace, arch, engine)


def _work(job) -> tuple:
    return _worker(job)


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
    keys = mapping.phase_key_arrays(trace.steps)
    if engine == "fast":  # identical phases (a dense op's steps) are simulated once and copied
        sims, copy_of = mapping.distinct(keys)
    else:  # the detailed engine is the oracle: it simulates every phase
        sims, copy_of = keys, np.arange(len(keys))
    acc = Accumulator(mapping.n_pe, len(trace.ops), trace.steps, keys)
    plan = _plan(sims, copy_of, acc.step_of, _bounds(len(sims), engine, jobs))
    bar = tqdm(total=len(keys), desc=f"{engine} engine", unit="phase", delay=2.0,
               disable=None if progress else True, leave=False)  # None: off when not a TTY
    pool = None
    work = [job for job, _, _ in plan]
    if jobs <= 1 or len(plan) < 2:
        parts = map(worker, work)
    elif engine == "fast" and engine_module(engine).BACKEND == "numba":
        pool = ThreadPoolExecutor(max_workers=jobs)
        parts = pool.map(worker, work)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                   initargs=(trace, arch, engine))
        parts = pool.map(_work, work)
    controller = _Controller()
    done = 0
    try:
        for part, (_, phases, known) in zip(parts, plan):
            acc.add(phases, *part)
            controller.run(acc.phase_cycles[done:known])  # while the pool computes the next
            done = known
            bar.update(len(phases))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        bar.close()
    return Result.from_run(trace, arch, mapping, acc, controller.starts, engine=engine, notes=notes,
                           wall_s=time.perf_counter() - t0)


def _bounds(n: int, engine: str, jobs: int) -> list[int]:
    """Where the batches of n simulated phases start, and n: one phase each for the detailed
    engine, BATCH_PHASES each for the fast engine in one process; with `jobs` workers, a
    1/(4 jobs) share of the phases still to hand out, 128 to BATCH_PHASES / 2 of them (guided
    scheduling: several batches per worker, the last ones small, so that the workers finish
    together; measured on the benchmark with two threads against 1024 or 512 each)."""
    if engine != "fast":
        return list(range(n + 1))
    bounds = [0]
    while bounds[-1] < n:
        left = n - bounds[-1]
        size = BATCH_PHASES if jobs <= 1 else min(max(128, -(-left // (4 * jobs))),
                                                  BATCH_PHASES // 2)
        bounds.append(min(n, bounds[-1] + size))
    return bounds


def _plan(sims: PhaseKeys, copy_of: np.ndarray, steps: np.ndarray,
          bounds: list[int]) -> list[tuple]:
    """The batches of simulated phases ``sims[bounds[i]:bounds[i + 1]]``, in order, each as (the
    job for a worker, the phases that it stands for, how many phases from the start are known
    once it is done). ``sims`` is in order of first appearance: simulated phase d first appears
    as phase ``first[d]``, increasing in d, so once the batches up to d are done, every phase
    before ``first[d + 1]`` is known, and the controller may run them."""
    order = np.argsort(copy_of, kind="stable")  # grouped by simulated phase, in phase order
    start = np.searchsorted(copy_of[order], np.arange(len(sims) + 1))
    first = np.append(order[start[:-1]], len(copy_of))
    plan = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        phases = order[start[a]:start[b]]
        plan.append(((sims[a:b], copy_of[phases] - a, steps[phases]), phases, int(first[b])))
    return plan


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

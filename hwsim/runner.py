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
from .phase import C, N_COUNTERS, Phase, PhaseResult
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
    cycles: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # per phase: counters summed over PEs (hwm: max)
    pe: np.ndarray = None  # [n_pe, N] over all phases (hwm: max)
    step_pe: np.ndarray = None  # [steps, n_pe, N] (hwm: max)
    op: np.ndarray = None  # [n_ops, len(OP_COUNTS)]
    op_phase: np.ndarray = None  # [n_ops, N]: counters of the op's own phases (op_by_op only)
    op_cycles: np.ndarray = None  # [n_ops]

    def __post_init__(self):
        z = np.zeros
        self.pe = z((self.n_pe, N_COUNTERS), np.int64)
        self.step_pe = z((self.steps, self.n_pe, N_COUNTERS), np.int64)
        self.op = z((self.n_ops, len(OP_COUNTS)), np.int64)
        self.op_phase = z((self.n_ops, N_COUNTERS), np.int64)
        self.op_cycles = z(self.n_ops, np.int64)

    def add(self, key, phase: Phase, res: PhaseResult):
        t, i = key
        hwm = C["queue_hwm"]
        row = res.pe.sum(axis=0)
        row[hwm] = res.pe[:, hwm].max(initial=0)
        self.keys.append(key)
        self.cycles.append(res.cycles)
        self.rows.append(row)
        self._sum(self.pe, res.pe)
        self._sum(self.step_pe[t], res.pe)
        # static per-op counts: which op each (packet, destination) pair belongs to
        per_dest = np.diff(phase.dst_ptr)
        op_j = np.repeat(phase.op_of, per_dest)
        n = self.n_ops
        self.op[:, 0] += np.bincount(phase.op_of, minlength=n)[:n] if len(phase.op_of) else 0
        if len(op_j):
            self.op[:, 1] += np.bincount(op_j, minlength=n)
            self.op[:, 2] += np.bincount(op_j, weights=phase.macs, minlength=n).astype(np.int64)
            self.op[:, 3] += np.bincount(op_j, weights=phase.acs, minlength=n).astype(np.int64)
            self.op[:, 4] += np.bincount(op_j, weights=phase.reads, minlength=n).astype(np.int64)
        if i is not None:
            self._sum(self.op_phase[i : i + 1], row[None, :])
            self.op_cycles[i] += res.cycles

    @staticmethod
    def _sum(into: np.ndarray, add: np.ndarray):
        hwm = C["queue_hwm"]
        keep = into[..., hwm].copy()
        into += add
        into[..., hwm] = np.maximum(keep, add[..., hwm])

    def merge(self, other: "Accumulator"):
        """Append a later run of phases (phases are merged in execution order)."""
        self.keys += other.keys
        self.cycles += other.cycles
        self.rows += other.rows
        for name in ("pe", "step_pe", "op_phase"):
            self._sum(getattr(self, name), getattr(other, name))
        self.op += other.op
        self.op_cycles += other.op_cycles


def engine_module(name: str):
    if name not in ENGINES:
        raise InputError(f"--engine: expected one of {', '.join(ENGINES)}, got {name!r}")
    return importlib.import_module(f"hwsim.engines.{name}")


def resolve_engine(arch, engine: str) -> tuple[str, list[str]]:
    """The engine that will really run, and notes for the user when it differs."""
    name = arch.get("pe.component")
    cls = registry.get(name, where=arch.where("pe.component") + " pe.component")
    notes = []
    if engine == "fast" and not getattr(cls, "has_fast_kernel", False):
        notes.append(f"component {name!r} has no fast kernel: ran the detailed engine")
        engine = "detailed"
    return engine, notes


def _run_chunk(args) -> Accumulator:
    trace, arch, engine, keys, steps = args
    mapping = Mapping(trace, arch)
    acc = Accumulator(mapping.n_pe, len(trace.ops), steps)
    runner = _runner(arch, engine)
    for key in keys:
        phase = mapping.build(key)
        acc.add(key, phase, runner(phase))
    return acc


def _runner(arch, engine: str):
    mod = engine_module(engine)
    timing = arch.timing()
    if engine == "detailed":
        comp = registry.get(arch.get("pe.component"))
        params = arch.get("pe.component_params")
        return lambda phase: mod.run_phase(phase, timing, components={"pe": (comp, params)})
    return lambda phase: mod.run_phase(phase, timing)


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
    mapping = Mapping(trace, arch)  # validates the placement before any work starts
    keys = mapping.phase_keys(trace.steps)
    acc = Accumulator(mapping.n_pe, len(trace.ops), trace.steps)
    bar = tqdm(total=len(keys), desc=f"{engine} engine", unit="phase", delay=2.0,
               disable=None if progress else True, leave=False)  # None: off when not a TTY
    if jobs <= 1 or len(keys) < 2 * jobs:
        runner = _runner(arch, engine)
        for key in keys:
            phase = mapping.build(key)
            acc.add(key, phase, runner(phase))
            bar.update()
    else:
        n_chunks = min(len(keys), jobs * 8)
        bounds = np.linspace(0, len(keys), n_chunks + 1).astype(int)
        chunks = [keys[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for part, chunk in zip(pool.map(_run_chunk, [(trace, arch, engine, c, trace.steps)
                                                         for c in chunks]), chunks):
                acc.merge(part)
                bar.update(len(chunk))
    bar.close()
    starts = _orchestrate(acc.cycles, arch.timing().n_pe)
    return Result.from_run(trace, arch, mapping, acc, starts, engine=engine, notes=notes,
                           wall_s=time.perf_counter() - t0)


def _orchestrate(cycles: list[int], n_pe: int) -> np.ndarray:
    """The chip's controller as a SimPy process: open each phase, wait out its barrier.

    Returns each phase's start cycle on the chip's global clock.
    """
    env = simpy.Environment()
    starts = np.zeros(len(cycles), dtype=np.int64)

    def controller():
        for n, c in enumerate(cycles):
            starts[n] = env.now
            yield env.timeout(int(c))

    env.process(controller())
    env.run()
    return starts

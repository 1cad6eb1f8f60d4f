"""The detailed engine: every unit of docs/timing-model.md as a SimPy process or resource.

This engine is the oracle the fast engine is checked against, and the one that runs users' own
components. One fresh ``simpy.Environment`` per phase (phases are independent, T1 of section 1):
the chip's components are instantiated, wired, run until the barrier, and read back as the
per-PE counter matrix of :data:`hwsim.phase.COUNTERS`.

Determinism is by construction: every choice among competitors is an explicit arbitration
(:mod:`hwsim.components.arbiter` for links, bus, ejection ports and SRAMs at half cycles;
:class:`hwsim.components.generator.CreditControl` for the credit check, in source order), and
queue entries are deliveries at the start of their cycle (:mod:`hwsim.components.clock`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace

import numpy as np
import simpy

from hwsim.components import registry
from hwsim.components.clock import at
from hwsim.components.generator import CreditControl, OutputEventGenerator
from hwsim.components.noc import Bus, Mesh, Packet
from hwsim.components.sram import SRAM
from hwsim.errors import InputError
from hwsim.phase import BUS, C, MESH, N_COUNTERS, Phase, PhaseResult, Timing

# Component slots a caller may fill (``components={"pe": ...}``); the rest are fixed units.
SLOTS = {"pe": "pe"}


class Chip:
    """The wiring of one phase: phase arrays as lists, shared units, and the components.

    This is what a component receives as ``chip``; attributes a PE may read:
    ``timing``, ``record``, ``credits``, ``reads/cycles/macs/acs`` (per pair ``j``),
    ``credit_wait_of`` (per packet ``k``, set when sent), ``sram_of(p)``, ``events_for(p)``,
    ``update_of(p)``.
    """

    def __init__(self, env, phase: Phase, timing: Timing, pe_cls, pe_param, record):
        self.env = env
        self.phase = phase
        self.timing = timing
        self.record = record
        n = timing.n_pe
        self.src = phase.src.tolist()
        self.flits = phase.flits.tolist()
        self.dst_ptr = phase.dst_ptr.tolist()
        self.dst = phase.dst.tolist()
        self.reads = phase.reads.tolist()
        self.cycles = phase.cycles.tolist()
        self.macs = phase.macs.tolist()
        self.acs = phase.acs.tolist()
        self._events_for = np.bincount(phase.dst, minlength=n).tolist()
        self._update = [
            SimpleNamespace(reads=int(phase.upd_reads[p]), writes=int(phase.upd_writes[p]),
                            cycles=int(phase.upd_cycles[p]), macs=int(phase.upd_macs[p]),
                            neurons=int(phase.upd_neurons[p]))
            for p in range(n)
        ]
        self.credit_wait_of = [0] * phase.n_packets

        self.credits = CreditControl(env, n, timing.queue_depth)
        self.srams = [SRAM(env, s, timing.banks, timing.read_latency)
                      for s in range(-(-n // timing.sharing))]
        noc_cls = Mesh if timing.topology == MESH else Bus
        self.noc = noc_cls(env, timing, self.packet, self.deliver, record)
        self.pes = [pe_cls(env, p, self, pe_param) for p in range(n)]
        by_src: list[list[int]] = [[] for _ in range(n)]
        for k, s in enumerate(self.src):
            by_src[s].append(k)
        self.generators = [
            OutputEventGenerator(env, s, ks, self.dests, self.credits, self.noc,
                                 self.credit_wait_of)
            for s, ks in enumerate(by_src) if ks
        ]
        self.phase_cycles = None
        self.barrier = env.process(self._barrier())

    # --- what components ask -------------------------------------------------------------
    def sram_of(self, p: int) -> SRAM:
        return self.srams[p // self.timing.sharing]

    def events_for(self, p: int) -> int:
        return self._events_for[p]

    def update_of(self, p: int):
        return self._update[p]

    def dests(self, k: int):
        return self.dst[self.dst_ptr[k]:self.dst_ptr[k + 1]]

    def packet(self, k: int) -> Packet:
        a, b = self.dst_ptr[k], self.dst_ptr[k + 1]
        return Packet(k, self.src[k], self.flits[k], self.dst[a:b], range(a, b))

    def deliver(self, pe: int, item) -> None:
        self.pes[pe].enqueue(item)

    # --- T7 --------------------------------------------------------------------------------
    def _barrier(self):
        """The barrier: every core done (which implies every packet delivered), then the
        barrier latency and any extra barrier cycles of the phase."""
        env = self.env
        yield env.all_of([pe.process for pe in self.pes])
        done = max((pe.done for pe in self.pes), default=0)
        self.phase_cycles = done + self.timing.barrier_latency + int(self.phase.extra_barrier)
        yield at(env, self.phase_cycles)


def run_phase(phase: Phase, timing: Timing, *, components=None, record=None) -> PhaseResult:
    """Simulate one phase cycle by cycle; return its cycles and per-PE counters.

    ``components``: optional ``{"pe": spec}`` where ``spec`` is a registered component name, a
    component class, or ``(name or class, params mapping)`` (the architecture's
    ``pe.component`` and ``pe.component_params``). ``record``: optional list that receives
    activity slices ``(pe, kind, start, end)`` (kind in decode, sram_wait, sram, compute,
    update) and queue samples ``("queue", pe, cycle, depth)``.
    """
    check_inputs(phase, timing)
    pe_cls, pe_param = resolve_components(components)["pe"]
    env = simpy.Environment()
    chip = Chip(env, phase, timing, pe_cls, pe_param, record)
    env.run()
    if not chip.barrier.triggered or chip.phase_cycles is None:
        stuck = [pe.index for pe in chip.pes if not pe.process.triggered]
        raise RuntimeError(f"phase {phase.label!r}: simulation stopped before the barrier "
                           f"(PEs still waiting: {stuck[:10]})")
    return _result(chip)


def _result(chip: Chip) -> PhaseResult:
    n = chip.timing.n_pe
    total = chip.phase_cycles
    out = np.zeros((n, N_COUNTERS), dtype=np.int64)
    for pe in chip.pes:
        row = out[pe.index]
        if pe.active:
            row[C["compute"]] = pe.compute
            row[C["sram_conflict"]] = pe.sram_conflict
            row[C["noc_wait"]] = pe.noc_wait
            row[C["backpressure"]] = pe.backpressure
            row[C["barrier"]] = total - pe.done
        else:
            row[C["idle"]] = total
        row[C["events"]] = pe.events
        row[C["macs"]] = pe.macs
        row[C["acs"]] = pe.acs
        row[C["sram_reads"]] = pe.sram_reads
        row[C["sram_writes"]] = pe.sram_writes
        row[C["queue_hwm"]] = pe.queue_hwm
        row[C["neuron_updates"]] = pe.neuron_updates
    for g in chip.generators:
        out[g.index, C["packets_sent"]] = g.packets_sent
        out[g.index, C["credit_wait"]] = g.credit_wait
    out[:, C["flit_hops"]] = chip.noc.flit_hops
    return PhaseResult(int(total), out)


def resolve_components(components=None, where: str = "") -> dict:
    """``{"pe": spec}`` (or None) -> ``{"pe": (class, validated params)}``."""
    specs = dict(SLOTS)
    if components is not None:
        if not isinstance(components, Mapping):
            raise InputError(f"{where or 'components'}: expected a mapping of slot to "
                             f"component, got {components!r}")
        for slot, spec in components.items():
            if slot not in SLOTS:
                raise InputError(f"{where or 'components'}: unknown slot {slot!r}; "
                                 f"slots: {', '.join(SLOTS)}")
            specs[slot] = spec
    return {slot: registry.resolve(spec, f"{where}{slot}.component" if where
                                   else f"{slot}.component")
            for slot, spec in specs.items()}


_POSITIVE = ("rows", "cols", "queue_depth", "decode_cycles", "banks", "read_latency", "sharing",
             "hop_latency", "credit_latency")


def check_inputs(phase: Phase, timing: Timing) -> None:
    """Refuse inputs outside the timing model's domain (latencies >= 1, consistent CSR...)."""
    for name in _POSITIVE:
        if int(getattr(timing, name)) < 1:
            raise InputError(f"timing.{name}: expected an integer >= 1, got "
                             f"{getattr(timing, name)}")
    if timing.barrier_latency < 0:
        raise InputError(f"timing.barrier_latency: expected >= 0, got {timing.barrier_latency}")
    if timing.topology not in (MESH, BUS):
        raise InputError(f"timing.topology: expected {MESH} (mesh) or {BUS} (bus), "
                         f"got {timing.topology}")
    where = f"phase {phase.label!r}" if phase.label else "phase"
    n, K = timing.n_pe, phase.n_packets
    if phase.n_pe != n:
        raise InputError(f"{where}: n_pe {phase.n_pe} != rows*cols {n}")
    if len(phase.flits) != K or len(phase.dst_ptr) != K + 1 or len(phase.op_of) != K:
        raise InputError(f"{where}: src/flits/op_of need K={K} entries and dst_ptr K+1")
    J = len(phase.dst)
    if phase.dst_ptr[0] != 0 or phase.dst_ptr[-1] != J or np.any(np.diff(phase.dst_ptr) < 0):
        raise InputError(f"{where}: dst_ptr must rise from 0 to len(dst)={J}")
    for name in ("reads", "cycles", "macs", "acs"):
        if len(getattr(phase, name)) != J:
            raise InputError(f"{where}: {name} needs J={J} entries")
        if J and getattr(phase, name).min() < 0:
            raise InputError(f"{where}: {name} must be >= 0")
    for name in ("upd_reads", "upd_writes", "upd_cycles", "upd_macs", "upd_neurons"):
        a = getattr(phase, name)
        if len(a) != n:
            raise InputError(f"{where}: {name} needs n_pe={n} entries")
        if n and a.min() < 0:
            raise InputError(f"{where}: {name} must be >= 0")
    if K and (phase.src.min() < 0 or phase.src.max() >= n):
        raise InputError(f"{where}: src out of range 0..{n - 1}")
    if K and phase.flits.min() < 1:
        raise InputError(f"{where}: flits must be >= 1")
    if J and (phase.dst.min() < 0 or phase.dst.max() >= n):
        raise InputError(f"{where}: dst out of range 0..{n - 1}")
    if J > 1:
        step = np.diff(phase.dst)
        inner = np.ones(J - 1, dtype=bool)
        inner[phase.dst_ptr[1:-1][(phase.dst_ptr[1:-1] > 0) & (phase.dst_ptr[1:-1] < J)] - 1] \
            = False
        if np.any(step[inner] <= 0):
            raise InputError(f"{where}: destinations of a packet must be strictly increasing")
    if int(phase.extra_barrier) < 0:
        raise InputError(f"{where}: extra_barrier must be >= 0")

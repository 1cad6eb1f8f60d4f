"""Place a trace's work on a chip: which PE owns which neurons, and the phases that follow.

This is the only place that knows what each op kind costs (docs/timing-model.md, section 4); the
engines see only packets, destinations and per-destination work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .errors import InputError
from .phase import Phase
from .trace import Trace

MODES = ("op_by_op", "layer_pipelined")


def _ceil_div(a, b):
    return -(-np.asarray(a, dtype=np.int64) // b)


def even_split(n: int, g: int) -> np.ndarray:
    """Neurons per PE when n neurons are spread in contiguous blocks over g PEs."""
    q, r = divmod(n, g)
    return np.array([q + (1 if j < r else 0) for j in range(g)], dtype=np.int64)


@dataclass
class OpPlacement:
    """Where one op lives and what each of its events costs on each destination."""

    group: np.ndarray  # PEs of the op, in order
    owned: np.ndarray  # [n_pe] output neurons per PE (0 outside the group)
    owner: np.ndarray  # [out_width] PE owning each output neuron
    src_of_channel: np.ndarray  # [in_width] PE that emits each input channel
    flits: int
    # per input channel: destination PEs and their work, as CSR
    dst_ptr: np.ndarray
    dst: np.ndarray
    reads: np.ndarray
    cycles: np.ndarray
    ops: np.ndarray  # MACs, or ACs for binary ops
    binary: bool
    upd_reads: np.ndarray  # [n_pe]
    upd_writes: np.ndarray
    upd_cycles: np.ndarray
    upd_macs: np.ndarray
    upd_neurons: np.ndarray
    extra_barrier: int


class Mapping:
    """The placement of every op of a trace on an architecture, and the phase builder."""

    def __init__(self, trace: Trace, arch, mode: str | None = None):
        self.trace = trace
        self.arch = arch
        self.mode = mode or arch.get("mapping.mode")
        if self.mode not in MODES:
            raise InputError(f"mapping.mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        self.n_pe = arch.n_pe
        self.multicast = bool(arch.get("noc.multicast"))
        self.groups = self._groups()
        self.places: list[OpPlacement] = []
        index = {op.name: i for i, op in enumerate(trace.ops)}
        for i, op in enumerate(trace.ops):
            src = index.get(op.source) if op.source is not None else None
            self.places.append(self._place(i, src))
        self._check_capacity()

    # -- placement ---------------------------------------------------------------------------

    def _groups(self) -> list[np.ndarray]:
        n_ops, P = len(self.trace.ops), self.n_pe
        if self.mode == "op_by_op":
            return [np.arange(P, dtype=np.int64)] * n_ops
        if n_ops <= P:  # disjoint contiguous groups, sizes as even as possible
            sizes = even_split(P, n_ops)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            return [np.arange(s, s + z, dtype=np.int64) for s, z in zip(starts, sizes)]
        # more ops than PEs: consecutive ops share one PE
        return [np.array([i * P // n_ops], dtype=np.int64) for i in range(n_ops)]

    def _owner(self, n: int, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        per = even_split(n, len(group))
        owner = np.repeat(group, per)
        owned = np.zeros(self.n_pe, dtype=np.int64)
        owned[group] = per
        return owner, owned

    def _place(self, i: int, src: int | None) -> OpPlacement:
        op, a = self.trace.ops[i], self.arch
        group = self.groups[i]
        owner, owned = self._owner(op.out_width, group)
        if src is None:  # the model input arrives spread over the op's own group
            src_owner, _ = self._owner(op.in_width, group)
            src_of_channel = src_owner
        else:
            feeder = self.places[src]
            ch = np.arange(op.in_width)
            src_of_channel = feeder.owner[ch % len(feeder.owner)]

        W = a.get("sram.bank_width_bits")
        wbits, sbits = a.get("sram.weight_bits"), a.get("sram.state_bits")
        lanes = a.get("pe.mac_lanes")
        bits = a.get("noc.address_bits") + (0 if op.binary else a.get("sram.value_bits"))
        flits = int(_ceil_div(bits, a.get("noc.link_width_bits")))
        ch = np.arange(op.in_width, dtype=np.int64)

        if op.kind == "linear":
            dests = group[owned[group] > 0]
            n = owned[dests]
            dst_ptr = np.arange(op.in_width + 1, dtype=np.int64) * len(dests)
            dst = np.tile(dests, op.in_width)
            fan = np.tile(n, op.in_width)
            reads = _ceil_div(fan * wbits, W)
            cycles = _ceil_div(fan, lanes)
        else:
            dst_ptr = np.arange(op.in_width + 1, dtype=np.int64)
            dst = owner[ch % op.out_width]
            if op.kind == "conv1d":
                k = int(op.params["kernel"])
                fan = np.full(op.in_width, k, dtype=np.int64)
                reads, cycles = _ceil_div(fan * wbits, W), _ceil_div(fan, lanes)
            elif op.kind == "scan":
                n_state = int(op.params["d_state"])
                fan = np.full(op.in_width, n_state, dtype=np.int64)
                reads, cycles = _ceil_div(fan * sbits, W), _ceil_div(fan, lanes)
            elif op.kind in ("elementwise", "norm"):
                fan = np.ones(op.in_width, dtype=np.int64)
                reads, cycles = np.zeros_like(fan), np.ones_like(fan)
            else:  # the trace loader refuses unknown kinds; this guards direct callers
                raise InputError(f"op {op.name}: kind {op.kind!r} has no cost model")

        upd_neurons = owned.copy()
        upd_reads = _ceil_div(owned * sbits, W)
        upd_cycles = owned * a.get("pe.neuron_update_cycles")
        upd_macs = np.zeros(self.n_pe, dtype=np.int64)
        extra = 0
        if op.kind == "scan":
            n_state = int(op.params["d_state"])
            upd_macs = owned * 2 * n_state
            upd_cycles = owned * int(_ceil_div(2 * n_state, lanes))
            upd_reads = _ceil_div(owned * n_state * sbits, W)
        elif op.kind == "norm":
            upd_macs = owned.copy()
            extra = int(a.get("sync.barrier_latency"))
        return OpPlacement(
            group=group, owned=owned, owner=owner, src_of_channel=src_of_channel, flits=flits,
            dst_ptr=dst_ptr, dst=dst, reads=reads, cycles=cycles, ops=fan, binary=op.binary,
            upd_reads=upd_reads, upd_writes=upd_reads.copy(), upd_cycles=upd_cycles,
            upd_macs=upd_macs, upd_neurons=upd_neurons, extra_barrier=extra,
        )

    def _check_capacity(self):
        """Weights and state must fit each PE's SRAM, or the numbers would describe no chip."""
        a = self.arch
        bits = np.zeros(self.n_pe, dtype=np.float64)
        for op, pl in zip(self.trace.ops, self.places):
            if op.kind == "linear":
                bits += pl.owned * op.in_width * op.weight_density * a.get("sram.weight_bits")
            elif op.kind == "conv1d":
                bits += pl.owned * int(op.params["kernel"]) * a.get("sram.weight_bits")
            elif op.kind == "scan":
                bits += pl.owned * int(op.params["d_state"]) * a.get("sram.state_bits")
            bits += pl.owned * a.get("sram.state_bits")
        sharing = a.get("sram.sharing")  # a shared SRAM holds its whole group's data
        per_sram = np.bincount(np.arange(self.n_pe) // sharing, weights=bits)
        need_kib = per_sram.max() / 8 / 1024
        cap = a.get("sram.capacity_kib") * sharing
        if need_kib > cap:
            raise InputError(
                f"{a.where('sram.capacity_kib')}: sram.capacity_kib: the trace's weights and state "
                f"need {need_kib:.1f} KiB in the fullest SRAM, which holds {cap:g} KiB "
                f"({sharing} PE(s) x capacity_kib, {self.mode} mode); use a larger chip or more "
                "capacity")

    # -- phases ------------------------------------------------------------------------------

    def _op_packets(self, i: int, t: int):
        """Packets and (packet, destination) work of op i's input events at step t."""
        pl = self.places[i]
        idx, _ = self.trace.step(i, t)
        idx = idx.astype(np.int64)
        starts, ends = pl.dst_ptr[idx], pl.dst_ptr[idx + 1]
        counts = ends - starts
        total = int(counts.sum())
        # flat positions of every (event, destination) pair
        offs = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        pos = offs + np.arange(total, dtype=np.int64)
        src = pl.src_of_channel[idx]
        if self.multicast:
            ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            src_k = src
        else:  # one unicast packet per destination, in destination order
            ptr = np.arange(total + 1, dtype=np.int64)
            src_k = np.repeat(src, counts)
        ops = pl.ops[pos]
        zero = np.zeros_like(ops)
        macs, acs = (zero, ops) if pl.binary else (ops, zero)
        return src_k, ptr, pl.dst[pos], pl.reads[pos], pl.cycles[pos], macs, acs

    def phase(self, ops: list[int], t: int, label: str = "") -> Phase:
        """One phase holding the given ops' input events at step t (concatenated in op order)."""
        parts = [self._op_packets(i, t) for i in ops]
        src = np.concatenate([p[0] for p in parts])
        ptrs, base = [], 0
        for p in parts:
            ptrs.append(p[1][:-1] + base)
            base += int(p[1][-1])
        dst_ptr = np.concatenate(ptrs + [np.array([base], dtype=np.int64)])
        flits = np.concatenate([np.full(len(p[0]), self.places[i].flits, dtype=np.int64)
                                for i, p in zip(ops, parts)])
        op_of = np.concatenate([np.full(len(p[0]), i, dtype=np.int64) for i, p in zip(ops, parts)])
        pls = [self.places[i] for i in ops]
        # an op's update work runs only in the phases where that op runs
        return Phase(
            n_pe=self.n_pe, src=src, flits=flits, dst_ptr=dst_ptr,
            dst=np.concatenate([p[2] for p in parts]),
            reads=np.concatenate([p[3] for p in parts]),
            cycles=np.concatenate([p[4] for p in parts]),
            macs=np.concatenate([p[5] for p in parts]),
            acs=np.concatenate([p[6] for p in parts]),
            upd_reads=sum(p.upd_reads for p in pls), upd_writes=sum(p.upd_writes for p in pls),
            upd_cycles=sum(p.upd_cycles for p in pls), upd_macs=sum(p.upd_macs for p in pls),
            upd_neurons=sum(p.upd_neurons for p in pls),
            extra_barrier=max(p.extra_barrier for p in pls), op_of=op_of, label=label,
        )

    def phase_keys(self, steps: int) -> list[tuple[int, int | None]]:
        """(step, op) for op_by_op, (step, None) for layer_pipelined, in execution order."""
        if self.mode == "op_by_op":
            return [(t, i) for t in range(steps) for i in range(len(self.trace.ops))]
        return [(t, None) for t in range(steps)]

    def build(self, key: tuple[int, int | None]) -> Phase:
        t, i = key
        if i is None:
            return self.phase(list(range(len(self.trace.ops))), t, label=f"step {t}")
        return self.phase([i], t, label=f"step {t} {self.trace.ops[i].name}")

    def phases(self, steps: int) -> Iterator[tuple[tuple[int, int | None], Phase]]:
        for key in self.phase_keys(steps):
            yield key, self.build(key)

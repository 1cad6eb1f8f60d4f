"""Place a trace's work on a chip: which PE owns which neurons, and the phases that follow.

This is the only place that knows what each op kind costs (docs/timing-model.md, section 4); the
engines see only packets, destinations and per-destination work.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterator

import numpy as np

from .errors import InputError
from .phase import Phase, PhaseBatch, ranges
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
    # per input channel c: rows row_lo[c] .. row_lo[c] + row_n[c] of the cost table (dst, reads,
    # cycles, ops) give its destination PEs and their work; channels of a linear op share rows
    row_lo: np.ndarray
    row_n: np.ndarray
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
        self.strategy = arch.get("mapping.strategy")
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
        if n_ops <= P:  # disjoint contiguous groups
            if self.strategy == "balanced":  # sizes in proportion to each op's work
                sizes = _proportional(P, [self._op_work(i) for i in range(n_ops)])
            else:  # sizes as even as possible
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

    # -- the balanced strategy: weigh the work the trace will put on each neuron --------------

    def _event_cycles(self, op, fan: int) -> int:
        """Core cycles one event costs a PE holding `fan` of its targets (T5, no conflicts)."""
        a = self.arch
        bits = a.get("sram.state_bits") if op.kind == "scan" else a.get("sram.weight_bits")
        reads = 0 if op.kind in ("elementwise", "norm") else -(-fan * bits // a.get(
            "sram.bank_width_bits"))
        sram = -(-reads // a.get("sram.banks")) + a.get("sram.read_latency") - 1 if reads else 0
        return a.get("pe.decode_cycles") + sram + -(-fan // a.get("pe.mac_lanes"))

    def _update_cycles(self, op, owned: int) -> int:
        a = self.arch
        if op.kind == "scan":
            return owned * -(-2 * int(op.params["d_state"]) // a.get("pe.mac_lanes"))
        return owned * a.get("pe.neuron_update_cycles")

    @cached_property
    def channel_events(self) -> list[np.ndarray]:
        """Events per input channel of each op over the whole trace: what the balanced
        strategy weighs."""
        return [np.bincount(ev.index, minlength=op.in_width)
                for op, ev in zip(self.trace.ops, self.trace.events)]

    def _op_work(self, i: int) -> float:
        """Cycles op i would keep one PE busy for, over the whole trace."""
        op = self.trace.ops[i]
        events = float(self.channel_events[i].sum())
        fan = {"linear": op.out_width, "conv1d": op.params.get("kernel", 1),
               "scan": op.params.get("d_state", 1)}.get(op.kind, 1)
        per_event = self._event_cycles(op, fan)
        return events * per_event + self.trace.steps * self._update_cycles(op, op.out_width)

    def _balanced_owner(self, i: int, group: np.ndarray) -> np.ndarray:
        op, steps = self.trace.ops[i], self.trace.steps
        if op.kind == "linear":
            # every event reaches every owner: choose how many PEs to use so that the slowest
            # (events x event cost + update) is least, then the fewest PEs (fewer deliveries)
            events = self.channel_events[i].sum() / max(steps, 1)
            best = None
            for u in range(1, len(group) + 1):
                top = -(-op.out_width // u)
                est = events * self._event_cycles(op, top) + self._update_cycles(op, top)
                if best is None or est < best[0]:
                    best = (est, u)
            return np.repeat(group[: best[1]], even_split(op.out_width, best[1]))
        # one owner per event: cut the neurons, in order, into contiguous runs of equal load
        # (contiguity keeps producer and consumer of a channel close on the mesh)
        fan = {"conv1d": op.params.get("kernel", 1), "scan": op.params.get("d_state", 1)}
        per_event = self._event_cycles(op, fan.get(op.kind, 1))
        hits = np.bincount(np.arange(op.in_width) % op.out_width,
                           weights=self.channel_events[i], minlength=op.out_width)
        load = hits * per_event + steps * self._update_cycles(op, 1)
        mid = np.cumsum(load) - load / 2  # each neuron's centre on the cumulative load
        j = np.floor(mid / load.sum() * len(group)).astype(np.int64)
        return group[np.clip(j, 0, len(group) - 1)]

    def _place(self, i: int, src: int | None) -> OpPlacement:
        op, a = self.trace.ops[i], self.arch
        group = self.groups[i]
        if self.strategy == "balanced":
            owner = self._balanced_owner(i, group)
            owned = np.bincount(owner, minlength=self.n_pe).astype(np.int64)
        else:
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

        if op.kind == "linear":  # every channel reaches every PE with outputs, the same work
            dst = group[owned[group] > 0]
            row_lo = np.zeros(op.in_width, dtype=np.int64)
            row_n = np.full(op.in_width, len(dst), dtype=np.int64)
            fan = owned[dst]
            reads = _ceil_div(fan * wbits, W)
            cycles = _ceil_div(fan, lanes)
        else:
            row_lo = ch.copy()
            row_n = np.ones(op.in_width, dtype=np.int64)
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
            row_lo=row_lo, row_n=row_n, dst=dst, reads=reads, cycles=cycles, ops=fan, binary=op.binary,
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

    def phase_keys(self, steps: int) -> list[tuple[int, int | None]]:
        """(step, op) for op_by_op, (step, None) for layer_pipelined, in execution order."""
        return list(self.phase_key_arrays(steps))

    def phase_key_arrays(self, steps: int) -> PhaseKeys:
        """The phases of :meth:`phase_keys` as arrays."""
        n_ops = len(self.trace.ops)
        if self.mode == "op_by_op":
            return PhaseKeys(np.repeat(np.arange(steps), n_ops), np.tile(np.arange(n_ops), steps))
        return PhaseKeys(np.arange(steps), np.full(steps, -1))

    def batch(self, keys: list[tuple[int, int | None]] | PhaseKeys) -> PhaseBatch:
        """The phases of `keys` as one compact PhaseBatch, built with whole-array numpy
        operations: packets point into per-op cost tables instead of copying them per pair.

        A phase (t, i) holds op i's input events at step t; a phase (t, None) holds every op's,
        concatenated in op order. Within an op, packets follow the input channel order, which is
        the order in which each source PE emits them.
        """
        n_ops = len(self.trace.ops)
        ev_ptr, events, chan = self._channels
        steps, ops = key_arrays(keys)
        # the (phase, op) runs of events, in execution order
        per = np.where(ops < 0, n_ops, 1)
        run_op = ranges(np.maximum(ops, 0), per)
        run_step = np.repeat(steps, per)
        lo, hi = ev_ptr[run_op, run_step], ev_ptr[run_op, run_step + 1]
        phase_of = np.repeat(np.repeat(np.arange(len(steps)), per), hi - lo)
        columns = events[ranges(lo, hi - lo)]
        pair_lo, counts, src = (c[columns] for c in chan)  # one gather per column: faster
        op_of = np.repeat(run_op, hi - lo)  # the op and its flits are the run's
        flits = np.repeat(self._op_flits[run_op], hi - lo)
        if not self.multicast:  # one unicast packet per destination, in destination order
            pair_lo = ranges(pair_lo, counts)
            phase_of, src, flits, op_of = (np.repeat(x, counts)
                                           for x in (phase_of, src, flits, op_of))
            counts = np.ones_like(pair_lo)
        k_off = np.searchsorted(phase_of, np.arange(len(steps) + 1)).astype(np.int64)

        # update work per phase: one op's, or (index n_ops) the sum over all ops
        row = np.where(ops < 0, n_ops, ops)
        upd = {f: self._update_table(f)[row] for f in _UPDATES}
        extra = self._update_table("extra_barrier")[row]
        return PhaseBatch(
            self.n_pe, k_off, src, flits,
            np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), *self._pair_tables[0],
            *(upd[f] for f in _UPDATES), extra, op_of, pair_lo=pair_lo,
        )

    def distinct(self, keys: list[tuple[int, int | None]] | PhaseKeys
                 ) -> tuple[list | PhaseKeys, np.ndarray]:
        """The distinct phases among `keys`, in order of first appearance, and for each key the
        index of its distinct phase. Phases that run the same op (or, layer_pipelined, every
        op) on the same input channels are the same work with the same counts, so an engine
        can simulate one and copy it: every step of a dense op is alike."""
        steps, ops = key_arrays(keys)
        every = ops < 0  # a phase of every op: the tuple of their channel sets
        n_ops = len(self.places)
        op_of = np.concatenate([ops[~every], np.repeat(np.arange(n_ops), every.sum())])
        step_of = np.concatenate([steps[~every], np.tile(steps[every], n_ops)])
        ids = self._channel_sets(op_of, step_of)
        single = len(keys) - int(every.sum())  # ids: the one-op phases', then every op's
        codes = np.empty(len(keys), np.int64)
        codes[~every] = ids[:single]
        if every.any():
            sets = ids[single:].reshape(n_ops, -1)
            _, shared = np.unique(sets.T, axis=0, return_inverse=True)
            codes[every] = ids.max() + 1 + shared.ravel()
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        order = np.argsort(first)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        if isinstance(keys, PhaseKeys):
            return keys[first[order]], rank[inverse.ravel()]
        return [keys[j] for j in first[order]], rank[inverse.ravel()]

    def _channel_sets(self, op: np.ndarray, step: np.ndarray) -> np.ndarray:
        """A number per (op, step) given that is the same exactly where the op's input channels
        at those steps are, in the same order (numbers differ between ops). Candidates share
        their length and five sampled channels; each is then checked element by element."""
        ev_ptr, events, _ = self._channels  # an (op, step)'s channels are unique to its op
        lo = ev_ptr[op, step]
        n = ev_ptr[op, step + 1] - lo
        busy = n > 0
        h = (n * ev_ptr.shape[0] + op).astype(np.uint64)  # (an op's steps without events, too)
        lo_b, n_b, h_b = lo[busy], n[busy], h[busy]
        with np.errstate(over="ignore"):  # a 64-bit hash: wraps around on purpose
            for k in range(5):
                at = lo_b + (n_b - 1) * k // 4
                h_b = h_b * np.uint64(0x9E3779B97F4A7C15) + events[at].astype(np.uint64)
        h[busy] = h_b
        _, first, ids = np.unique(h, return_index=True, return_inverse=True)
        ids = ids.ravel()
        rep = first[ids]
        dup = np.flatnonzero((rep != np.arange(len(lo))) & busy)
        at = ranges(lo[dup], n[dup])
        same = events[at] == events[at + np.repeat(lo[rep[dup]] - lo[dup], n[dup])]
        if len(dup):  # candidates unlike their first: numbered by their exact channels
            differ = dup[~np.logical_and.reduceat(same, np.cumsum(n[dup]) - n[dup])].tolist()
            seen, base = {}, ids.max() + 1
            for q in differ:
                ids[q] = base + seen.setdefault(events[lo[q]:lo[q] + n[q]].tobytes(), len(seen))
        return ids

    @cached_property
    def _channels(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Every op's input channels and events in flat arrays, so that a batch is a few
        gathers: ``chan`` holds three arrays over all channels, each channel's first row in the
        pair tables, its row count and its source PE (channel c of op i is entry c + op i's
        offset); ``events`` lists every event's entry, op by op and step by step; ``ev_ptr``
        [n_ops, steps + 1] points to each (op, step)'s events in it."""
        base = self._pair_tables[1]
        chan = [_cat([pl.row_lo + base[i] for i, pl in enumerate(self.places)]),
                _cat([pl.row_n for pl in self.places]),
                _cat([pl.src_of_channel for pl in self.places])]
        first = self._first_channel
        evs = self.trace.events
        start = np.cumsum([0] + [int(ev.indptr[-1]) for ev in evs])
        events = np.empty(start[-1], np.int32)
        for i, ev in enumerate(evs):  # one pass per op, written in place
            np.add(ev.index[:ev.indptr[-1]], first[i], out=events[start[i]:start[i + 1]],
                   casting="unsafe")
        ev_ptr = np.array([ev.indptr + start[i] for i, ev in enumerate(evs)],
                          dtype=np.int64).reshape(len(evs), self.trace.steps + 1)
        return ev_ptr, events, chan

    @cached_property
    def _first_channel(self) -> np.ndarray:
        """Where each op's channels start in the flat channel arrays (and their total, last)."""
        return np.cumsum([0] + [len(pl.row_lo) for pl in self.places])

    @cached_property
    def _op_flits(self) -> np.ndarray:
        return np.array([pl.flits for pl in self.places], dtype=np.int64)

    @cached_property
    def _pair_tables(self) -> tuple[list[np.ndarray], np.ndarray]:
        """Every op's per-channel cost tables (dst, reads, cycles, macs, acs) concatenated once,
        and where each op's rows start: batches point into them instead of copying them."""
        tables = []
        for pl in self.places:
            zero = np.zeros_like(pl.ops)
            macs, acs = (zero, pl.ops) if pl.binary else (pl.ops, zero)
            tables.append((pl.dst, pl.reads, pl.cycles, macs, acs))
        off = np.cumsum([0] + [len(t[0]) for t in tables[:-1]]).astype(np.int64)
        return [_cat([t[f] for t in tables]) for f in range(5)], off

    @cached_property
    def op_totals(self) -> np.ndarray:
        """[n_ops, 5]: each op's static counts over the whole trace (events, deliveries, macs,
        acs, sram_reads): every input channel's totals times its events. They depend on the
        trace and the placement only, not on timing, so a run takes them from here."""
        _, events, (lo, n, _) = self._channels
        (_, reads, _, macs, acs), _ = self._pair_tables
        pre = np.zeros((3, len(reads) + 1), np.int64)
        np.cumsum(np.stack([macs, acs, reads]), axis=1, out=pre[:, 1:])
        per_event = np.stack([np.ones_like(n), n, *(pre[:, lo + n] - pre[:, lo])])
        first = self._first_channel
        weighted = per_event * np.bincount(events, minlength=first[-1])  # [5, every channel]
        out = np.stack([weighted[:, a:b].sum(axis=1) for a, b in zip(first[:-1], first[1:])])
        if not self.multicast:  # one packet per destination
            out[:, 0] = out[:, 1]
        return out

    def _update_table(self, field: str) -> np.ndarray:
        """Per-op update arrays stacked [n_ops + 1, ...], the last row for all ops together."""
        cache = self.__dict__.setdefault("_tables", {})
        if field not in cache:
            per_op = np.array([getattr(pl, field) for pl in self.places], dtype=np.int64)
            total = per_op.max(axis=0) if field == "extra_barrier" else per_op.sum(axis=0)
            cache[field] = np.concatenate([per_op, total[None]])
        return cache[field]

    def build(self, key: tuple[int, int | None]) -> Phase:
        """One phase, for the detailed engine and for tests."""
        ph = self.batch([key]).phase(0)
        t, i = key
        ph.label = f"step {t}" if i is None else f"step {t} {self.trace.ops[i].name}"
        return ph

    def phases(self, steps: int) -> Iterator[tuple[tuple[int, int | None], Phase]]:
        for key in self.phase_keys(steps):
            yield key, self.build(key)


def _proportional(total: int, weights) -> np.ndarray:
    """Split `total` PEs in proportion to `weights`, at least one each (largest remainder)."""
    w = np.maximum(np.asarray(weights, dtype=np.float64), 1e-9)
    spare = total - len(w)
    share = w / w.sum() * spare
    sizes = 1 + np.floor(share).astype(np.int64)
    rest = total - int(sizes.sum())
    sizes[np.argsort(-(share - np.floor(share)), kind="stable")[:rest]] += 1
    return sizes


_UPDATES = ("upd_reads", "upd_writes", "upd_cycles", "upd_macs", "upd_neurons")


@dataclass(frozen=True)
class PhaseKeys:
    """Phases as two arrays, each phase's step and op (-1: every op, layer_pipelined): a run's
    tens of thousands of (step, op) tuples would keep Python's garbage collector busy (a full
    collection took 0.1 s in a run on the benchmark). Slicing gives PhaseKeys; an index or
    iteration gives (step, op or None) tuples."""

    step: np.ndarray
    op: np.ndarray

    def __len__(self) -> int:
        return len(self.step)

    def __getitem__(self, i):
        if isinstance(i, (int, np.integer)):
            return int(self.step[i]), None if self.op[i] < 0 else int(self.op[i])
        return PhaseKeys(self.step[i], self.op[i])

    def __iter__(self):
        return ((t, None if i < 0 else i) for t, i in zip(self.step.tolist(), self.op.tolist()))


def key_arrays(keys) -> tuple[np.ndarray, np.ndarray]:
    """Phase keys (PhaseKeys, or (step, op or None) tuples) as two arrays: steps, and ops with
    -1 for None."""
    if isinstance(keys, PhaseKeys):
        return keys.step.astype(np.int64, copy=False), keys.op.astype(np.int64, copy=False)
    return (np.array([t for t, _ in keys], dtype=np.int64),
            np.array([-1 if i is None else i for _, i in keys], dtype=np.int64))


def _cat(arrays) -> np.ndarray:
    return np.concatenate(arrays).astype(np.int64, copy=False) if arrays else np.zeros(0, np.int64)

"""The unit of work both engines simulate: one phase between two barriers, as plain arrays.

The mapping builds phases from a trace and an architecture; an engine turns a phase into
per-PE counters. Keeping the phase free of objects-per-event keeps memory flat (see
docs/timing-model.md for the meaning of every field).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

# Column order of the per-PE counter matrix every engine returns.
COUNTERS = (
    "compute",
    "sram_conflict",
    "noc_wait",
    "backpressure",
    "barrier",
    "idle",
    "events",
    "macs",
    "acs",
    "sram_reads",
    "sram_writes",
    "flit_hops",
    "queue_hwm",
    "packets_sent",
    "credit_wait",
    "neuron_updates",
)
C = {name: i for i, name in enumerate(COUNTERS)}
N_COUNTERS = len(COUNTERS)
# The six classes that partition a phase's cycles for every PE.
CYCLE_CLASSES = COUNTERS[:6]

MESH, BUS = 0, 1


@dataclass(frozen=True)
class Timing:
    """The architecture parameters the timing rules read, as integers."""

    rows: int
    cols: int
    topology: int  # MESH or BUS
    queue_depth: int
    decode_cycles: int
    banks: int
    read_latency: int
    sharing: int
    hop_latency: int
    credit_latency: int
    barrier_latency: int

    @property
    def n_pe(self) -> int:
        return self.rows * self.cols

    def as_array(self) -> np.ndarray:
        return np.array(
            [
                self.rows, self.cols, self.topology, self.queue_depth, self.decode_cycles,
                self.banks, self.read_latency, self.sharing, self.hop_latency,
                self.credit_latency, self.barrier_latency,
            ],
            dtype=np.int64,
        )


def _i64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


@dataclass
class Phase:
    """One phase: packets (k), their (packet, destination) pairs (j) and per-PE update work (p)."""

    n_pe: int
    src: np.ndarray  # [K] sending PE, packets of one source in sending order
    flits: np.ndarray  # [K]
    dst_ptr: np.ndarray  # [K+1] CSR into dst
    dst: np.ndarray  # [J] destination PE, increasing within a packet
    reads: np.ndarray  # [J] SRAM words
    cycles: np.ndarray  # [J] MAC-array cycles
    macs: np.ndarray  # [J]
    acs: np.ndarray  # [J]
    upd_reads: np.ndarray  # [P]
    upd_writes: np.ndarray  # [P]
    upd_cycles: np.ndarray  # [P]
    upd_macs: np.ndarray  # [P]
    upd_neurons: np.ndarray  # [P]
    extra_barrier: int = 0
    op_of: np.ndarray | None = None  # [K] op index within the phase (statistics only)
    label: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("src", "flits", "dst_ptr", "dst", "reads", "cycles", "macs", "acs",
                     "upd_reads", "upd_writes", "upd_cycles", "upd_macs", "upd_neurons"):
            setattr(self, name, _i64(getattr(self, name)))
        if self.op_of is None:
            self.op_of = np.zeros(len(self.src), dtype=np.int64)
        else:
            self.op_of = _i64(self.op_of)

    @property
    def n_packets(self) -> int:
        return len(self.src)

    @classmethod
    def empty(cls, n_pe: int, **kw) -> "Phase":
        z = np.zeros(0, dtype=np.int64)
        zp = np.zeros(n_pe, dtype=np.int64)
        return cls(n_pe, z, z, np.zeros(1, np.int64), z, z, z, z, z, zp, zp, zp, zp, zp, **kw)


@dataclass
class PhaseResult:
    cycles: int
    pe: np.ndarray  # [n_pe, N_COUNTERS] int64

    def __eq__(self, other):
        return (isinstance(other, PhaseResult) and self.cycles == other.cycles
                and np.array_equal(self.pe, other.pe))

    def counter(self, name: str) -> np.ndarray:
        return self.pe[:, C[name]]

    def diff(self, other: "PhaseResult") -> str:
        """Human-readable first differences, for test failure messages."""
        out = []
        if self.cycles != other.cycles:
            out.append(f"cycles {self.cycles} != {other.cycles}")
        bad = np.argwhere(self.pe != other.pe)
        for p, c in bad[:10]:
            out.append(f"PE {p} {COUNTERS[c]}: {self.pe[p, c]} != {other.pe[p, c]}")
        return "; ".join(out) or "equal"


@dataclass
class PhaseBatch:
    """Many independent phases as one set of concatenated arrays (the fast engine's input).

    Phase `i` holds packets `k_off[i]:k_off[i+1]`; `dst_ptr` is one global CSR over the
    concatenated (packet, destination) pairs; per-PE update work is `[n_phases, n_pe]`.
    """

    n_pe: int
    k_off: np.ndarray  # [n+1]
    src: np.ndarray  # [K]
    flits: np.ndarray  # [K]
    dst_ptr: np.ndarray  # [K+1] global
    dst: np.ndarray  # [J]
    reads: np.ndarray
    cycles: np.ndarray
    macs: np.ndarray
    acs: np.ndarray
    upd_reads: np.ndarray  # [n, n_pe]
    upd_writes: np.ndarray
    upd_cycles: np.ndarray
    upd_macs: np.ndarray
    upd_neurons: np.ndarray
    extra_barrier: np.ndarray  # [n]
    op_of: np.ndarray  # [K]
    # Compact form: when set, packet k's pairs are rows pair_lo[k] .. pair_lo[k] + count of the
    # pair arrays (dst, reads, cycles, macs, acs), which are then per-op cost tables shared by
    # every packet on the same input channel (on every channel, for a linear op); dst_ptr still
    # numbers the pairs 0..J-1.
    pair_lo: np.ndarray | None = None

    @property
    def n_phases(self) -> int:
        return len(self.k_off) - 1

    def pair_rows(self, ka: int = 0, kb: int | None = None) -> np.ndarray:
        """Row of the pair arrays holding each pair of packets ka..kb-1."""
        kb = len(self.src) if kb is None else kb
        ja, jb = int(self.dst_ptr[ka]), int(self.dst_ptr[kb])
        if self.pair_lo is None:
            return np.arange(ja, jb, dtype=np.int64)
        return ranges(self.pair_lo[ka:kb], np.diff(self.dst_ptr[ka:kb + 1]))

    def materialize(self) -> "PhaseBatch":
        """The same batch with one row of pair arrays per pair (pair_lo unset)."""
        if self.pair_lo is None:
            return self
        rows = self.pair_rows()
        return replace(self, dst=self.dst[rows], reads=self.reads[rows],
                       cycles=self.cycles[rows], macs=self.macs[rows], acs=self.acs[rows],
                       pair_lo=None)

    def phase(self, i: int) -> Phase:
        """Phase i as a stand-alone Phase (for the detailed engine and for tests)."""
        ka, kb = int(self.k_off[i]), int(self.k_off[i + 1])
        ja = int(self.dst_ptr[ka])
        rows = self.pair_rows(ka, kb)
        return Phase(
            self.n_pe, self.src[ka:kb], self.flits[ka:kb], self.dst_ptr[ka:kb + 1] - ja,
            self.dst[rows], self.reads[rows], self.cycles[rows], self.macs[rows],
            self.acs[rows], self.upd_reads[i], self.upd_writes[i], self.upd_cycles[i],
            self.upd_macs[i], self.upd_neurons[i], int(self.extra_barrier[i]),
            op_of=self.op_of[ka:kb],
        )

    @classmethod
    def concat(cls, phases: list[Phase]) -> "PhaseBatch":
        n_pe = phases[0].n_pe if phases else 0
        ks = np.array([p.n_packets for p in phases], dtype=np.int64)
        js = np.array([len(p.dst) for p in phases], dtype=np.int64)
        k_off = np.concatenate([[0], np.cumsum(ks)]).astype(np.int64)
        j_off = np.concatenate([[0], np.cumsum(js)]).astype(np.int64)

        def cat(name):
            arrs = [getattr(p, name) for p in phases]
            return np.concatenate(arrs).astype(np.int64) if arrs else np.zeros(0, np.int64)

        def stack(name):
            return (np.stack([getattr(p, name) for p in phases]).astype(np.int64) if phases
                    else np.zeros((0, n_pe), np.int64))

        dst_ptr = np.concatenate(
            [p.dst_ptr[:-1] + j for p, j in zip(phases, j_off[:-1])] + [j_off[-1:]]
        ).astype(np.int64)
        return cls(
            n_pe, k_off, cat("src"), cat("flits"), dst_ptr, cat("dst"), cat("reads"),
            cat("cycles"), cat("macs"), cat("acs"), stack("upd_reads"), stack("upd_writes"),
            stack("upd_cycles"), stack("upd_macs"), stack("upd_neurons"),
            np.array([p.extra_barrier for p in phases], dtype=np.int64), cat("op_of"),
        )


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for every (s, c): the flat positions of CSR rows."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    before = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else counts
    return np.repeat(np.asarray(starts, dtype=np.int64) - before, counts) + np.arange(total)

"""What a run found, as pandas tables plus a summary, and how it is saved and read back."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .energy import COMPONENTS, energy_pj
from .errors import InputError
from .runner import R, RUN_COUNTERS

# How a PE's cycles are reported: the engines' six classes with `barrier` cut in two.
CLASSES = ("compute", "sram_conflict", "noc_wait", "backpressure", "imbalance", "sync", "idle")
STALLS = CLASSES[1:]
TABLES = ("ops", "phases", "pes", "steps")


def layer_of(name: str) -> str:
    """Layer prefix of an op name: everything before the last dot."""
    return name.rsplit(".", 1)[0] if "." in name else name


@dataclass
class Result:
    """Tables: `ops`, `phases`, `pes`, `steps` (DataFrames) and `summary` (a dict)."""

    summary: dict
    ops: pd.DataFrame
    phases: pd.DataFrame
    pes: pd.DataFrame
    steps: pd.DataFrame
    step_pe_busy: np.ndarray = field(default=None, repr=False)  # [steps, n_pe] compute cycles

    @property
    def layers(self) -> pd.DataFrame:
        num = self.ops.drop(columns=["op", "kind"]).groupby("layer", sort=False).sum()
        return num.reset_index()

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def from_run(cls, trace, arch, mapping, acc, starts, *, engine, notes, wall_s):
        n_pe, clock = mapping.n_pe, float(arch.get("chip.clock_mhz"))
        cycles, rows = acc.phase_cycles, acc.phase_rows

        ph = pd.DataFrame(rows, columns=RUN_COUNTERS)
        ph.insert(0, "step", acc.step_of)
        names = np.array([o.name for o in trace.ops] + ["*"], dtype=object)  # -1: every op
        ph.insert(1, "op", names[acc.op_of])
        ph.insert(2, "start_cycle", starts)
        ph.insert(3, "cycles", cycles)
        _add_imbalance(ph)
        e_ph = energy_pj(rows, cycles, n_pe, arch)
        ph["energy_pj"] = sum(e_ph.values())

        pe_cycles = np.full(n_pe, cycles.sum())
        pe = acc.pe
        e_pe = energy_pj(pe, pe_cycles, 1, arch)
        pes = pd.DataFrame(pe, columns=RUN_COUNTERS)
        pes.insert(0, "pe", np.arange(n_pe))
        pes.insert(1, "row", np.arange(n_pe) // arch.get("chip.mesh_cols"))
        pes.insert(2, "col", np.arange(n_pe) % arch.get("chip.mesh_cols"))
        _add_imbalance(pes)
        pes["energy_pj"] = sum(e_pe.values())

        step_cycles = np.bincount(ph["step"], weights=cycles, minlength=trace.steps).astype(np.int64)
        st = pd.DataFrame({"step": np.arange(trace.steps), "cycles": step_cycles})
        st["latency_ms"] = st["cycles"] / (clock * 1e3)
        st["deadline_ms"] = trace.step_ms
        st["meets_deadline"] = st["latency_ms"] <= st["deadline_ms"]
        st["energy_pj"] = np.bincount(ph["step"], weights=ph["energy_pj"], minlength=trace.steps)

        ops = pd.DataFrame({
            "op": [o.name for o in trace.ops],
            "layer": [layer_of(o.name) for o in trace.ops],
            "kind": [o.kind for o in trace.ops],
        })
        for j, name in enumerate(("events", "deliveries", "macs", "acs", "sram_reads")):
            ops[name] = mapping.op_totals[:, j]
        if mapping.mode == "op_by_op":
            op_phase, op_cycles = acc.op_phase, acc.op_cycles
            ops["cycles"] = op_cycles
            for name in ("compute", "sram_conflict", "noc_wait", "backpressure", "barrier",
                         "sync", "idle", "flit_hops", "sram_writes", "neuron_updates"):
                ops[name] = op_phase[:, R[name]]
            _add_imbalance(ops)
            ops["energy_pj"] = sum(energy_pj(op_phase, op_cycles, n_pe, arch).values())
        # in layer_pipelined mode ops share phases: their cycles are not separable

        total = rows.sum(axis=0) if len(rows) else np.zeros(len(RUN_COUNTERS), np.int64)
        total[R["queue_hwm"]] = rows[:, R["queue_hwm"]].max(initial=0)  # a peak, not a sum
        e_tot = {k: float(v.sum()) for k, v in e_ph.items()}
        summary = _summary(trace, arch, mapping, engine, notes, wall_s, cycles, total, e_tot,
                           ops, st, clock)
        busy = acc.step_pe[:, :, R["compute"]]
        return cls(summary, ops, ph, pes, st, busy)

    # -- saving ------------------------------------------------------------------------------

    def save(self, out: str | os.PathLike, force: bool = False) -> list[Path]:
        """Write every table as CSV and Parquet plus summary.json; refuse to overwrite results."""
        out = Path(out)
        refuse_overwrite(out, force)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in TABLES:
            df = getattr(self, name)
            df.to_csv(out / f"{name}.csv", index=False)
            df.to_parquet(out / f"{name}.parquet", index=False)
            written += [out / f"{name}.csv", out / f"{name}.parquet"]
        np.save(out / "step_pe_busy.npy", self.step_pe_busy, allow_pickle=False)
        (out / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")
        return written + [out / "step_pe_busy.npy", out / "summary.json"]


def refuse_overwrite(out: Path, force: bool):
    """Results already in `out` are not overwritten unless the user says --force."""
    if (Path(out) / "summary.json").exists() and not force:
        raise InputError(f"{out}: --out: this directory already holds results; "
                         "choose another or pass --force to overwrite them")


def load_result(out: str | os.PathLike) -> Result:
    out = Path(out)
    if not (out / "summary.json").exists():
        raise InputError(f"{out}: no summary.json: not a directory written by `hwsim run --out`")
    summary = json.loads((out / "summary.json").read_text())
    tables = {name: pd.read_parquet(out / f"{name}.parquet") for name in TABLES}
    busy = np.load(out / "step_pe_busy.npy", allow_pickle=False)
    return Result(summary, step_pe_busy=busy, **tables)


def _summary(trace, arch, mapping, engine, notes, wall_s, cycles, total, e_tot, ops, steps,
             clock):
    n_pe = mapping.n_pe
    n_cycles = int(cycles.sum())
    time_ms = n_cycles / (clock * 1e3)
    audio_ms = trace.steps * trace.step_ms
    pe_cycles = n_cycles * n_pe
    split = {k: int(total[R[k]]) for k in CLASSES if k != "imbalance"}
    split["imbalance"] = int(total[R["barrier"]] - total[R["sync"]])
    split = {k: split[k] for k in CLASSES}
    stall = max(STALLS, key=lambda k: split[k])
    per_op = []
    for row in ops.itertuples(index=False):
        d = {"op": row.op, "kind": row.kind, "events": int(row.events), "macs": int(row.macs),
             "acs": int(row.acs)}
        if "cycles" in ops.columns:
            d["cycles"] = int(row.cycles)
            d["energy_pj"] = float(row.energy_pj)
        per_op.append(d)
    return {
        "arch": arch.name, "arch_file": str(arch.path) if arch.path else None,
        "trace_file": trace.path, "variant": trace.variant,
        "synthetic_trace": bool(trace.synthetic),
        "engine": engine, "mode": mapping.mode, "notes": notes,
        "steps": trace.steps, "step_ms": trace.step_ms, "n_pe": n_pe, "clock_mhz": clock,
        "phases": len(cycles), "cycles": n_cycles, "time_ms": time_ms, "audio_ms": audio_ms,
        "rtf": time_ms / audio_ms if audio_ms else None,
        "steps_over_deadline": int((~steps["meets_deadline"]).sum()),
        "energy_pj": float(sum(e_tot.values())), "energy_by_component_pj": e_tot,
        "events": int(ops["events"].sum()), "deliveries": int(total[R["events"]]),
        "macs": int(total[R["macs"]]), "acs": int(total[R["acs"]]),
        "sram_reads": int(total[R["sram_reads"]]), "sram_writes": int(total[R["sram_writes"]]),
        "flit_hops": int(total[R["flit_hops"]]), "queue_hwm": int(total[R["queue_hwm"]]),
        "cycle_split_pe_cycles": split,
        "utilization": split["compute"] / pe_cycles if pe_cycles else 0.0,
        "bottleneck": {"class": stall, "pe_cycles": split[stall],
                       "share": split[stall] / pe_cycles if pe_cycles else 0.0},
        "wall_s": wall_s, "ops": per_op,
    }


def _add_imbalance(df: pd.DataFrame):
    """Barrier wait beyond the barrier's own latency: PEs done early waiting for the slowest."""
    df["imbalance"] = df["barrier"] - df["sync"]

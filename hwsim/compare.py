"""Run several traces (dense, FATReLU, spiking, ...) on one chip and tabulate what each costs.

    from hwsim.compare import compare, format_table
    df = compare("archs/pe64.yaml", ["traces/dense.npz", "traces/fatrelu.npz"])
    print(format_table(df))

Speed-up and energy saving are against the first trace: speed-up = its cycles ÷ this trace's
cycles, energy saving = its energy ÷ this trace's energy (both 1.0 for the first row, above 1.0
when this trace is cheaper). Activation sparsity = 1 − events ÷ dense events, where dense events
= Σ over ops of input width × simulated steps (every input channel firing at every step).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

COLUMNS = (
    "variant", "trace_file", "steps", "cycles", "energy_pj", "latency_mean_ms", "latency_max_ms",
    "rtf", "steps_over_deadline", "events", "dense_events", "sparsity", "macs", "acs",
    "bottleneck", "speedup", "energy_saving",
)


def dense_events(result, trace=None) -> int:
    """Events the run would see if every input channel fired at every simulated step."""
    steps = int(result.summary["steps"])
    if trace is not None:
        return int(sum(op.in_width for op in trace.ops)) * steps
    if "in_width" in result.ops.columns:
        return int(result.ops["in_width"].sum()) * steps
    raise ValueError("dense_events: need the trace (op input widths) for this result")


def row_of(result, trace=None) -> dict:
    """One comparison row (without the columns relative to the first trace)."""
    s = result.summary
    lat = result.steps["latency_ms"].to_numpy(dtype=float)
    events = int(result.ops["events"].sum())
    dense = dense_events(result, trace)
    return {
        "variant": s.get("variant"),
        "trace_file": s.get("trace_file"),
        "steps": int(s["steps"]),
        "cycles": int(s["cycles"]),
        "energy_pj": float(s["energy_pj"]),
        "latency_mean_ms": float(lat.mean()) if len(lat) else 0.0,
        "latency_max_ms": float(lat.max()) if len(lat) else 0.0,
        "rtf": s.get("rtf"),
        "steps_over_deadline": int(s.get("steps_over_deadline", 0)),
        "events": events,
        "dense_events": dense,
        "sparsity": 1.0 - events / dense if dense else 0.0,
        "macs": int(s["macs"]),
        "acs": int(s["acs"]),
        "bottleneck": (s.get("bottleneck") or {}).get("class"),
    }


def compare_results(results, traces=None, arch_name: str | None = None) -> pd.DataFrame:
    """The comparison table of finished runs (the first is the reference)."""
    traces = list(traces) if traces is not None else [None] * len(results)
    if len(traces) != len(results):
        raise ValueError("compare_results: one trace (or None) per result")
    rows = [row_of(r, t) for r, t in zip(results, traces)]
    df = pd.DataFrame(rows)
    if len(df):
        c0, e0 = df["cycles"].iloc[0], df["energy_pj"].iloc[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            df["speedup"] = np.where(df["cycles"] > 0, c0 / df["cycles"].replace(0, np.nan), np.nan)
            df["energy_saving"] = np.where(df["energy_pj"] > 0,
                                           e0 / df["energy_pj"].replace(0, np.nan), np.nan)
        df.loc[0, ["speedup", "energy_saving"]] = 1.0
    else:
        df = pd.DataFrame(columns=list(COLUMNS))
    df = df[list(COLUMNS)]
    arch = arch_name or (results[0].summary.get("arch") if results else None)
    if arch:
        df.attrs["arch"] = arch
    return df


def compare(arch, traces, engine: str = "fast", steps: int | None = None, jobs: int = 1,
            overrides: dict | None = None, progress: bool = False) -> pd.DataFrame:
    """Run every trace (Trace or path) on `arch` (Arch or path); one row per trace."""
    from .arch import Arch, load_arch
    from .runner import run
    from .trace import Trace, load_trace

    if not isinstance(arch, Arch):
        arch = load_arch(arch, overrides)
    elif overrides:
        arch = arch.with_overrides(overrides)
    loaded = [t if isinstance(t, Trace) else load_trace(t) for t in traces]
    results = [run(t, arch, engine=engine, steps=steps, jobs=jobs, progress=progress)
               for t in loaded]
    return compare_results(results, loaded, arch_name=arch.name)


def _si(x: float) -> str:
    x = float(x)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _ms(x: float) -> str:
    return f"{x:.4g} ms" if x >= 1 or x == 0 else f"{x * 1e3:.4g} us"


def _energy(pj: float) -> str:
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.3f} {unit}"
    return f"{pj:.1f} pJ"


def format_table(df: pd.DataFrame) -> str:
    """The comparison as an aligned text table for the terminal."""
    head = ["variant", "trace", "cycles", "energy", "lat mean", "lat max", "RTF", "sparsity",
            "MACs", "ACs", "speed-up", "energy saving"]
    rows = []
    for r in df.itertuples(index=False):
        rtf = "n/a" if r.rtf is None or r.rtf != r.rtf else f"{r.rtf:.4g}"
        rows.append([
            str(r.variant), os.path.basename(str(r.trace_file)) if r.trace_file else "-",
            f"{int(r.cycles):,}", _energy(r.energy_pj), _ms(r.latency_mean_ms),
            _ms(r.latency_max_ms), rtf, f"{r.sparsity:.1%}", _si(r.macs), _si(r.acs),
            f"{r.speedup:.2f}x", f"{r.energy_saving:.2f}x",
        ])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    left = {0, 1}

    def fmt(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    lines = [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows]
    arch = df.attrs.get("arch")
    if arch:
        lines.insert(0, f"on {arch}; speed-up and energy saving relative to the first row")
    return "\n".join(lines)

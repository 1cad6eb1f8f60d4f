"""The bottleneck of a run, in words, with the figures behind it.

    print(bottleneck_text(result))

    bottleneck: barrier wait (load imbalance), 41.2% of all PE-cycles (compute 30.1%)
      -> work is spread unevenly over the PEs: ...
      most expensive ops:
        layers.0.in_proj: 18,240 cycles (23% of the run), 41% barrier wait (load imbalance), ...
"""

from __future__ import annotations

from .result import CLASSES as CYCLE_CLASSES
from .result import STALLS

LABELS = {
    "compute": "compute",
    "sram_conflict": "SRAM bank conflict",
    "noc_wait": "NoC wait",
    "backpressure": "queue-full back-pressure",
    "imbalance": "barrier wait (load imbalance)",
    "sync": "barrier latency (synchronisation)",
    "idle": "idle PEs",
}
HINTS = {
    "sram_conflict": "PEs sharing an SRAM collide: more banks or less sram.sharing",
    "noc_wait": "cores wait for events still in the network: NoC latency/bandwidth, or too "
                "little work per PE",
    "backpressure": "sources wait for queue credits: deeper queues (pe.queue_depth) or faster "
                    "cores",
    "imbalance": "work is spread unevenly over the PEs and the fastest wait for the slowest at "
                 "each barrier: a balanced mapping (mapping.strategy=balanced)",
    "sync": "the barriers themselves cost the time: fewer, larger phases "
            "(mapping.mode=layer_pipelined has one barrier per step instead of one per op)",
    "idle": "many PEs get no work at all: the ops are narrower than the chip (a smaller chip or "
            "layer_pipelined mode)",
}


def _split_text(split: dict, total: float, n: int = 2, skip=("compute",)) -> str:
    parts = sorted(((k, v) for k, v in split.items() if k not in skip and v > 0),
                   key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{v / total:.0%} {LABELS[k]}" for k, v in parts)


def dominant_stall(split: dict) -> str | None:
    """The stall class with the most PE-cycles (None when nothing stalled)."""
    best = max(STALLS, key=lambda k: split.get(k, 0))
    return best if split.get(best, 0) > 0 else None


def bottleneck_text(result, top: int = 3) -> str:
    """The dominant stall class overall and for the `top` most expensive ops (by cycles; by
    energy where ops have no cycles of their own; by time step in layer_pipelined mode)."""
    s = result.summary
    n_pe = int(s.get("n_pe") or len(result.pes) or 1)
    split = {k: int(v) for k, v in (s.get("cycle_split_pe_cycles") or {}).items()}
    if not split:
        split = {k: int(result.pes[k].sum()) for k in CYCLE_CLASSES}
    total = sum(split.values())
    if total == 0:
        return "bottleneck: nothing ran (0 cycles)"
    stall = dominant_stall(split)
    lines = []
    if stall is None:
        lines.append(f"bottleneck: none: compute is {split['compute'] / total:.1%} of all "
                     "PE-cycles")
    else:
        lines.append(f"bottleneck: {LABELS[stall]}, {split[stall] / total:.1%} of all PE-cycles "
                     f"(compute {split['compute'] / total:.1%}; "
                     f"{_split_text(split, total, 3, ('compute', stall)) or 'no other stalls'})")
        lines.append(f"  -> {HINTS[stall]}")

    ops = result.ops
    run_cycles = int(s.get("cycles") or 0)
    if "cycles" in ops.columns and all(c in ops.columns for c in CYCLE_CLASSES):
        lines.append(f"  most expensive ops (by cycles, of {len(ops)}):")
        for r in ops.sort_values("cycles", ascending=False, kind="stable").head(top).itertuples():
            cyc = int(r.cycles)
            pc = cyc * n_pe or 1
            op_split = {k: int(getattr(r, k)) for k in CYCLE_CLASSES}
            share = f" ({cyc / run_cycles:.0%} of the run)" if run_cycles else ""
            st = dominant_stall(op_split)
            stalls = _split_text(op_split, pc, 2) or "no stalls"
            what = f"mostly {LABELS[st]}" if st else "compute-bound"
            lines.append(f"    {r.op}: {cyc:,} cycles{share}, {stalls}; "
                         f"compute {op_split['compute'] / pc:.0%} -> {what}")
    elif "energy_pj" in ops.columns:
        tot_e = float(s.get("energy_pj") or ops["energy_pj"].sum() or 1)
        lines.append(f"  most expensive ops (by energy, of {len(ops)}):")
        ranked = ops.sort_values("energy_pj", ascending=False, kind="stable").head(top)
        for r in ranked.itertuples():
            lines.append(f"    {r.op}: {r.energy_pj / 1e6:.3f} uJ ({r.energy_pj / tot_e:.0%} of "
                         f"the energy), {int(r.events):,} events, {int(r.macs):,} MACs, "
                         f"{int(r.acs):,} ACs")
    elif len(result.phases) and all(c in result.phases.columns for c in CYCLE_CLASSES):
        # layer_pipelined: ops share their phases; rank the time steps instead
        ph = result.phases.groupby("step", sort=True)[["cycles", *CYCLE_CLASSES]].sum()
        lines.append(f"  ops run concurrently ({s.get('mode', 'layer_pipelined')}): no per-op "
                     f"cycles; most expensive time steps (of {len(ph)}):")
        ranked = ph.sort_values("cycles", ascending=False, kind="stable").head(top)
        for step, r in ranked.iterrows():
            cyc = int(r["cycles"])
            pc = cyc * n_pe or 1
            op_split = {k: int(r[k]) for k in CYCLE_CLASSES}
            st = dominant_stall(op_split)
            what = f"mostly {LABELS[st]}" if st else "compute-bound"
            lines.append(f"    step {int(step)}: {cyc:,} cycles, "
                         f"{_split_text(op_split, pc, 2) or 'no stalls'}; "
                         f"compute {op_split['compute'] / pc:.0%} -> {what}")
        if len(ops) and "macs" in ops.columns:
            work = (ops["macs"] + ops["acs"]).to_numpy()
            heavy = ops.iloc[work.argsort()[::-1][:top]]
            lines.append("  heaviest ops by work: " + ", ".join(
                f"{r.op} ({int(r.macs):,} MACs + {int(r.acs):,} ACs)" for r in heavy.itertuples()))
    return "\n".join(lines)

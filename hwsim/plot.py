"""Figures of a run: where the cycles went, how busy each PE was, where the energy went, and
whether each time step met its real-time deadline; plus the grouped bars of a comparison.

One function per figure; each takes a `Result` (or, for `compare_bars`, the comparison table)
and an output path, and writes a PNG. Figures are drawn on matplotlib's Agg canvas directly
(no pyplot): no window ever opens and the caller's own matplotlib state is left alone.

    from hwsim import plot
    plot.plot_all(result, "out/")        # -> [out/bottleneck.png, out/pe_heatmap.png, ...]
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .result import CLASSES as CYCLE_CLASSES

# file names written by plot_all, in the order returned
PLOT_FILES = {
    "bottleneck": "bottleneck.png",
    "pe_heatmap": "pe_heatmap.png",
    "energy": "energy.png",
    "latency": "latency.png",
}
COMPARE_FILE = "compare.png"

CLASS_LABELS = {
    "compute": "compute",
    "sram_conflict": "SRAM bank conflict",
    "noc_wait": "NoC wait",
    "backpressure": "queue-full back-pressure",
    "imbalance": "barrier wait (load imbalance)",
    "sync": "barrier latency",
    "idle": "idle",
}
CLASS_COLORS = {
    "compute": "#2ca02c",
    "sram_conflict": "#ff7f0e",
    "noc_wait": "#1f77b4",
    "backpressure": "#9467bd",
    "imbalance": "#d62728",
    "sync": "#8c564b",
    "idle": "#c7c7c7",
}
COMPONENT_LABELS = {
    "mac": "MAC",
    "ac": "AC (accumulate)",
    "sram_read": "SRAM read",
    "sram_write": "SRAM write",
    "queue": "queue push/pop",
    "noc": "NoC flit-hops",
    "neuron_update": "neuron update",
    "leakage": "leakage",
}
DPI = 110
MAX_BARS = 40  # more ops than this: one bar per layer


# -- helpers --------------------------------------------------------------------------------


def short_name(name: str, width: int = 26) -> str:
    """A compact label for an op or layer name: `layers.3.in_proj` -> `L3.in_proj`."""
    s = re.sub(r"(?:^|(?<=\.))(?:layers|layer|blocks|block)\.(\d+)(?=\.|$)", r"L\1", str(name))
    if len(s) > width:
        keep = width - 1
        s = s[: keep // 2] + "…" + s[-(keep - keep // 2):]
    return s


def run_title(summary: dict) -> str:
    """`<variant> trace (<file>) on <arch>`, the subtitle of every figure of a run."""
    trace = summary.get("trace_file")
    trace = os.path.basename(str(trace)) if trace else "in-memory trace"
    variant = summary.get("variant", "?")
    arch = summary.get("arch", "?")
    extra = []
    if summary.get("n_pe"):
        extra.append(f"{summary['n_pe']} PEs")
    if summary.get("mode"):
        extra.append(str(summary["mode"]))
    if summary.get("synthetic_trace"):
        extra.append("SYNTHETIC trace")
    tail = f" ({', '.join(extra)})" if extra else ""
    return f"{variant} trace ({trace}) on {arch}{tail}"


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _int_xaxis(ax):
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _ms(x: float) -> str:
    """A duration given in ms, in ms or µs, whichever reads better."""
    return f"{x:.3g} ms" if x >= 1 or x == 0 else f"{x * 1e3:.3g} µs"


def _energy_unit(max_pj: float) -> tuple[str, float]:
    for unit, scale in (("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if max_pj >= scale:
            return unit, scale
    return "pJ", 1.0


def _n_pe(result) -> int:
    return int(result.summary.get("n_pe") or len(result.pes) or 1)


def _has_cycle_columns(df) -> bool:
    return all(c in df.columns for c in CYCLE_CLASSES)


def _per_op_or_layer(result, by: str, columns):
    """(labels, frame) with one row per op or per layer, in execution order."""
    ops = result.ops
    if by == "auto":
        by = "op" if len(ops) <= MAX_BARS else "layer"
    if by == "layer":
        frame = ops.groupby("layer", sort=False)[list(columns)].sum().reset_index()
        return [short_name(x) for x in frame["layer"]], frame, "layer"
    if by != "op":
        raise ValueError(f"by: expected 'auto', 'op' or 'layer', got {by!r}")
    return [short_name(x) for x in ops["op"]], ops, "op"


# -- figures --------------------------------------------------------------------------------


def bottleneck_breakdown(result, path, by: str = "auto") -> Path:
    """Stacked bars of cycles split into compute, SRAM conflict, NoC wait, back-pressure, barrier
    wait and idle: one bar per op (or per layer when there are many ops, or `by="layer"`).

    Bars are PE-cycles divided by the number of PEs, so a bar is as long as its op took. In
    `layer_pipelined` mode the ops share phases and have no cycles of their own: one bar per
    time step instead, from the `phases` table.
    """
    s, n_pe = result.summary, _n_pe(result)
    if _has_cycle_columns(result.ops):
        labels, frame, kind = _per_op_or_layer(result, by, CYCLE_CLASSES)
        n = len(labels)
        fig = _figure(10.5, max(3.6, 0.3 * n + 1.8))
        ax = fig.add_subplot()
        y = np.arange(n)
        left = np.zeros(n)
        for c in CYCLE_CLASSES:
            v = frame[c].to_numpy(dtype=float) / n_pe
            ax.barh(y, v, left=left, color=CLASS_COLORS[c], label=CLASS_LABELS[c], height=0.75)
            left += v
        ax.set_yticks(y, labels, fontsize=8 if n > 20 else 9)
        ax.invert_yaxis()  # execution order, top to bottom
        ax.set_xlabel(f"cycles (PE-cycles ÷ {n_pe} PEs)")
        ax.set_ylabel(kind)
        if n <= MAX_BARS and left.max(initial=0) > 0:
            for yi, tot in zip(y, left):
                ax.text(tot, yi, f" {tot:,.0f}", va="center", fontsize=7, color="#333333")
            ax.set_xlim(0, left.max() * 1.14)
        what = f"per {kind}"
    else:  # layer_pipelined: per time step
        ph = result.phases
        per = ph.groupby("step", sort=True)[list(CYCLE_CLASSES)].sum()
        x = per.index.to_numpy()
        fig = _figure(10.5, 4.8)
        ax = fig.add_subplot()
        bottom = np.zeros(len(x))
        width = 0.8 if len(x) <= 60 else 1.0
        for c in CYCLE_CLASSES:
            v = per[c].to_numpy(dtype=float) / n_pe
            ax.bar(x, v, bottom=bottom, color=CLASS_COLORS[c], label=CLASS_LABELS[c], width=width,
                   linewidth=0)
            bottom += v
        ax.set_xlabel("time step")
        ax.set_ylabel(f"cycles (PE-cycles ÷ {n_pe} PEs)")
        _int_xaxis(ax)
        what = "per time step (ops run concurrently: no per-op split)"
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
              title="cycle class", title_fontsize=8)
    ax.grid(axis="x" if _has_cycle_columns(result.ops) else "y", alpha=0.3)
    ax.set_axisbelow(True)
    b = s.get("bottleneck") or {}
    sub = (f"bottleneck: {CLASS_LABELS.get(b.get('class'), b.get('class'))} "
           f"({b.get('share', 0):.0%} of PE-cycles)" if b else "")
    fig.suptitle(f"Where the cycles went, {what}\n{run_title(s)}", fontsize=10)
    if sub:
        ax.set_title(sub, fontsize=9, loc="left")
    return _save(fig, path)


def pe_heatmap(result, path) -> Path:
    """Utilization of every PE at every time step (compute cycles ÷ the step's cycles), plus
    the whole run's utilization laid out on the mesh."""
    s = result.summary
    busy = result.step_pe_busy
    if busy is None:
        raise ValueError("pe_heatmap: the result has no step_pe_busy matrix")
    busy = np.asarray(busy, dtype=float)
    cyc = result.steps["cycles"].to_numpy(dtype=float)[: busy.shape[0]]
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(cyc[:, None] > 0, busy / cyc[:, None], np.nan)
    n_steps, n_pe = util.shape
    fig = _figure(12.0, max(4.0, min(9.0, 2.2 + 0.045 * n_pe)))
    gs = fig.add_gridspec(1, 2, width_ratios=[3.2, 1.0])
    ax = fig.add_subplot(gs[0])
    im = ax.imshow(util.T, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1,
                   interpolation="nearest", extent=(-0.5, n_steps - 0.5, -0.5, n_pe - 0.5))
    ax.set_xlabel("time step")
    ax.set_ylabel("PE index")
    _int_xaxis(ax)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("per time step", fontsize=9, loc="left")
    fig.colorbar(im, ax=ax, label="utilization (compute cycles ÷ step cycles)", pad=0.01)

    ax2 = fig.add_subplot(gs[1])
    pes = result.pes
    total = float(s.get("cycles") or result.steps["cycles"].sum() or 1)
    if {"row", "col"} <= set(pes.columns) and len(pes):
        rows, cols = int(pes["row"].max()) + 1, int(pes["col"].max()) + 1
        grid = np.full((rows, cols), np.nan)
        grid[pes["row"].to_numpy(), pes["col"].to_numpy()] = pes["compute"].to_numpy() / total
        ax2.imshow(grid, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        if rows * cols <= 64:
            for r in range(rows):
                for c in range(cols):
                    v = grid[r, c]
                    ax2.text(c, r, f"{v:.0%}", ha="center", va="center", fontsize=7,
                             color="white" if v < 0.6 else "black")
        ax2.set_xlabel("mesh column")
        ax2.set_ylabel("mesh row")
        if cols <= 16:
            ax2.set_xticks(range(cols))
        if rows <= 16:
            ax2.set_yticks(range(rows))
        mean = s.get("utilization", 0)
        ax2.set_title(f"whole run, on the {rows}×{cols} mesh\n(mean {mean:.1%})", fontsize=9,
                      loc="left")
    else:
        ax2.axis("off")
    fig.suptitle(f"PE utilization\n{run_title(s)}", fontsize=10)
    return _save(fig, path)


def energy_breakdown(result, path, top: int = 25) -> Path:
    """Energy per hardware component (MAC, SRAM, NoC, queues, leakage, ...) and per op (or
    layer; per time step in `layer_pipelined` mode, where ops have no energy of their own)."""
    s = result.summary
    comp = dict(s.get("energy_by_component_pj") or {})
    total = float(s.get("energy_pj") or sum(comp.values()) or 0.0)
    fig = _figure(12.0, 5.2)
    gs = fig.add_gridspec(1, 2, width_ratios=[1.0, 1.35])

    ax = fig.add_subplot(gs[0])
    items = sorted(comp.items(), key=lambda kv: kv[1])
    unit, scale = _energy_unit(max([v for _, v in items] + [total, 0.0]))
    y = np.arange(len(items))
    vals = np.array([v for _, v in items]) / scale
    ax.barh(y, vals, color="#4c72b0", height=0.7)
    ax.set_yticks(y, [COMPONENT_LABELS.get(k, k) for k, _ in items], fontsize=9)
    for yi, (k, v) in zip(y, items):
        ax.text(v / scale, yi, f" {v / max(total, 1e-30):.1%}", va="center", fontsize=8)
    ax.set_xlim(0, (vals.max(initial=0) or 1) * 1.22)
    ax.set_xlabel(f"energy ({unit})")
    ax.set_title(f"per component (total {total / scale:,.3g} {unit})", fontsize=9, loc="left")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)

    ax2 = fig.add_subplot(gs[1])
    if "energy_pj" in result.ops.columns:
        labels, frame, kind = _per_op_or_layer(result, "auto", ["energy_pj"])
        e = frame["energy_pj"].to_numpy(dtype=float)
        order = np.argsort(-e, kind="stable")[:top]
        shown = len(order)
        u2, sc2 = _energy_unit(e.max(initial=0))
        y2 = np.arange(shown)
        ax2.barh(y2, e[order] / sc2, color="#dd8452", height=0.7)
        ax2.set_yticks(y2, [labels[i] for i in order], fontsize=8 if shown > 15 else 9)
        ax2.invert_yaxis()
        ax2.set_xlabel(f"energy ({u2})")
        more = f", top {shown} of {len(e)}" if shown < len(e) else ""
        ax2.set_title(f"per {kind}{more}, largest first", fontsize=9, loc="left")
        ax2.grid(axis="x", alpha=0.3)
    else:
        st = result.steps
        e = st["energy_pj"].to_numpy(dtype=float)
        u2, sc2 = _energy_unit(e.max(initial=0))
        ax2.bar(st["step"], e / sc2, color="#dd8452", width=0.8 if len(e) <= 60 else 1.0)
        ax2.set_xlabel("time step")
        _int_xaxis(ax2)
        ax2.set_ylabel(f"energy ({u2})")
        ax2.set_title("per time step (ops share phases: no per-op split)", fontsize=9, loc="left")
        ax2.grid(axis="y", alpha=0.3)
    ax2.set_axisbelow(True)
    fig.suptitle(f"Where the energy went\n{run_title(s)}", fontsize=10)
    return _save(fig, path)


def latency_per_step(result, path) -> Path:
    """Latency of every time step against its real-time deadline (the step duration)."""
    s = result.summary
    st = result.steps
    x = st["step"].to_numpy()
    lat = st["latency_ms"].to_numpy(dtype=float)
    dl = st["deadline_ms"].to_numpy(dtype=float)
    over = lat > dl
    fig = _figure(10.5, 4.6)
    ax = fig.add_subplot()
    width = 0.8 if len(x) <= 60 else 1.0
    ax.bar(x[~over], lat[~over], width=width, color="#4c72b0", label="latency (meets deadline)",
           linewidth=0)
    if over.any():
        ax.bar(x[over], lat[over], width=width, color="#d62728", label="latency (over deadline)",
               linewidth=0)
    if len(x):
        ax.step(np.r_[x - 0.5, x[-1] + 0.5], np.r_[dl, dl[-1]], where="post", color="black",
                linestyle="--", linewidth=1.2, label=f"deadline ({dl.max():g} ms per step)")
    pos = lat[lat > 0]
    if len(pos) and len(dl) and (dl.max() / pos.max() > 20 or pos.max() / dl.max() > 20
                                 or pos.max() / pos.min() > 100):
        ax.set_yscale("log")
        ax.set_ylim(bottom=pos.min() / 2, top=max(dl.max(), pos.max()) * 2)
        scale = " (log scale)"
    else:
        ax.set_ylim(0, max(dl.max(initial=0), lat.max(initial=0)) * 1.12 or 1)
        scale = ""
    ax.set_xlabel("time step")
    ax.set_ylabel(f"latency (ms){scale}")
    _int_xaxis(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    rtf = s.get("rtf")
    head = (f"real-time factor {rtf:.3g}, " if rtf is not None else "") + \
        f"{int(over.sum())} of {len(x)} steps over the deadline, " \
        f"mean {_ms(lat.mean() if len(lat) else 0.0)}, max {_ms(lat.max(initial=0))}"
    ax.set_title(head, fontsize=9, loc="left")
    fig.suptitle(f"Latency per time step\n{run_title(s)}", fontsize=10)
    return _save(fig, path)


def plot_all(result, out_dir) -> list[Path]:
    """Write the four figures of a run into `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        bottleneck_breakdown(result, out / PLOT_FILES["bottleneck"]),
        pe_heatmap(result, out / PLOT_FILES["pe_heatmap"]),
        energy_breakdown(result, out / PLOT_FILES["energy"]),
        latency_per_step(result, out / PLOT_FILES["latency"]),
    ]


# -- comparison -----------------------------------------------------------------------------

COMPARE_METRICS = (
    ("cycles", "cycles"),
    ("energy_pj", "energy"),
    ("latency_mean_ms", "mean latency\nper step"),
    ("latency_max_ms", "max latency\nper step"),
    ("macs", "MACs"),
    ("acs", "ACs"),
    ("ops", "MACs + ACs"),
)


def compare_bars(df, path, title: str | None = None) -> Path:
    """Grouped bars of a comparison table (`hwsim.compare.compare`): every metric relative to
    the first trace (one group per metric, one bar per trace), and each trace's activation
    sparsity and real-time factor."""
    df = df.copy()
    if "macs" in df and "acs" in df:
        df["ops"] = df["macs"] + df["acs"]
    names = [f"{v} ({os.path.basename(str(f))})" if f else str(v)
             for v, f in zip(df["variant"], df.get("trace_file", [None] * len(df)))]
    base = df.iloc[0]
    metrics = [(c, lab) for c, lab in COMPARE_METRICS
               if c in df.columns and float(base[c]) != 0]
    dropped = [lab for c, lab in COMPARE_METRICS if c in df.columns and float(base[c]) == 0]
    n_t, n_m = len(df), len(metrics)
    fig = _figure(12.5, 5.0)
    gs = fig.add_gridspec(1, 2, width_ratios=[2.6, 1.0])
    ax = fig.add_subplot(gs[0])
    width = 0.8 / max(n_t, 1)
    cmap = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
            "#8c8c8c"]
    top = 1.0
    for i in range(n_t):
        rel = []
        for c, _ in metrics:
            b, v = float(base[c]), float(df.iloc[i][c])
            rel.append(v / b if b else (np.nan if v else 1.0))
        rel = np.array(rel)
        xs = np.arange(n_m) + (i - (n_t - 1) / 2) * width
        ax.bar(xs, np.nan_to_num(rel, nan=0.0), width=width * 0.95, color=cmap[i % len(cmap)],
               label=names[i])
        for xv, r in zip(xs, rel):
            txt = "n/a" if np.isnan(r) else f"{r:.2f}"
            ax.text(xv, 0 if np.isnan(r) else r, txt, ha="center", va="bottom",
                    fontsize=7 if n_t <= 3 else 6, rotation=0 if n_t <= 3 else 90)
        top = max(top, np.nanmax(rel, initial=0))
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    ax.set_xticks(np.arange(n_m), [lab for _, lab in metrics], fontsize=9)
    ax.set_ylabel(f"relative to {names[0]} (×)")
    ax.set_ylim(0, top * 1.18)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(n_t, 3), fontsize=8,
              frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    note = (f"; not shown, the first trace has none: {', '.join(dropped)}" if dropped else "")
    ax.set_title(f"metrics relative to the first trace (lower is better){note}", fontsize=9,
                 loc="left")

    ax2 = fig.add_subplot(gs[1])
    y = np.arange(n_t)
    sp = df["sparsity"].to_numpy(dtype=float) * 100 if "sparsity" in df else np.zeros(n_t)
    ax2.barh(y, sp, color=[cmap[i % len(cmap)] for i in range(n_t)], height=0.6)
    rtfs = list(df["rtf"]) if "rtf" in df else [None] * n_t
    ax2.set_yticks(y, [f"{v}\nRTF {float(r):.3g}" if r is not None and r == r else str(v)
                       for v, r in zip(df["variant"], rtfs)], fontsize=9)
    ax2.invert_yaxis()
    ax2.set_xlim(0, 115)
    ax2.set_xlabel("activation sparsity (%)")
    for yi, p in enumerate(sp):
        ax2.text(p, yi, f" {p:.0f}%", va="center", fontsize=8)
    ax2.set_title("sparsity (1 − events ÷ dense events)\nand real-time factor", fontsize=9,
                  loc="left")
    ax2.grid(axis="x", alpha=0.3)
    ax2.set_axisbelow(True)
    arch = df.attrs.get("arch") if hasattr(df, "attrs") else None
    head = title or ("Variant comparison" + (f" on {arch}" if arch else ""))
    fig.suptitle(head, fontsize=10)
    return _save(fig, path)

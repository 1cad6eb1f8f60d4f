"""Algorithm-hardware co-exploration: let the bottleneck breakdown pick the next design change.

Start from archs/pe64.yaml and a trace; run; read the dominant stall class; apply the change
that class points at; keep it if the efficiency (energy x latency per time step) improves at
equal or lower area; repeat until no rule helps. Every figure printed, and every figure in the
page it writes (docs/co-exploration.md), comes from the runs of this script.

    python examples/co_exploration.py                     # FATReLU and spiking traces
    python examples/co_exploration.py --trace traces/fatrelu.npz --steps 20

Area proxy (an assumption, stated in the page): PEs x MAC lanes + total SRAM KiB (weights and
state) + total event-queue KiB.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import hwsim
from hwsim.arch import load_arch
from hwsim.errors import InputError
from hwsim.plot import bottleneck_breakdown
from hwsim.trace import load_trace

ROOT = Path(__file__).resolve().parents[1]

# What each stall class points at: (hypothesis, candidate changes tried in order).
RULES = {
    "sync": ("the barriers themselves cost the time (one per op): run the ops of a step "
             "concurrently on PE groups, one barrier per step",
             [{"mapping.mode": "layer_pipelined"},
              {"mapping.mode": "layer_pipelined", "mapping.strategy": "balanced"}]),
    "imbalance": ("PEs finish at different times and wait at the barrier: spread neurons by "
                  "the work the trace puts on them",
                  [{"mapping.strategy": "balanced"}]),
    "idle": ("many PEs get no work: give each op its own PE group",
             [{"mapping.mode": "layer_pipelined"}, {"mapping.strategy": "balanced"}]),
    "noc_wait": ("cores starve while events cross the NoC: multicast sends one packet per "
                 "event instead of one per destination (wider links would cost area)",
                 [{"noc.multicast": True}]),
    "backpressure": ("sources wait for queue credits: deeper queues",
                     [{"pe.queue_depth": "x2"}]),
    "sram_conflict": ("PEs collide on shared SRAMs: more banks in the same capacity",
                      [{"sram.banks": "x2"}]),
}


@dataclass
class Point:
    overrides: dict
    summary: dict
    area: float

    @property
    def edp(self) -> float:
        """Energy x latency per time step (pJ x ms): lower is better."""
        s = self.summary
        return (s["energy_pj"] / s["steps"]) * (s["time_ms"] / s["steps"])


def area_proxy(arch) -> float:
    n = arch.n_pe
    event_bits = arch.get("noc.address_bits") + arch.get("sram.value_bits")
    queue_kib = arch.get("pe.queue_depth") * event_bits / 8 / 1024
    return n * arch.get("pe.mac_lanes") + n * arch.get("sram.capacity_kib") + n * queue_kib


def resolve(base, change: dict) -> dict:
    """'x2' means twice the current value."""
    out = {}
    for k, v in change.items():
        out[k] = base.get(k) * 2 if v == "x2" else v
    return out


def evaluate(arch_path, trace, overrides, steps) -> Point:
    arch = load_arch(arch_path, overrides)
    r = hwsim.simulate(arch, trace, steps=steps)
    return Point(dict(overrides), r.summary, area_proxy(arch)), r


def explore(arch_path: Path, trace_path: Path, steps: int | None, log, img_dir: Path | None):
    trace = load_trace(trace_path)
    current, result = evaluate(arch_path, trace, {}, steps)
    start = current
    tried: set[str] = set()
    log(f"\n## {trace_path.name} on {arch_path.name}\n")
    rows = [_row("start", current, start)]
    if img_dir:
        _figure(result, img_dir, f"{trace_path.stem}_0_start.png", "start", log)
    for step in range(1, 10):
        split = current.summary["cycle_split_pe_cycles"]
        ranked = sorted((k for k in RULES if split.get(k, 0) > 0), key=lambda k: -split[k])
        moved = False
        for stall in ranked:
            hypothesis, changes = RULES[stall]
            base = load_arch(arch_path, current.overrides)
            for change in changes:
                change = resolve(base, change)
                key = repr(sorted(change.items()))
                if key in tried or all(base.get(k) == v for k, v in change.items()):
                    continue
                tried.add(key)
                share = split[stall] / sum(split.values())
                what = ", ".join(f"{k}={v}" for k, v in change.items())
                head = (f"\nStep {step}: bottleneck **{stall}** ({share:.0%} of PE-cycles). "
                        f"Hypothesis: {hypothesis}. Change: `{what}` -> ")
                try:
                    cand, res = evaluate(arch_path, trace, {**current.overrides, **change}, steps)
                except InputError as e:  # e.g. the new placement does not fit the SRAMs
                    log(head + f"rejected (not feasible: {str(e).split(': ', 2)[-1]}).\n")
                    continue
                verdict = ("kept" if cand.edp < current.edp and cand.area <= start.area
                           else "rejected")
                log(head + f"{verdict} (EDP/step {cand.edp / current.edp:.3f}x, "
                    f"area {cand.area:.0f}).\n")
                if verdict == "kept":
                    rows.append(_row(what, cand, start))
                    if img_dir:
                        _figure(res, img_dir, f"{trace_path.stem}_{step}.png", what, log)
                    current, moved = cand, True
                    break
            if moved:
                break
        if not moved:
            break
    log("\n" + _row_header())
    for r in rows:
        log(r)
    gain = 1 - current.edp / start.edp
    cyc = 1 - current.summary["cycles"] / start.summary["cycles"]
    log(f"\n**Result for {trace_path.name}**: energy x latency per step "
        f"{start.edp:.4g} -> {current.edp:.4g} pJ*ms ({gain:.1%} better), cycles "
        f"{start.summary['cycles']:,} -> {current.summary['cycles']:,} ({cyc:.1%} fewer), area "
        f"proxy {start.area:.0f} -> {current.area:.0f}. Final overrides: "
        f"`{current.overrides}`.\n")
    return start, current, gain


def _figure(result, img_dir: Path, name: str, caption: str, log):
    bottleneck_breakdown(result, img_dir / name)
    log(f"\n![bottleneck breakdown, {caption}]({img_dir.name}/{name})\n")


def _row_header() -> str:
    return ("| design | cycles | energy (uJ) | latency/step (us) | EDP/step (pJ*ms) | "
            "bottleneck | area proxy |\n|---|---|---|---|---|---|---|")


def _row(name, p: Point, start: Point) -> str:
    s = p.summary
    b = s["bottleneck"]
    return (f"| {name} | {s['cycles']:,} | {s['energy_pj'] / 1e6:.3f} | "
            f"{s['time_ms'] / s['steps'] * 1e3:.2f} | {p.edp:.4g} "
            f"({p.edp / start.edp:.2f}x) | {b['class']} {b['share']:.0%} | {p.area:.0f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default=str(ROOT / "archs" / "pe64.yaml"))
    ap.add_argument("--trace", action="append",
                    help="trace(s) to explore (default: the shipped fatrelu and spiking traces)")
    ap.add_argument("--steps", type=int, help="simulate only the first N steps of each trace")
    ap.add_argument("--page", help="write the study as a Markdown page here (with plots)")
    a = ap.parse_args(argv)
    traces = [Path(t) for t in (a.trace or [ROOT / "traces" / "fatrelu.npz",
                                            ROOT / "traces" / "spiking.npz"])]
    lines = []

    def log(text=""):
        print(text)
        lines.append(text)

    img = None
    if a.page:
        img = Path(a.page).parent / "img"
        img.mkdir(parents=True, exist_ok=True)
    log("# Co-exploration study\n")
    log("Generated by `python examples/co_exploration.py"
        + (f" --steps {a.steps}" if a.steps else "") + (f" --page {a.page}" if a.page else "")
        + "`. Efficiency is energy x latency per time step (EDP/step); a change is kept only if "
        "it lowers EDP/step at equal or lower area proxy (PEs x MAC lanes + SRAM KiB + queue KiB, "
        "an assumption of this study).")
    gains = []
    for t in traces:
        _, _, gain = explore(Path(a.arch), t, a.steps, log, img)
        gains.append(gain)
    if a.page:
        Path(a.page).write_text("\n".join(lines) + "\n")
        print(f"wrote {a.page}")
    return 0 if all(g > 0.10 for g in gains) else 1


if __name__ == "__main__":
    sys.exit(main())

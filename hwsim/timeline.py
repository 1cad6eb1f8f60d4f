"""A Perfetto / chrome://tracing timeline of a window of time steps, from the detailed engine.

    from hwsim.timeline import write_timeline
    stats = write_timeline(trace, arch, "out/t.json", steps=(0, 2))   # open in ui.perfetto.dev

The detailed engine runs the phases of steps a..b-1 with activity recording on; their phases are
laid end to end on one clock (a phase starts where the previous one ended, the window starts at
0). The file is Chrome trace-event JSON:

* one process for the chip; one thread (track) per PE, with a slice per activity of the core:
  `decode`, `sram wait` (bank conflict), `sram`, `compute` (MAC array), `update` (end-of-phase
  neuron update), `waiting for events` (the gaps: NoC wait and back-pressure), `barrier wait`
  (from the core's done time to the end of the phase: load imbalance) and `idle` (a PE with no
  work in the phase);
* a `phases` track with one slice per phase;
* a counter track of input-queue depth per PE (and of link load, where the engine records link
  activity);
* times in µs at the architecture's clock (`chip.clock_mhz`); every slice carries its cycles.

The busy slices (decode, sram, compute, update) of a PE add up to the engine's `compute`
counter for that PE over the window.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from .errors import InputError
from .phase import C

BUSY_KINDS = ("decode", "sram", "compute", "update")
STALL_KINDS = ("sram_wait",)
SLICE_NAMES = {
    "decode": "decode",
    "sram_wait": "sram wait",
    "sram": "sram",
    "compute": "compute",
    "update": "update",
}
# Perfetto's reserved colour names (chrome tracing `cname`), so a glance separates work from waits
COLORS = {
    "decode": "thread_state_running",
    "sram": "thread_state_runnable",
    "compute": "good",
    "update": "olive",
    "sram_wait": "bad",
    "wait": "grey",
    "barrier": "terrible",
    "idle": "white",
}
PID = 1
PHASE_TID = 0


def _check_steps(steps, n_steps: int) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in steps)
    except (TypeError, ValueError):
        raise InputError(f"timeline steps: expected a pair (A, B), got {steps!r}") from None
    if not 0 <= a < b <= n_steps:
        raise InputError(f"timeline steps {a}:{b}: expected 0 <= A < B <= {n_steps} "
                         f"(the trace has {n_steps} steps)")
    return a, b


def _default_run_phase(arch):
    from .components import registry
    from .engines import detailed

    comp = registry.get(arch.get("pe.component"), where=arch.where("pe.component") +
                        " pe.component")
    params = arch.get("pe.component_params")

    def run(phase, timing, record):
        return detailed.run_phase(phase, timing, components={"pe": (comp, params)},
                                  record=record)

    return run


def _split_records(records):
    """Activity slices per PE, queue samples per PE, other (named) slices per track."""
    act = defaultdict(list)  # pe -> [(start, end, kind)]
    queue = defaultdict(list)  # pe -> [(cycle, depth)]
    other = defaultdict(list)  # track name -> [(start, end, name)]
    ignored = 0
    for r in records:
        if isinstance(r, dict):
            r = tuple(r.values())
        if not isinstance(r, (tuple, list)) or not r:
            ignored += 1
            continue
        head = r[0]
        if isinstance(head, (int, np.integer)) and len(r) >= 4:
            act[int(head)].append((int(r[2]), int(r[3]), str(r[1])))
        elif head == "queue" and len(r) >= 4:
            queue[int(r[1])].append((int(r[2]), int(r[3])))
        elif head == "link" and len(r) >= 5:  # ("link", from_pe, to_pe, start, end, ...)
            other[f"link {int(r[1])}->{int(r[2])}"].append((int(r[3]), int(r[4]), "flits"))
        elif head in ("eject", "ejection") and len(r) >= 4:  # ("eject", pe, start, end)
            other[f"PE {int(r[1])} ejection"].append((int(r[2]), int(r[3]), "eject"))
        elif head == "bus" and len(r) >= 3:
            other["bus"].append((int(r[-2]), int(r[-1]), "flits"))
        else:
            ignored += 1
    return act, queue, other, ignored


def timeline_events(trace, arch, steps=(0, 2), run_phase=None) -> tuple[list[dict], dict]:
    """The trace events of steps a..b-1 and statistics (see `write_timeline`)."""
    from .mapping import Mapping

    a, b = _check_steps(steps, trace.steps)
    clock = float(arch.get("chip.clock_mhz"))
    timing = arch.timing()
    n_pe = timing.n_pe
    cols = timing.cols
    run_phase = run_phase or _default_run_phase(arch)
    mapping = Mapping(trace, arch)
    keys = [k for k in mapping.phase_keys(b) if k[0] >= a]

    def us(cycle):
        return round(cycle / clock, 6)

    def slice_(tid, name, start, end, cat, args=None, cname=None):
        e = {"ph": "X", "name": name, "cat": cat, "pid": PID, "tid": tid, "ts": us(start),
             "dur": round(us(end) - us(start), 6),
             "args": {"cycles": int(end - start), **(args or {})}}
        if cname:
            e["cname"] = cname
        return e

    slices: list[dict] = []
    counters: list[dict] = []
    extra_tracks: dict[str, int] = {}
    busy = np.zeros(n_pe, dtype=np.int64)
    compute = np.zeros(n_pe, dtype=np.int64)
    ignored = 0
    t0 = 0
    for key in keys:
        phase = mapping.build(key)
        rec: list = []
        res = run_phase(phase, timing, rec)
        cyc = int(res.cycles)
        compute += res.pe[:, C["compute"]]
        t, i = key
        op = trace.ops[i].name if i is not None else None
        slices.append(slice_(PHASE_TID, phase.label or f"step {t}", t0, t0 + cyc, "phase",
                             {"step": t, "op": op or "*", "start_cycle": t0,
                              "packets": int(phase.n_packets)}))
        act, queue, other, ign = _split_records(rec)
        ignored += ign
        for p in range(n_pe):
            tid = p + 1
            if res.pe[p, C["idle"]] > 0:
                slices.append(slice_(tid, "idle", t0, t0 + cyc, "idle", cname=COLORS["idle"]))
                continue
            last = 0
            for s, e, kind in sorted(act.get(p, ())):
                if s > last:
                    slices.append(slice_(tid, "waiting for events", t0 + last, t0 + s, "wait",
                                         {"why": "NoC wait or queue-full back-pressure"},
                                         COLORS["wait"]))
                if e > s:
                    cat = "busy" if kind in BUSY_KINDS else "stall"
                    slices.append(slice_(tid, SLICE_NAMES.get(kind, kind), t0 + s, t0 + e, cat,
                                         cname=COLORS.get(kind)))
                    if kind in BUSY_KINDS:
                        busy[p] += e - s
                last = max(last, e)
            bar = int(res.pe[p, C["barrier"]])
            done = cyc - bar
            if done > last:  # a gap before the done time (should not happen): keep it visible
                slices.append(slice_(tid, "waiting for events", t0 + last, t0 + done, "wait",
                                     cname=COLORS["wait"]))
            if bar > 0:
                slices.append(slice_(tid, "barrier wait", t0 + done, t0 + cyc, "barrier",
                                     {"why": "load imbalance plus barrier latency"},
                                     COLORS["barrier"]))
        for p, samples in queue.items():
            for c, d in sorted(samples, key=lambda x: x[0]):
                counters.append({"ph": "C", "name": f"queue PE {p}", "pid": PID,
                                 "ts": us(t0 + c), "args": {"events": int(d)}})
        for track, items in other.items():
            tid = extra_tracks.setdefault(track, n_pe + 1 + len(extra_tracks))
            for s, e, name in sorted(items):
                if e > s:
                    slices.append(slice_(tid, name, t0 + s, t0 + e, "noc"))
            if track.startswith("link") or track == "bus":  # link load: busy links over time
                load = defaultdict(int)
                for s, e, _ in items:
                    load[s] += 1
                    load[e] -= 1
                level = 0
                for c in sorted(load):
                    level += load[c]
                    counters.append({"ph": "C", "name": f"load {track}", "pid": PID,
                                     "ts": us(t0 + c), "args": {"busy": level}})
        t0 += cyc

    meta = [{"ph": "M", "name": "process_name", "pid": PID, "tid": 0,
             "args": {"name": f"chip {arch.name} ({n_pe} PEs, {clock:g} MHz)"}},
            {"ph": "M", "name": "thread_name", "pid": PID, "tid": PHASE_TID,
             "args": {"name": "phases"}},
            {"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": PHASE_TID,
             "args": {"sort_index": -1}}]
    for p in range(n_pe):
        meta += [{"ph": "M", "name": "thread_name", "pid": PID, "tid": p + 1,
                  "args": {"name": f"PE {p} (row {p // cols}, col {p % cols})"}},
                 {"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": p + 1,
                  "args": {"sort_index": p}}]
    for track, tid in extra_tracks.items():
        meta += [{"ph": "M", "name": "thread_name", "pid": PID, "tid": tid,
                  "args": {"name": track}},
                 {"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": tid,
                  "args": {"sort_index": tid}}]
    slices.sort(key=lambda e: (e["tid"], e["ts"]))
    counters.sort(key=lambda e: (e["name"], e["ts"]))
    events = meta + slices + counters
    stats = {
        "steps": (a, b), "phases": len(keys), "cycles": t0, "clock_mhz": clock,
        "events": len(events), "slices": len(slices), "counters": len(counters),
        "busy_cycles": busy, "compute_cycles": compute, "ignored_records": ignored,
    }
    return events, stats


def write_timeline(trace, arch, path, steps=(0, 2), run_phase=None) -> dict:
    """Run the detailed engine on steps a..b-1 and write their timeline to `path` (JSON).

    Returns statistics: `events` written, file size `bytes`, `phases`, `cycles`, `steps`,
    `busy_cycles` (per PE, from the file's busy slices) and `compute_cycles` (per PE, the
    engine's counter; the two are equal). `run_phase(phase, timing, record)` replaces the
    detailed engine (tests, custom engines).
    """
    events, stats = timeline_events(trace, arch, steps, run_phase)
    a, b = stats["steps"]
    doc = {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {
            "generator": "hwsim.timeline", "arch": arch.name, "trace_file": trace.path,
            "variant": trace.variant, "steps": f"{a}:{b}", "clock_mhz": stats["clock_mhz"],
            "mode": arch.get("mapping.mode"), "cycles": stats["cycles"],
            "time_unit": "ts and dur in microseconds; args.cycles in clock cycles",
        },
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    stats["path"] = str(path)
    stats["bytes"] = os.path.getsize(path)
    return stats

"""The Perfetto timeline parses as Chrome trace-event JSON, its tracks are well formed, and its
busy time per PE equals the result tables' compute cycles for the same steps."""

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.cli_report import add_run_report_options, after_run, parse_steps
from hwsim.errors import InputError
from hwsim.runner import run
from hwsim.synth import synthetic_trace
from hwsim.timeline import BUSY_KINDS, write_timeline

ROOT = Path(__file__).resolve().parents[1]
ARCH = str(ROOT / "archs" / "pe16.yaml")
BUSY_NAMES = {"decode", "sram", "compute", "update"}
assert set(BUSY_KINDS) == BUSY_NAMES


@pytest.fixture(scope="module")
def trace():
    return synthetic_trace("fatrelu", layers=1, d_model=16, steps=4, seed=5)


def read(path):
    doc = json.loads(Path(path).read_text())
    assert set(doc) >= {"traceEvents"}
    return doc["traceEvents"]


def check_structure(events, n_pe):
    for e in events:
        assert {"ph", "pid"} <= set(e), e
        if e["ph"] in ("X", "C"):
            assert {"ts", "name"} <= set(e), e
            assert e["ts"] >= 0
        if e["ph"] in ("X", "M"):
            assert "tid" in e, e
        if e["ph"] == "X":
            assert e["dur"] > 0, e
    # time is monotone per track, and slices of one track never overlap
    per_track = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            per_track[(e["pid"], e["tid"])].append(e)
    # one per PE, the phases track, and one per NoC link (or the bus) that carried a packet
    link_tracks = {e["args"]["name"] for e in events if e["ph"] == "M"
                   and e["name"] == "thread_name" and e["args"]["name"].startswith(("link", "bus"))}
    assert link_tracks and len(per_track) == n_pe + 1 + len(link_tracks)
    assert any(e["ph"] == "C" and e["name"].startswith(("load link", "load bus")) for e in events)
    for track, xs in per_track.items():
        ts = [e["ts"] for e in xs]
        assert ts == sorted(ts), track
        for a, b in zip(xs, xs[1:]):
            assert a["ts"] + a["dur"] <= b["ts"] + 1e-6, (track, a, b)
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert "phases" in names and {f"PE {p}" for p in range(n_pe)} <= {n.split(" (")[0]
                                                                      for n in names}
    assert any(e["ph"] == "C" and e["name"].startswith("queue PE") for e in events)


def busy_cycles(events, n_pe, clock_mhz):
    us = np.zeros(n_pe)
    cyc = np.zeros(n_pe, dtype=np.int64)
    for e in events:
        if e["ph"] == "X" and e["tid"] >= 1 and e["name"] in BUSY_NAMES:
            us[e["tid"] - 1] += e["dur"]
            cyc[e["tid"] - 1] += e["args"]["cycles"]
    return us * clock_mhz, cyc


@pytest.mark.parametrize("mode", ["op_by_op", "layer_pipelined"])
def test_timeline_structure_and_busy_time(trace, tmp_path, mode):
    arch = load_arch(ARCH, {"mapping.mode": mode})
    a, b = 1, 3
    stats = write_timeline(trace, arch, tmp_path / "t.json", steps=(a, b))
    events = read(tmp_path / "t.json")
    n_pe, clock = arch.n_pe, arch.get("chip.clock_mhz")
    check_structure(events, n_pe)
    assert stats["events"] == len(events)
    assert stats["bytes"] == (tmp_path / "t.json").stat().st_size > 0
    # busy time per PE in the file == the tables' compute cycles for the same steps
    res = run(trace, arch, progress=False)
    want = res.step_pe_busy[a:b].sum(axis=0)
    from_us, from_cycles = busy_cycles(events, n_pe, clock)
    assert np.array_equal(from_cycles, want)
    assert np.allclose(from_us, want, atol=1e-3)
    assert np.array_equal(stats["busy_cycles"], want)
    # phases laid end to end: the phases track spans exactly the window's cycles
    phases = [e for e in events if e["ph"] == "X" and e["tid"] == 0]
    keys = res.phases[(res.phases.step >= a) & (res.phases.step < b)]
    assert len(phases) == len(keys) == stats["phases"]
    assert sum(e["args"]["cycles"] for e in phases) == keys["cycles"].sum() == stats["cycles"]
    # barrier waits are visible and add up to the tables' barrier cycles
    barrier = sum(e["args"]["cycles"] for e in events if e["ph"] == "X" and e["cat"] == "barrier")
    assert barrier == keys["barrier"].sum()


def test_timeline_window_is_checked(trace, tmp_path):
    arch = load_arch(ARCH)
    for bad in [(2, 2), (3, 1), (0, 99), (-1, 1)]:
        with pytest.raises(InputError):
            write_timeline(trace, arch, tmp_path / "t.json", steps=bad)


def test_timeline_steps_flag_parsing():
    assert parse_steps("0:2") == (0, 2)
    assert parse_steps(" 3 : 7 ", 10) == (3, 7)
    assert parse_steps(None, 1) == (0, 1)  # the default 0:2, clamped to a 1-step run
    for bad in ["2", "a:b", "2:2", "3:1", "-1:2", "0:2:4", ""]:
        with pytest.raises(InputError, match="--timeline-steps"):
            parse_steps(bad)
    with pytest.raises(InputError, match="--timeline-steps.*4 steps"):
        parse_steps("0:5", 4)


def test_after_run_writes_the_timeline_and_reports_its_size(trace, tmp_path, capsys):
    arch = load_arch(ARCH)
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")
    add_run_report_options(p)
    res = run(trace.head(2), arch, progress=False)
    out = tmp_path / "t.json"
    args = p.parse_args(["--timeline", str(out), "--timeline-steps", "0:1"])
    done = after_run(args, res, trace.head(2), arch)
    assert out.exists() and done["timeline"]["bytes"] == out.stat().st_size
    printed = capsys.readouterr().out
    assert str(out) in printed and "KB" in printed and "perfetto" in printed
    with pytest.raises(InputError, match="--timeline.*--force"):  # never overwritten silently
        after_run(args, res, trace.head(2), arch)
    with pytest.raises(InputError, match="--timeline-steps"):  # beyond the run's 2 steps
        after_run(p.parse_args(["--timeline", str(tmp_path / "u.json"), "--timeline-steps",
                                "1:3"]), res, trace.head(2), arch)
    with pytest.raises(InputError, match="--timeline-steps: needs --timeline"):
        after_run(p.parse_args(["--timeline-steps", "0:1"]), res, trace.head(2), arch)

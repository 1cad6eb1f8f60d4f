"""Plots exist and are not blank; the result tables add up to the summary; `plot DIR` and
`run --plot` wiring (hwsim/cli_report.py)."""

import argparse
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from hwsim import plot
from hwsim.arch import load_arch
from hwsim.cli_report import add_report_commands, add_run_report_options, after_run
from hwsim.errors import InputError
from hwsim.result import CLASSES as CYCLE_CLASSES
from hwsim.result import Result, layer_of, load_result
from hwsim.runner import run
from hwsim.synth import synthetic_trace

ROOT = Path(__file__).resolve().parents[1]
ARCH = str(ROOT / "archs" / "pe16.yaml")


def small_trace(variant="fatrelu", steps=3):
    return synthetic_trace(variant, layers=1, d_model=16, steps=steps, seed=5)


@pytest.fixture(scope="module")
def result():
    return run(small_trace(), load_arch(ARCH), progress=False)


@pytest.fixture(scope="module")
def pipelined():
    arch = load_arch(ARCH, {"mapping.mode": "layer_pipelined"})
    return run(small_trace(), arch, progress=False)


def handmade_result(n_layers=6, ops_per_layer=9, steps=5, n_pe=16, pipelined=False, seed=0):
    """A Result built from DataFrames directly (no engine): many ops, so plots fall back to
    one bar per layer; `pipelined` drops the per-op cycle columns as layer_pipelined runs do."""
    rng = np.random.default_rng(seed)
    names = [f"encoder.layers.{n}.{k}" for n in range(n_layers)
             for k in ("norm", "in_proj", "conv1d", "x_proj", "dt_proj", "scan", "gate",
                       "out_proj", "residual")[:ops_per_layer]]
    n_ops = len(names)
    ops = pd.DataFrame({"op": names, "layer": [layer_of(n) for n in names],
                        "kind": ["linear"] * n_ops})
    for c in ("events", "deliveries", "macs", "acs", "sram_reads"):
        ops[c] = rng.integers(10, 1000, n_ops)
    # phases: per (step, op) in op_by_op, per step when pipelined; classes partition n_pe x cycles
    keys = [(t, None) for t in range(steps)] if pipelined else \
        [(t, names[i]) for t in range(steps) for i in range(n_ops)]
    cyc = rng.integers(50, 400, len(keys))
    split = rng.dirichlet(np.ones(len(CYCLE_CLASSES)), len(keys)) * (cyc * n_pe)[:, None]
    split = np.floor(split).astype(np.int64)
    split[:, 0] += cyc * n_pe - split.sum(axis=1)
    ph = pd.DataFrame(split, columns=list(CYCLE_CLASSES))
    ph.insert(0, "step", [k[0] for k in keys])
    ph.insert(1, "op", [k[1] or "*" for k in keys])
    ph.insert(2, "start_cycle", np.concatenate([[0], np.cumsum(cyc)[:-1]]))
    ph.insert(3, "cycles", cyc)
    ph["energy_pj"] = cyc * 3.0
    if not pipelined:
        per_op = ph.groupby("op", sort=False)[["cycles", *CYCLE_CLASSES, "energy_pj"]].sum()
        for c in per_op.columns:
            ops[c] = per_op.loc[names, c].to_numpy()
    st = pd.DataFrame({"step": np.arange(steps),
                       "cycles": np.bincount(ph["step"], weights=cyc).astype(np.int64)})
    st["latency_ms"] = st["cycles"] / 500e3
    st["deadline_ms"] = 40.0
    st["meets_deadline"] = st["latency_ms"] <= st["deadline_ms"]
    st["energy_pj"] = np.bincount(ph["step"], weights=ph["energy_pj"])
    busy = np.floor(rng.random((steps, n_pe)) * st["cycles"].to_numpy()[:, None]).astype(np.int64)
    pes = pd.DataFrame({"pe": np.arange(n_pe), "row": np.arange(n_pe) // 4,
                        "col": np.arange(n_pe) % 4, "compute": busy.sum(axis=0)})
    total = {c: int(ph[c].sum()) for c in CYCLE_CLASSES}
    energy = float(ph["energy_pj"].sum())
    summary = {
        "arch": "handmade16", "trace_file": "traces/handmade.npz", "variant": "fatrelu",
        "mode": "layer_pipelined" if pipelined else "op_by_op", "n_pe": n_pe, "steps": steps,
        "cycles": int(cyc.sum()), "rtf": 0.01, "energy_pj": energy,
        "energy_by_component_pj": {"mac": energy * 0.3, "sram_read": energy * 0.5,
                                   "leakage": energy * 0.2, "ac": 0.0},
        "cycle_split_pe_cycles": total, "utilization": total["compute"] / (cyc.sum() * n_pe),
        "bottleneck": {"class": "imbalance", "share": 0.3}, "macs": int(ops["macs"].sum()),
        "acs": int(ops["acs"].sum()), "steps_over_deadline": 0,
    }
    return Result(summary, ops, ph, pes, st, busy)


def assert_png(path: Path, min_w=600, min_h=300):
    assert path.exists() and path.stat().st_size > 5_000, path
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h, (path, img.shape)
    rgb = img[..., :3]
    assert rgb.std() > 0.05, f"{path} looks blank"
    # not one colour: a good part of the image is drawn on
    assert (rgb.mean(axis=2) < 0.9).mean() > 0.02, f"{path} has almost nothing drawn"


# -- tables add up ----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["result", "pipelined"])
def test_tables_add_up_to_the_summary(which, request):
    r = request.getfixturevalue(which)
    s = r.summary
    split = s["cycle_split_pe_cycles"]
    for c in CYCLE_CLASSES:
        assert r.pes[c].sum() == split[c], c  # per PE
        assert r.phases[c].sum() == split[c], c  # per phase
    assert sum(split.values()) == s["cycles"] * s["n_pe"]  # the classes partition PE-cycles
    assert r.steps["cycles"].sum() == s["cycles"] == r.phases["cycles"].sum()
    assert r.step_pe_busy.sum() == split["compute"]
    assert np.array_equal(r.step_pe_busy.sum(axis=0), r.pes["compute"].to_numpy())
    assert np.allclose(r.step_pe_busy.sum(axis=1),
                       r.phases.groupby("step")["compute"].sum().to_numpy())
    for table in ("phases", "steps", "pes"):
        assert getattr(r, table)["energy_pj"].sum() == pytest.approx(s["energy_pj"], rel=1e-9)
    assert sum(s["energy_by_component_pj"].values()) == pytest.approx(s["energy_pj"])
    assert r.ops["events"].sum() == s["events"]
    assert r.ops["deliveries"].sum() == s["deliveries"] == r.pes["events"].sum()
    if "cycles" in r.ops.columns:  # op_by_op: per-op tables add up too
        assert r.ops["cycles"].sum() == s["cycles"]
        for c in CYCLE_CLASSES:
            assert r.ops[c].sum() == split[c], c
        assert r.ops["energy_pj"].sum() == pytest.approx(s["energy_pj"], rel=1e-9)
        assert r.layers["cycles"].sum() == s["cycles"]


# -- the figures ------------------------------------------------------------------------------


def test_plot_all_writes_four_nonblank_figures(result, tmp_path):
    paths = plot.plot_all(result, tmp_path)
    assert [p.name for p in paths] == list(plot.PLOT_FILES.values())
    for p in paths:
        assert_png(p)


def test_plots_of_a_layer_pipelined_run(pipelined, tmp_path):
    assert "cycles" not in pipelined.ops.columns  # the fallbacks to per-step bars
    assert_png(plot.bottleneck_breakdown(pipelined, tmp_path / "b.png"))
    assert_png(plot.energy_breakdown(pipelined, tmp_path / "e.png"))


@pytest.mark.parametrize("pipelined_mode", [False, True])
def test_plots_of_a_handmade_result_with_many_ops(tmp_path, pipelined_mode):
    r = handmade_result(pipelined=pipelined_mode)
    assert len(r.ops) > plot.MAX_BARS  # bars per layer
    assert_png(plot.bottleneck_breakdown(r, tmp_path / "b.png"))
    if not pipelined_mode:
        assert_png(plot.energy_breakdown(r, tmp_path / "e.png"))


def test_compare_bars(tmp_path):
    df = pd.DataFrame({
        "variant": ["dense", "fatrelu", "spiking"], "trace_file": ["d.npz", "f.npz", "s.npz"],
        "cycles": [1000, 700, 600], "energy_pj": [9e4, 5e4, 4e4],
        "latency_mean_ms": [0.002, 0.0014, 0.0012], "latency_max_ms": [0.003, 0.002, 0.002],
        "rtf": [1e-4, 7e-5, 6e-5], "sparsity": [0.05, 0.5, 0.7], "macs": [1e4, 6e3, 2e3],
        "acs": [0, 0, 3e3]})
    assert_png(plot.compare_bars(df, tmp_path / "c.png"))


def test_short_names():
    assert plot.short_name("layers.3.in_proj") == "L3.in_proj"
    assert plot.short_name("encoder.layers.11.scan") == "encoder.L11.scan"
    assert plot.short_name("blocks.2") == "L2"
    long = plot.short_name("a_really_long_module_name.with_a_long_op_name_inside", 20)
    assert len(long) == 20 and "…" in long


# -- command line -----------------------------------------------------------------------------


def parser():
    ap = argparse.ArgumentParser(prog="hwsim")
    sub = ap.add_subparsers(dest="command")
    add_report_commands(sub)
    r = sub.add_parser("run")
    r.add_argument("--out")
    r.add_argument("--force", action="store_true")
    r.add_argument("--quiet", action="store_true")
    add_run_report_options(r)
    return ap


def test_plot_command_redraws_from_saved_results(result, tmp_path, capsys):
    """`plot DIR` reads the tables back (load_result) and draws; it never overwrites silently."""
    result.save(tmp_path / "run")
    args = parser().parse_args(["plot", str(tmp_path / "run")])
    assert args.handler(args) == 0
    for f in plot.PLOT_FILES.values():
        assert_png(tmp_path / "run" / f)
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(InputError, match="--force"):
        args.handler(args)
    with pytest.raises(InputError, match="summary.json"):
        a = parser().parse_args(["plot", str(tmp_path / "nothing")])
        a.handler(a)


def test_run_plot_flag_writes_plots_only_into_out(result, tmp_path, capsys):
    trace = small_trace()
    args = parser().parse_args(["run", "--plot", "--out", str(tmp_path / "o")])
    done = after_run(args, result, trace, load_arch(ARCH))
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(plot.PLOT_FILES.values())
    assert len(done["plots"]) == 4 and "KB" in capsys.readouterr().out
    with pytest.raises(InputError, match="--force"):
        after_run(args, result, trace, load_arch(ARCH))

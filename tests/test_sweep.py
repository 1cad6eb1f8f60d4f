"""Sweeps: spec parsing and expansion, the store and resume, failures, Dask, plots."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hwsim.errors import InputError
from hwsim.sweep import (STORE_FILE, SweepSpec, load_sweep, pareto_mask, plot_sweep, run_point,
                         run_sweep)
from hwsim.synth import synthetic_trace
from hwsim.trace import save_trace

ROOT = Path(__file__).resolve().parents[1]
ARCH = str(ROOT / "archs" / "pe16.yaml")
GRID = ["pe.mac_lanes=4,8", "sram.banks=1,2"]  # pe16: 4 lanes, 4 banks -> base + 4 points
# columns that differ between two runs of the same point (when and how fast, not what)
VOLATILE = ("wall_s", "sim_wall_s", "finished_at", "run")


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("trace") / "small.npz"
    save_trace(p, synthetic_trace("fatrelu", layers=1, d_model=16, steps=2))
    return str(p)


def spec_of(trace, grid=GRID, **kw):
    return SweepSpec.from_cli(grid, arch=ARCH, traces=[trace], **kw)


@pytest.fixture(scope="module")
def baseline(trace_file, tmp_path_factory):
    """The small sweep on the local pool, once for the module."""
    out = tmp_path_factory.mktemp("sweep") / "base"
    report = run_sweep(spec_of(trace_file), out, jobs=2, progress=False)
    return out, report


def figures(df):
    cols = [c for c in df.columns if c not in VOLATILE]
    return df[cols].sort_values(["point_id", "trace"]).reset_index(drop=True)


# -- the spec -----------------------------------------------------------------------------------


def test_grid_expands_deterministically_with_stable_ids(trace_file):
    _, points, runs = spec_of(trace_file).validate()
    assert [p.label for p in points] == ["base", "banks=1", "banks=2", "mac_lanes=8, banks=1",
                                         "mac_lanes=8, banks=2"]
    assert points[0].is_base and points[0].overrides == {}
    assert points[1].values == {"pe.mac_lanes": 4, "sram.banks": 1}
    # the same sweep written another way (other order, YAML-typed values) has the same ids
    _, _, again = SweepSpec.from_cli(["sram.banks=2, 1", "pe.mac_lanes=8,4"], arch=ARCH,
                                     traces=[trace_file]).validate()
    assert sorted(r.point_id for r in again) == sorted(r.point_id for r in runs)
    assert len({r.point_id for r in runs}) == len(runs) == 5
    # the same design on another trace file has another id; a trace twice is refused
    other = Path(trace_file).with_name("other.npz")
    other.write_bytes(Path(trace_file).read_bytes())
    _, _, two = SweepSpec.from_cli(GRID, arch=ARCH, traces=[trace_file, str(other)]).validate()
    assert len({r.point_id for r in two}) == 10
    assert {r.point_id for r in two if r.trace == trace_file} == {r.point_id for r in runs}
    with pytest.raises(InputError, match="given twice"):
        SweepSpec.from_cli(GRID, arch=ARCH, traces=[trace_file, trace_file]).validate()


def test_from_cli_splits_values_but_not_inside_brackets():
    s = SweepSpec.from_cli(["pe.mac_lanes=4, 8,16", "pe.component_params={a: 1, b: 2}",
                            "mapping.mode=op_by_op,layer_pipelined"], arch=ARCH, traces=["t"])
    assert s.grid == {"pe.mac_lanes": ["4", "8", "16"],
                      "pe.component_params": ["{a: 1, b: 2}"],
                      "mapping.mode": ["op_by_op", "layer_pipelined"]}
    with pytest.raises(InputError, match="given twice"):
        SweepSpec.from_cli(["sram.banks=1", "sram.banks=2"])
    with pytest.raises(InputError, match="SECTION.KEY=VALUE"):
        SweepSpec.from_cli(["banks"])


def test_unknown_parameters_and_bad_values_are_refused_up_front(trace_file):
    with pytest.raises(InputError, match=r"--set pe.mac_lane=4,8: unknown parameter; did you mean "
                                         r"pe.mac_lanes"):
        spec_of(trace_file, ["pe.mac_lane=4,8"]).validate()
    with pytest.raises(InputError, match=r"^--set pe.mac_lanes=4,0: expected an integer from 1 "
                                         r"to 1024, got 0$"):
        spec_of(trace_file, ["pe.mac_lanes=4,0"]).validate()
    with pytest.raises(InputError, match="engine: expected one of fast, detailed"):
        spec_of(trace_file, engine="slow").validate()


def test_yaml_spec_with_grid_points_and_line_numbers(tmp_path, trace_file):
    y = tmp_path / "sweep.yaml"
    y.write_text(textwrap.dedent(f"""\
        arch: {ARCH}
        traces: [{trace_file}]
        grid:
          pe.mac_lanes: [4, 8]
          mapping.mode: [op_by_op, layer_pipelined]
        points:
          - {{sram.banks: 2, noc.multicast: false}}
        steps: 1
        """))
    s = SweepSpec.from_yaml(y)
    _, points, runs = s.validate()
    assert s.params() == ["pe.mac_lanes", "mapping.mode", "sram.banks", "noc.multicast"]
    assert len(points) == 5 and points[-1].overrides == {"sram.banks": 2, "noc.multicast": False}
    assert s.steps == 1
    # the command line adds to the YAML's grid
    s2 = SweepSpec.from_cli(["sram.banks=1,2"], base=s)
    assert list(s2.grid) == ["pe.mac_lanes", "mapping.mode", "sram.banks"]
    # errors name the file, the key and the line
    y.write_text(f"arch: {ARCH}\ntraces: [{trace_file}]\ngrid:\n  pe.mac_lanes: [4, 8]\n"
                 f"  sram.bank: [1]\n")
    with pytest.raises(InputError, match=r"sweep.yaml:5: grid.sram.bank: unknown parameter; "
                                         r"did you mean sram.banks"):
        SweepSpec.from_yaml(y).validate()
    y.write_text(f"arch: {ARCH}\ntraces: [{trace_file}]\npoints:\n  - {{pe.mac_lanes: 4}}\n"
                 f"  - {{sram.banks: 0}}\n")
    with pytest.raises(InputError, match=r"sweep.yaml:5: points\[1\].sram.banks: expected an integer from 1 to 64, got 0$"):
        SweepSpec.from_yaml(y).validate()
    y.write_text(f"arch: {ARCH}\ntrace: [{trace_file}]\n")
    with pytest.raises(InputError, match=r"sweep.yaml:2: trace: unknown key; did you mean "
                                         r"traces"):
        SweepSpec.from_yaml(y)


def test_pareto_mask():
    x = np.array([1, 2, 3, 2, 1.5])
    y = np.array([5, 2, 1, 3, 5])
    assert pareto_mask(x, y).tolist() == [True, True, True, False, False]


# -- running, the store, resume -----------------------------------------------------------------


def test_sweep_writes_one_row_per_run_with_params_and_figures(baseline):
    out, report = baseline
    assert (report.total, report.ok, report.failed, report.skipped) == (5, 5, 0, 0)
    df = load_sweep(out)
    assert len(df) == 5 and (df["status"] == "ok").all()
    assert df["is_base"].tolist() == [True, False, False, False, False]
    for col in ("point_id", "trace", "error", "pe.mac_lanes", "sram.banks", "cycles",
                "energy_pj", "time_ms", "rtf", "events", "macs", "acs", "flit_hops",
                "utilization", "bottleneck", "pe_cycles_imbalance", "pe_cycles_sram_conflict",
                "wall_s", "time_ms_per_step", "energy_pj_per_step"):
        assert col in df.columns, col
    assert df["pe.mac_lanes"].tolist() == [4, 4, 4, 8, 8]
    assert (df["cycles"] > 0).all() and (df["energy_pj"] > 0).all()
    assert (out / "sweep.parquet").exists() and (out / "sweep.json").exists()
    # each figure is what a single run of that design gives
    b = df.iloc[4]
    row = run_point({"arch": ARCH, "overrides": {"pe.mac_lanes": 8, "sram.banks": 2},
                     "trace": b["trace"], "engine": "fast", "steps": None, "plugins": []})
    assert row["cycles"] == b["cycles"] and row["energy_pj"] == pytest.approx(b["energy_pj"])
    # a rerun of the same spec does nothing
    again = run_sweep(spec_of(b["trace"]), out, jobs=2, progress=False)
    assert (again.skipped, again.ok, again.failed) == (5, 0, 0)
    assert len(load_sweep(out)) == 5


def test_failing_point_is_recorded_and_the_sweep_goes_on(trace_file, tmp_path):
    spec = spec_of(trace_file, ["sram.capacity_kib=64,0.001", "pe.mac_lanes=4,8"])
    report = run_sweep(spec, tmp_path / "f", jobs=2, progress=False)
    df = load_sweep(tmp_path / "f")
    bad = df[df["sram.capacity_kib"] == 0.001]
    assert len(df) == 4 and report.failed == 2 and report.ok == 2
    assert (bad["status"] == "failed").all()
    assert bad["error"].str.contains("sram.capacity_kib").all()
    assert bad["cycles"].isna().all()
    assert (df[df["sram.capacity_kib"] == 64]["status"] == "ok").all()
    # failed points are kept on a rerun, retried with retry_failed
    assert run_sweep(spec, tmp_path / "f", jobs=1, progress=False).skipped == 4
    retried = run_sweep(spec, tmp_path / "f", jobs=1, progress=False, retry_failed=True)
    assert (retried.skipped, retried.failed) == (2, 2)
    assert len(load_sweep(tmp_path / "f")) == 4


def test_another_spec_in_the_directory_is_refused_unless_force(baseline, trace_file):
    out, _ = baseline
    wider = spec_of(trace_file, ["pe.mac_lanes=4,8", "sram.banks=1,2,8"])
    with pytest.raises(InputError, match="results of another sweep .*differs in: grid.*--force"):
        run_sweep(wider, out, progress=False)
    before = load_sweep(out)
    report = run_sweep(wider, out, jobs=2, progress=False, force=True)
    after = load_sweep(out)
    # the runs both sweeps share are kept, only the new ones ran
    assert (report.total, report.skipped, report.ok) == (7, 5, 2)
    kept = after[after["point_id"].isin(before["point_id"])]
    assert (kept["run"] == 1).all() and len(after) == 7
    # back to the small sweep with --force: the extra runs are deleted
    run_sweep(spec_of(trace_file), out, jobs=1, progress=False, force=True)
    assert sorted(load_sweep(out)["point_id"]) == sorted(before["point_id"])


def _killer(task):
    """A worker that dies (SIGKILL) on its first point with 8 lanes and 1 bank."""
    marker = Path(os.environ["HWSIM_TEST_KILL_MARKER"])
    if task["overrides"] == {"pe.mac_lanes": 8, "sram.banks": 1} and not marker.exists():
        marker.write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    return run_point(task)


def test_killed_worker_is_recorded_and_the_pool_restarts(trace_file, tmp_path, monkeypatch,
                                                        baseline):
    monkeypatch.setenv("HWSIM_TEST_KILL_MARKER", str(tmp_path / "marker"))
    out = tmp_path / "k"
    report = run_sweep(spec_of(trace_file), out, jobs=1, progress=False, worker=_killer)
    df = load_sweep(out)
    assert len(df) == 5 and report.failed == 1 and report.ok == 4
    dead = df[df["status"] == "failed"]
    assert dead["overrides"].tolist() == ['{"pe.mac_lanes": 8, "sram.banks": 1}']
    assert "worker process died" in dead["error"].iloc[0]
    # the points after the dead one ran in a fresh pool; a retry completes the sweep
    again = run_sweep(spec_of(trace_file), out, jobs=1, progress=False, retry_failed=True)
    assert (again.skipped, again.ok, again.failed) == (4, 1, 0)
    df = load_sweep(out)
    assert len(df) == 5 and (df["status"] == "ok").all()
    assert figures(df).equals(figures(load_sweep(baseline[0])))


KILL_SCRIPT = """
import sys, time
from hwsim.sweep import SweepSpec, run_point, run_sweep

def slow(task):
    row = run_point(task)
    if task["overrides"]:
        time.sleep(1.0)  # every point after the base takes a while: the kill lands mid-sweep
    return row

if __name__ == "__main__":
    arch, trace, out = sys.argv[1:4]
    spec = SweepSpec.from_cli(["pe.mac_lanes=4,8", "sram.banks=1,2"], arch=arch, traces=[trace])
    run_sweep(spec, out, jobs=1, progress=False, worker=slow)
"""


def test_killed_sweep_resumes_with_only_the_missing_points(trace_file, tmp_path, baseline):
    script = tmp_path / "kill_me.py"
    script.write_text(KILL_SCRIPT)
    out = tmp_path / "resume"
    proc = subprocess.Popen([sys.executable, str(script), ARCH, trace_file, str(out)],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    db = out / STORE_FILE
    deadline = time.monotonic() + 150  # a cold numba cache compiles for a minute
    n = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                with sqlite3.connect(db, timeout=5) as c:
                    with_rows = c.execute("SELECT name FROM sqlite_master WHERE name='results'")
                    if with_rows.fetchone():
                        n = c.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                if n >= 1:
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    done_before = load_sweep(out)
    assert 1 <= len(done_before) < 5 and (done_before["status"] == "ok").all()
    report = run_sweep(spec_of(trace_file), out, jobs=2, progress=False)
    assert (report.skipped, report.ok, report.failed) == (len(done_before),
                                                          5 - len(done_before), 0)
    df = load_sweep(out)
    assert len(df) == 5 and df["point_id"].is_unique and (df["status"] == "ok").all()
    # what the killed run committed was not redone
    first = df[df["point_id"].isin(done_before["point_id"])]
    assert (first["run"] == 1).all() and (df[~df.index.isin(first.index)]["run"] == 2).all()
    assert figures(df).equals(figures(load_sweep(baseline[0])))


DASK_SCRIPT = """
import sys
from dask.distributed import LocalCluster
from hwsim.sweep import SweepSpec, run_sweep

if __name__ == "__main__":
    arch, trace, out = sys.argv[1:4]
    spec = SweepSpec.from_cli(["pe.mac_lanes=4,8", "sram.banks=1,2"], arch=arch, traces=[trace])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        r = run_sweep(spec, out, scheduler=cluster.scheduler_address, progress=False)
    print("DONE", r.ok, r.failed)
"""


def test_dask_local_cluster_gives_identical_figures(trace_file, tmp_path, baseline):
    pytest.importorskip("dask.distributed", reason="dask[distributed] (the [dist] extra) is not "
                                                   "installed")
    script = tmp_path / "dask_sweep.py"
    script.write_text(DASK_SCRIPT)
    out = tmp_path / "dask"
    r = subprocess.run([sys.executable, str(script), ARCH, trace_file, str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and "DONE 5 0" in r.stdout, r.stderr[-3000:]
    assert figures(load_sweep(out)).equals(figures(load_sweep(baseline[0])))


def test_dask_scheduler_that_does_not_answer_is_an_input_error(trace_file, tmp_path):
    pytest.importorskip("dask.distributed", reason="dask[distributed] is not installed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(InputError, match="--scheduler tcp://127.0.0.1:1: cannot connect"):
            run_sweep(spec_of(trace_file), tmp_path / "x", scheduler="tcp://127.0.0.1:1",
                      progress=False)


# -- plots and the command line -------------------------------------------------------------------


def test_plot_sweep_writes_non_blank_pngs(baseline, tmp_path):
    import matplotlib.image as mpimg

    out, _ = baseline
    paths = plot_sweep(out, dest=tmp_path)
    assert [p.name for p in paths] == ["pareto.png", "sensitivity.png"]
    for p in paths:
        img = mpimg.imread(p)
        assert img.shape[0] > 200 and img.shape[1] > 200 and img[..., :3].std() > 0.05
    with pytest.raises(InputError, match="--x cycle: not a numeric column.*did you mean cycles"):
        plot_sweep(out, x="cycle", dest=tmp_path)


def test_cli_sweep_and_plot_sweep(trace_file, tmp_path, baseline, capsys):
    from hwsim.cli import main

    out = tmp_path / "cli"
    assert main(["sweep", ARCH, trace_file, "--set", "pe.mac_lanes=4,8", "--set",
                 "sram.banks=1,2", "--out", str(out), "--jobs", "2", "--quiet"]) == 0
    assert "5 runs; 5 ok, 0 failed, 0 already done" in capsys.readouterr().out
    assert figures(load_sweep(out)).equals(figures(load_sweep(baseline[0])))
    assert main(["plot-sweep", str(out), "--y", "energy_pj_per_step"]) == 0
    assert "pareto.png" in capsys.readouterr().out
    # user errors: exit 2 and one line
    for argv in (["sweep", ARCH, trace_file, "--set", "pe.mac_lanes=4,8", "--out", str(out)],
                 ["sweep", ARCH, "--out", str(tmp_path / "y")],
                 ["sweep", ARCH, trace_file, "--set", "sram.banks=1,x", "--out", str(tmp_path)],
                 ["plot-sweep", str(tmp_path / "nothing")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("hwsim: error: ") and err.count("\n") == 1, err
    # the console entry point, as a user runs it
    r = subprocess.run([sys.executable, "-m", "hwsim", "sweep", ARCH, trace_file,
                        "--set", "pe.mac_lanes=4,8", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--force" in r.stderr and r.stderr.count("\n") == 1

"""The command line as a user meets it: exit codes, one-line errors, every flag honoured."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwsim.cli import main
from hwsim.synth import synthetic_trace
from hwsim.trace import save_trace

ROOT = Path(__file__).resolve().parents[1]
ARCH = str(ROOT / "archs" / "pe16.yaml")


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("t") / "small.npz"
    save_trace(p, synthetic_trace("fatrelu", layers=1, d_model=16, steps=3, seed=5))
    return str(p)


def run_cli(*args):
    """Run in a subprocess, as a user would (exit code, stdout, stderr)."""
    r = subprocess.run([sys.executable, "-m", "hwsim", *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
    return r.returncode, r.stdout, r.stderr


def test_run_prints_summary_and_writes_json(trace_file, tmp_path):
    out = tmp_path / "a.json"
    code, stdout, stderr = run_cli("run", ARCH, trace_file, "--json", str(out))
    assert code == 0, stderr
    for word in ("cycles", "real-time", "energy", "MACs", "bottleneck", "SYNTHETIC"):
        assert word in stdout
    s = json.loads(out.read_text())
    for key in ("cycles", "energy_pj", "events", "macs", "acs", "wall_s", "engine", "ops"):
        assert key in s
    assert s["cycles"] > 0 and s["energy_pj"] > 0 and len(s["ops"]) == 9


@pytest.mark.parametrize("engine", ["fast", "detailed"])
def test_engine_flag_is_honoured(trace_file, tmp_path, engine):
    out = tmp_path / "e.json"
    assert main(["run", ARCH, trace_file, "--engine", engine, "--json", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["engine"] == engine


def test_steps_flag_limits_the_run(trace_file, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    main(["run", ARCH, trace_file, "--steps", "1", "--json", str(a), "--quiet"])
    main(["run", ARCH, trace_file, "--json", str(b), "--quiet"])
    sa, sb = json.loads(a.read_text()), json.loads(b.read_text())
    assert sa["steps"] == 1 and sb["steps"] == 3
    assert sa["phases"] == 9 and sa["cycles"] < sb["cycles"]


def test_set_and_mode_flags_change_the_chip(trace_file, tmp_path):
    a, b, c = (tmp_path / f"{n}.json" for n in "abc")
    main(["run", ARCH, trace_file, "--json", str(a), "--quiet"])
    main(["run", ARCH, trace_file, "--set", "pe.mac_lanes=1", "--json", str(b), "--quiet"])
    main(["run", ARCH, trace_file, "--mode", "layer_pipelined", "--json", str(c), "--quiet"])
    sa, sb, sc = (json.loads(p.read_text()) for p in (a, b, c))
    assert sb["cycles"] > sa["cycles"]
    assert sc["mode"] == "layer_pipelined" and sc["phases"] == 3


def test_jobs_give_identical_results(trace_file, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    main(["run", ARCH, trace_file, "--json", str(a), "--quiet"])
    main(["run", ARCH, trace_file, "--jobs", "2", "--json", str(b), "--quiet"])
    sa, sb = json.loads(a.read_text()), json.loads(b.read_text())
    for key in ("cycles", "energy_pj", "events", "macs", "acs", "flit_hops", "ops"):
        assert sa[key] == sb[key], key


def assert_same_tables(a, b):
    for name in ("ops", "phases", "pes", "steps"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("engine", ["fast", "detailed"])  # a thread pool, a process pool
def test_jobs_give_identical_tables(trace_file, engine):
    from hwsim.arch import load_arch
    from hwsim.runner import run
    from hwsim.trace import load_trace

    trace, arch = load_trace(trace_file), load_arch(ARCH)
    one, two = (run(trace, arch, engine=engine, jobs=j, progress=False) for j in (1, 2))
    assert_same_tables(one, two)
    assert one.phases["start_cycle"].is_monotonic_increasing


@pytest.mark.parametrize("engine", ["fast", "detailed"])
@pytest.mark.parametrize("jobs", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 127, 2049, 20000])
def test_batches_hand_out_every_phase_once(n, jobs, engine):
    from hwsim.runner import BATCH_PHASES, _bounds

    bounds = _bounds(n, engine, jobs)
    sizes = np.diff(bounds)
    assert bounds[0] == 0 and bounds[-1] == n and (sizes > 0).all()
    assert sizes.max(initial=0) <= (1 if engine == "detailed" else BATCH_PHASES)
    if engine == "fast" and jobs > 1 and n > 128 * 4 * jobs:  # several each, the last small
        assert len(sizes) >= 4 * jobs and (np.diff(sizes) <= 0).all() and sizes[-1] < sizes[0]


def test_fast_and_detailed_tables_agree(trace_file, monkeypatch):
    """Every table of a run, through the runner (the fast engine simulates identical phases
    once and copies them; the detailed engine simulates every phase). In batches of three
    simulated phases, copies lie in later batches than the phases that they copy, and the
    controller runs the phases as they become known."""
    from hwsim import runner
    from hwsim.arch import load_arch
    from hwsim.mapping import Mapping
    from hwsim.trace import load_trace

    trace, arch = load_trace(trace_file), load_arch(ARCH)
    keys = Mapping(trace, arch).phase_keys(trace.steps)
    assert len(Mapping(trace, arch).distinct(keys)[0]) < len(keys)  # some phases are copies
    detailed = runner.run(trace, arch, engine="detailed", progress=False)
    assert_same_tables(runner.run(trace, arch, progress=False), detailed)
    monkeypatch.setattr(runner, "BATCH_PHASES", 3)
    assert_same_tables(runner.run(trace, arch, progress=False), detailed)


def test_out_writes_tables_and_refuses_to_overwrite(trace_file, tmp_path):
    out = tmp_path / "res"
    assert main(["run", ARCH, trace_file, "--out", str(out), "--quiet"]) == 0
    for name in ("ops", "phases", "pes", "steps"):
        assert (out / f"{name}.csv").stat().st_size > 0
        assert (out / f"{name}.parquet").exists()
    before = (out / "summary.json").read_text()
    code, _, err = run_cli("run", ARCH, trace_file, "--out", str(out), "--set", "pe.mac_lanes=1")
    assert code == 2 and "--force" in err and (out / "summary.json").read_text() == before
    assert main(["run", ARCH, trace_file, "--out", str(out), "--force", "--quiet",
                 "--set", "pe.mac_lanes=1"]) == 0
    assert (out / "summary.json").read_text() != before


def test_json_file_is_not_overwritten_silently(trace_file, tmp_path):
    out = tmp_path / "keep.json"
    out.write_text("precious")
    code, _, err = run_cli("run", ARCH, trace_file, "--json", str(out))
    assert code == 2 and "--force" in err and out.read_text() == "precious"


def test_validate_accepts_good_files(trace_file):
    code, out, err = run_cli("validate", ARCH, trace_file, *map(str, (ROOT / "archs").glob("*.yaml")))
    assert code == 0, err
    assert out.count(": ok") >= 5


# -- bad input: exit 2, one line naming the file and the field, no traceback -----------------

def _bad_npz(tmp_path, name, mutate):
    """A copy of a good trace with one array changed."""
    good = tmp_path / "good.npz"
    save_trace(good, synthetic_trace("fatrelu", layers=1, d_model=16, steps=3, seed=5))
    arrays = dict(np.load(good, allow_pickle=False))
    mutate(arrays)
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


def _set(arrays, key, fn):
    arrays[key] = fn(arrays[key].copy())


BAD_TRACES = {
    "index_out_of_range.npz": (lambda a: _set(a, "op1.index", lambda x: x + 10_000), "op1.index"),
    "nan.npz": (lambda a: _set(a, "op1.value", lambda x: np.where(np.arange(len(x)) == 0, np.nan, x)), "NaN"),
    "nonmonotone.npz": (lambda a: _set(a, "op1.indptr", lambda x: x[::-1].copy()), "indptr"),
    "pickled.npz": (lambda a: a.__setitem__("op1.value", np.array([{"x": 1}], dtype=object)), "pickle"),
}


@pytest.mark.parametrize("name", sorted(BAD_TRACES))
def test_bad_trace_exits_2_naming_file_and_field(tmp_path, name):
    mutate, field = BAD_TRACES[name]
    p = _bad_npz(tmp_path, name, mutate)
    for cmd in (["validate", str(p)], ["run", ARCH, str(p)]):
        code, out, err = run_cli(*cmd)
        assert code == 2, (cmd, err)
        assert name in err and field.lower() in err.lower(), err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_truncated_trace(tmp_path, trace_file):
    data = Path(trace_file).read_bytes()
    p = tmp_path / "truncated.npz"
    p.write_bytes(data[: len(data) // 2])
    code, _, err = run_cli("run", ARCH, str(p))
    assert code == 2 and "truncated.npz" in err and "Traceback" not in err


BAD_ARCHS = {
    "unknown_key": (("sram:", "sram:\n  bankz: 3"), "bankz"),
    "negative_banks": (("banks: 4", "banks: -2"), "sram.banks"),
    "unregistered_component": (("component: pe", "component: no_such_pe"), "pe.component"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHS))
def test_bad_arch_exits_2_naming_file_and_field(tmp_path, trace_file, case):
    (old, new), field = BAD_ARCHS[case]
    text = Path(ARCH).read_text()
    assert old in text
    p = tmp_path / f"{case}.yaml"
    p.write_text(text.replace(old, new, 1))
    for cmd in (["validate", str(p)], ["run", str(p), trace_file]):
        code, _, err = run_cli(*cmd)
        assert code == 2, (cmd, err)
        assert f"{case}.yaml" in err and field in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_override_and_steps(trace_file):
    code, _, err = run_cli("run", ARCH, trace_file, "--set", "sram.banks=many")
    assert code == 2 and "sram.banks" in err
    code, _, err = run_cli("run", ARCH, trace_file, "--steps", "0")
    assert code == 2 and "--steps" in err


def test_missing_files(tmp_path):
    code, _, err = run_cli("run", str(tmp_path / "nope.yaml"), str(tmp_path / "nope.npz"))
    assert code == 2 and "nope.yaml" in err


def test_import_hwsim_does_not_import_torch():
    code = ("import sys, hwsim, hwsim.cli, hwsim.runner, hwsim.engines.fast, "
            "hwsim.engines.detailed; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_import_hwsim_without_torch_installed(tmp_path):
    """A stub `torch` that explodes on import proves hwsim never touches it."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('torch must not be imported')")
    env_code = "import hwsim, hwsim.runner, hwsim.cli; print('ok')"
    r = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True,
                       cwd=ROOT, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr

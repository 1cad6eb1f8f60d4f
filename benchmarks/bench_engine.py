"""Speed of a whole run (issue 3's figures), with pytest-benchmark.

    pytest benchmarks/bench_engine.py --benchmark-only -s

The workload is `hwsim.synth.benchmark_trace()`: 12 Mamba layers, d_model 144, expand 2,
FATReLU-like densities, 250 steps of 40 ms = 10 s of audio, on archs/pe64.yaml. Each figure
below is measured in the same session as its baseline; `extra_info` carries the ratios.
"""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.engines import fast
from hwsim.mapping import Mapping
from hwsim.runner import _batch_runner, _bounds, _plan, run
from hwsim.synth import benchmark_trace

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "archs" / "pe64.yaml"


@pytest.fixture(scope="module")
def trace():
    return benchmark_trace()


@pytest.fixture(scope="module")
def arch():
    return load_arch(ARCH)


@pytest.fixture(scope="module", autouse=True)
def warm(trace, arch):
    """Compile the kernel (numba caches it on disk) before anything is timed."""
    run(trace.head(1), arch, progress=False)


@pytest.mark.parametrize("jobs", [1, 2])
def test_full_utterance(benchmark, trace, arch, jobs):
    """Three runs: this machine is shared, so its load shows in the spread (min and median)."""
    result = benchmark.pedantic(run, args=(trace, arch), kwargs={"jobs": jobs, "progress": False},
                                rounds=3, iterations=1)
    s = result.summary
    benchmark.extra_info.update(events=s["events"], deliveries=s["deliveries"],
                                cycles=s["cycles"], audio_s=s["audio_ms"] / 1e3)


def test_kernel_alone(benchmark, trace, arch):
    """The fast engine's kernel on the full utterance, in the runner's batches (mapped before
    the timing; identical phases simulated once) and folded as a run folds them: what the rest
    of a run (mapping, result tables, SimPy) adds to it. ``ns_per_delivery`` is per delivery
    simulated (``simulated_deliveries``, the distinct phases')."""
    mapping = Mapping(trace, arch)
    keys = mapping.phase_key_arrays(trace.steps)
    sims, copy_of = mapping.distinct(keys)
    batches = []
    for (chunk, copies, steps), _, _ in _plan(sims, copy_of, keys.step,
                                              _bounds(len(sims), "fast", 1)):
        batches.append((mapping.batch(chunk), copies, *np.unique(steps, return_inverse=True)))
    timing = arch.timing()

    def kernel():
        return sum(int(fast.run_batch_folded(b, timing, slot, len(steps), copies=copies,
                                             validate=False)[0].sum())
                   for b, copies, steps, slot in batches)

    cycles = benchmark.pedantic(kernel, rounds=3, iterations=1)
    simulated = sum(int(b.dst_ptr[-1]) for b, _, _, _ in batches)
    benchmark.extra_info.update(
        cycles=cycles, simulated_deliveries=simulated,
        phases=len(keys), simulated_phases=sum(b.n_phases for b, _, _, _ in batches),
        ns_per_delivery=benchmark.stats.stats.min / simulated * 1e9)


def test_detailed_over_fast_ratio(benchmark, trace, arch):
    """Both engines on the first step (108 phases), on the same mapped phases.

    The figure timed is the fast engine alone (``fast.run_batch``); ``extra_info`` gives the
    detailed engine's time on the same batch and both ratios: engine against engine, and whole
    runs (``hwsim.run``, which adds the mapping, the SimPy orchestration and the result tables
    that both engines share)."""
    head = trace.head(1)
    mapping = Mapping(head, arch)
    keys = mapping.phase_keys(1)
    batch = mapping.batch(keys)
    assert len(mapping.distinct(keys)[0]) == len(keys)  # no phase simulated once for two
    timing = arch.timing()
    slot = np.zeros(batch.n_phases, np.int64)  # one step
    t0 = time.perf_counter()
    every = np.arange(batch.n_phases)  # each phase its own copy
    slow = _batch_runner(arch, "detailed")(mapping, keys, every, slot, 1)
    t_detailed = time.perf_counter() - t0
    benchmark.pedantic(fast.run_batch, args=(batch, timing), kwargs={"validate": False},
                       rounds=5, iterations=1)
    quick = _batch_runner(arch, "fast")(mapping, keys, every, slot, 1)
    assert all(np.array_equal(a, b) for a, b in zip(quick, slow))
    t0 = time.perf_counter()
    run(head, arch, engine="detailed", progress=False)
    t_detailed_run = time.perf_counter() - t0
    t_runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        run(head, arch, progress=False)
        t_runs.append(time.perf_counter() - t0)
    benchmark.extra_info.update(
        detailed_s=t_detailed, engine_ratio=t_detailed / benchmark.stats.stats.min,
        detailed_run_s=t_detailed_run, fast_run_s=min(t_runs),
        run_ratio=t_detailed_run / min(t_runs))


def test_doubling_the_events(benchmark, arch):
    """500 steps hold exactly twice the events of 250: time ratio should stay near 2 (the best
    of two runs of each, as this machine's load varies)."""
    one, two = benchmark_trace(250), benchmark_trace(500)
    assert two.n_events() > 1.9 * one.n_events()
    t_one = []
    for _ in range(2):
        t0 = time.perf_counter()
        run(one, arch, progress=False)
        t_one.append(time.perf_counter() - t0)
    t_one = min(t_one)
    benchmark.pedantic(run, args=(two, arch), kwargs={"progress": False}, rounds=2, iterations=1)
    benchmark.extra_info.update(t_250_steps=t_one,
                                ratio=benchmark.stats.stats.min / t_one,
                                events_ratio=two.n_events() / one.n_events())


def test_peak_memory(benchmark):
    """Peak resident memory of a fresh process running the full utterance.

    Read from /proc/self/status (VmHWM) where there is one: getrusage's ru_maxrss survives
    exec, so a child forked from this (larger) pytest process would report the parent's size."""
    code = ("import resource; from hwsim.runner import run; from hwsim.arch import load_arch; "
            "from hwsim.synth import benchmark_trace; "
            f"run(benchmark_trace(), load_arch({str(ARCH)!r}), progress=False); "
            "import os; st = '/proc/self/status'; "
            "print([int(x.split()[1]) for x in open(st) if x.startswith('VmHWM')][0] "
            "if os.path.exists(st) else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")

    def child():
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        return int(out.stdout.split()[-1])

    kib = benchmark.pedantic(child, rounds=1, iterations=1)
    benchmark.extra_info.update(peak_rss_mb=kib / 1024)  # both in KiB on Linux

"""The bottleneck in words: the dominant stall class overall and for the most expensive ops,
with the figures behind it."""

from pathlib import Path

import pytest

from hwsim.arch import load_arch
from hwsim.result import CLASSES as CYCLE_CLASSES
from hwsim.report import LABELS, STALLS, bottleneck_text, dominant_stall
from hwsim.runner import run
from hwsim.synth import synthetic_trace

ROOT = Path(__file__).resolve().parents[1]
ARCH = str(ROOT / "archs" / "pe16.yaml")


@pytest.fixture(scope="module")
def trace():
    return synthetic_trace("fatrelu", layers=1, d_model=16, steps=3, seed=5)


def test_names_the_dominant_stall_and_the_three_most_expensive_ops(trace):
    r = run(trace, load_arch(ARCH), progress=False)
    text = bottleneck_text(r)
    split = r.summary["cycle_split_pe_cycles"]
    worst = max(STALLS, key=lambda k: split[k])
    first = text.splitlines()[0]
    assert LABELS[worst] in first
    share = split[worst] / sum(split.values())
    assert f"{share:.1%}" in first
    top = r.ops.sort_values("cycles", ascending=False).head(3)
    lines = text.splitlines()
    for row in top.itertuples():
        line = next(ln for ln in lines if ln.strip().startswith(row.op + ":"))
        assert f"{int(row.cycles):,} cycles" in line
    assert sum(1 for ln in lines if ln.startswith("    ")) == 3  # one line per op


def test_layer_pipelined_ranks_time_steps(trace):
    r = run(trace, load_arch(ARCH, {"mapping.mode": "layer_pipelined"}), progress=False)
    text = bottleneck_text(r)
    assert "step" in text and "no per-op" in text
    assert "heaviest ops by work" in text


def test_handmade_and_edge_cases():
    from test_plot import handmade_result

    r = handmade_result()
    r.summary["cycle_split_pe_cycles"] = {"compute": 10, "sram_conflict": 0, "noc_wait": 70,
                                          "backpressure": 5, "imbalance": 15, "sync": 0, "idle": 0}
    text = bottleneck_text(r)
    assert text.startswith("bottleneck: NoC wait, 70.0%")
    # energy ranking where ops have energy but no cycles
    e = handmade_result(pipelined=True)
    e.ops["energy_pj"] = range(len(e.ops))
    assert "by energy" in bottleneck_text(e)
    assert e.ops["op"].iloc[-1] in bottleneck_text(e)
    assert dominant_stall({c: 0 for c in CYCLE_CLASSES}) is None
    z = handmade_result()
    z.summary["cycle_split_pe_cycles"] = {c: 0 for c in CYCLE_CLASSES}
    assert "nothing ran" in bottleneck_text(z)
    c = handmade_result()
    c.summary["cycle_split_pe_cycles"] = {c: (5 if c == "compute" else 0) for c in CYCLE_CLASSES}
    assert bottleneck_text(c).startswith("bottleneck: none")

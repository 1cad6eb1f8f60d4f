"""`compare`: one row per trace on the same chip, speed-up and energy saving against the first,
sparsity from the events; the `compare` command saves its table and plot, never overwriting."""

import argparse
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from hwsim.cli_report import add_report_commands
from hwsim.compare import COLUMNS, compare, compare_results, format_table
from hwsim.errors import InputError
from hwsim.synth import synthetic_trace
from hwsim.trace import save_trace

ROOT = Path(__file__).resolve().parents[1]
ARCH = str(ROOT / "archs" / "pe16.yaml")
VARIANTS = ("dense", "fatrelu", "spiking")


@pytest.fixture(scope="module")
def traces():
    return [synthetic_trace(v, layers=1, d_model=16, steps=3, seed=5) for v in VARIANTS]


@pytest.fixture(scope="module")
def table(traces):
    return compare(ARCH, traces)


def test_one_row_per_trace_against_the_first(table, traces):
    assert list(table.columns) == list(COLUMNS)
    assert list(table["variant"]) == list(VARIANTS)
    assert table["speedup"].iloc[0] == 1.0 and table["energy_saving"].iloc[0] == 1.0
    assert np.allclose(table["speedup"], table["cycles"].iloc[0] / table["cycles"])
    assert np.allclose(table["energy_saving"], table["energy_pj"].iloc[0] / table["energy_pj"])
    # sparsity = 1 - events / (sum of input widths x steps)
    for row, t in zip(table.itertuples(), traces):
        dense = sum(op.in_width for op in t.ops) * t.steps
        assert row.dense_events == dense and row.events == t.n_events()
        assert row.sparsity == pytest.approx(1 - t.n_events() / dense)
    assert table["sparsity"].iloc[0] < table["sparsity"].iloc[1]  # FATReLU drops events
    assert (table["acs"].iloc[:2] == 0).all() and table["acs"].iloc[2] > 0  # spikes: ACs
    assert (table["latency_max_ms"] >= table["latency_mean_ms"]).all()
    assert (table["cycles"] > 0).all() and (table["energy_pj"] > 0).all()


def test_format_table(table):
    text = format_table(table)
    lines = text.splitlines()
    assert "pe16" in lines[0]
    assert len(lines) == 3 + len(VARIANTS)
    for v in VARIANTS:
        assert v in text
    assert "1.00x" in lines[3] and "speed-up" in text and "sparsity" in text


def test_compare_results_of_handmade_runs():
    from test_plot import handmade_result

    a, b = handmade_result(seed=1), handmade_result(seed=2)
    b.ops["in_width"] = 10
    with pytest.raises(ValueError, match="trace"):
        compare_results([a, b])  # dense events need the op widths
    a.ops["in_width"] = 10
    df = compare_results([a, b])
    assert df["speedup"].tolist()[0] == 1.0
    assert df["speedup"].iloc[1] == pytest.approx(a.summary["cycles"] / b.summary["cycles"])
    assert df["dense_events"].iloc[0] == 10 * len(a.ops) * a.summary["steps"]


def cli(*argv):
    ap = argparse.ArgumentParser()
    add_report_commands(ap.add_subparsers(dest="command"))
    args = ap.parse_args(argv)
    return args.handler(args)


def test_compare_command_saves_and_refuses_to_overwrite(traces, tmp_path, capsys):
    files = []
    for t in traces[:2]:
        files.append(str(tmp_path / f"{t.variant}.npz"))
        save_trace(files[-1], t)
    out = tmp_path / "cmp"
    assert cli("compare", ARCH, *files, "--out", str(out), "--steps", "2", "--quiet") == 0
    printed = capsys.readouterr().out
    assert "dense" in printed and "fatrelu" in printed and "compare.png" in printed
    for f in ("compare.csv", "compare.parquet", "compare.png"):
        assert (out / f).stat().st_size > 0
    img = mpimg.imread(out / "compare.png")
    assert img.shape[1] >= 800 and img[..., :3].std() > 0.05
    import pandas as pd

    saved = pd.read_csv(out / "compare.csv")
    assert saved["speedup"].iloc[0] == 1.0 and (saved["steps"] == 2).all()
    with pytest.raises(InputError, match="--force"):
        cli("compare", ARCH, *files, "--out", str(out))
    assert cli("compare", ARCH, *files, "--out", str(out), "--force", "--steps", "1",
               "--set", "sram.banks=2", "--quiet") == 0
    assert (pd.read_csv(out / "compare.csv")["steps"] == 1).all()
    with pytest.raises(InputError, match="--steps"):
        cli("compare", ARCH, *files, "--steps", "0")
    with pytest.raises(InputError):
        cli("compare", ARCH, *files, "--set", "sram.nope=1")
    with pytest.raises(InputError):
        cli("compare", ARCH, str(tmp_path / "missing.npz"))

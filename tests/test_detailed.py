"""The detailed engine: conservation laws on random phases, determinism, the component registry
and a custom component loaded as a plugin."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.components import ComponentParam, PE, registry
from hwsim.engines.detailed import run_phase
from hwsim.errors import InputError
from hwsim.phase import BUS, C, CYCLE_CLASSES, MESH, Phase, Timing

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugins" / "serial_decoder.py"


# --- random phases --------------------------------------------------------------------------

@st.composite
def timings(draw):
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return Timing(rows, cols, draw(st.sampled_from([MESH, BUS])), draw(st.integers(1, 4)),
                  draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 3)),
                  draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 4)),
                  draw(st.integers(0, 3)))


@st.composite
def phases(draw, timing):
    n = timing.n_pe
    K = draw(st.integers(0, 25))
    src = sorted(draw(st.lists(st.integers(0, n - 1), min_size=K, max_size=K)))
    src = draw(st.permutations(src))  # packets of different sources interleave in k
    flits, ptr, dst = [], [0], []
    for _ in range(K):
        flits.append(draw(st.integers(1, 3)))
        dst += sorted(draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n)))
        ptr.append(len(dst))
    J = len(dst)
    arr = lambda lo, hi, m: draw(st.lists(st.integers(lo, hi), min_size=m, max_size=m))  # noqa
    return Phase(n, src, flits, ptr, dst, arr(0, 6, J), arr(0, 4, J), arr(0, 16, J),
                 arr(0, 16, J), arr(0, 6, n), arr(0, 6, n), arr(0, 4, n), arr(0, 9, n),
                 arr(0, 9, n), extra_barrier=draw(st.integers(0, 3)))


def tree_links(src, dests, cols, topology):
    """Links a packet traverses (independent count of T4)."""
    others = [d for d in dests if d != src]
    if not others:
        return 0
    if topology == BUS:
        return 1
    rs, cs = divmod(src, cols)
    coords = [divmod(d, cols) for d in dests]
    n = max([cs] + [c for _, c in coords]) - min([cs] + [c for _, c in coords])
    for col in {c for _, c in coords}:
        rows = [r for r, c in coords if c == col]
        n += max(0, rs - min(rows)) + max(0, max(rows) - rs)
    return n


def check_conservation(ph: Phase, t: Timing, r, record=None):
    pe = r.pe
    n, K = t.n_pe, ph.n_packets
    # events: one per (packet, destination) pair, popped where addressed
    assert pe[:, C["events"]].tolist() == np.bincount(ph.dst, minlength=n).tolist()
    assert pe[:, C["events"]].sum() == len(ph.dst)
    # operations, words, updates
    assert pe[:, C["macs"]].sum() == ph.macs.sum() + ph.upd_macs.sum()
    assert pe[:, C["acs"]].sum() == ph.acs.sum()
    assert pe[:, C["sram_reads"]].sum() == ph.reads.sum() + ph.upd_reads.sum()
    assert pe[:, C["sram_writes"]].tolist() == ph.upd_writes.tolist()
    assert pe[:, C["neuron_updates"]].tolist() == ph.upd_neurons.tolist()
    # packets
    assert pe[:, C["packets_sent"]].tolist() == np.bincount(ph.src, minlength=n).tolist()
    hops = np.zeros(n, np.int64)
    for k in range(K):
        d = ph.dst[ph.dst_ptr[k]:ph.dst_ptr[k + 1]].tolist()
        hops[ph.src[k]] += ph.flits[k] * tree_links(int(ph.src[k]), d, t.cols, t.topology)
    assert pe[:, C["flit_hops"]].tolist() == hops.tolist()
    # credits never exceed the queue: the queue never holds more than its depth
    assert (pe[:, C["queue_hwm"]] <= t.queue_depth).all()
    assert ((pe[:, C["queue_hwm"]] >= 1) == (pe[:, C["events"]] >= 1)).all()
    # the six cycle classes partition the phase
    assert (pe[:, :len(CYCLE_CLASSES)].sum(axis=1) == r.cycles).all()
    assert (pe >= 0).all()
    assert r.cycles >= t.barrier_latency + ph.extra_barrier
    # compute is exactly decode + SRAM occupancy/latency + MAC cycles (+ update)
    sram = lambda w: 0 if w == 0 else -(-w // t.banks) + t.read_latency - 1  # noqa: E731
    want = np.zeros(n, np.int64)
    for j, d in enumerate(ph.dst.tolist()):
        want[d] += t.decode_cycles + sram(int(ph.reads[j])) + ph.cycles[j]
    for p in range(n):
        if ph.upd_cycles[p] > 0 or ph.upd_reads[p] > 0:
            want[p] += sram(int(ph.upd_reads[p])) + ph.upd_cycles[p]
    assert pe[:, C["compute"]].tolist() == want.tolist()
    idle = (want == 0) & (np.bincount(ph.dst, minlength=n) == 0)
    assert (pe[idle, C["idle"]] == r.cycles).all()
    assert (pe[~idle, C["idle"]] == 0).all()
    if record is not None:
        check_record(record, t, r)


def check_record(record, t, r):
    slices = {}
    units = {}
    for rec in record:
        if rec[0] == "queue":
            _, p, cyc, depth = rec
            assert 0 <= depth <= t.queue_depth and 0 <= cyc <= r.cycles
        elif rec[0] in ("link", "bus"):  # a link or the bus carries one packet at a time
            a, b = rec[-2:]
            assert 0 <= a < b <= r.cycles
            units.setdefault(rec[:-2], []).append((a, b))
        else:
            p, kind, a, b = rec
            assert kind in {"decode", "sram_wait", "sram", "compute", "update"}
            assert 0 <= a < b <= r.cycles
            slices.setdefault(p, []).append((a, b))
    for unit, ss in units.items():
        ss.sort()
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(ss, ss[1:])), unit
    hops = sum(b - a for ss in units.values() for a, b in ss)
    assert hops == r.pe[:, C["flit_hops"]].sum()  # every flit-hop occupies its link a cycle
    for p, ss in slices.items():  # a core does one thing at a time
        ss.sort()
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(ss, ss[1:])), p
        busy = sum(b - a for a, b in ss)
        assert busy == r.pe[p, C["compute"]] + r.pe[p, C["sram_conflict"]]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_conservation_random(data):
    t = data.draw(timings())
    ph = data.draw(phases(t))
    record = []
    r = run_phase(ph, t, record=record)
    check_conservation(ph, t, r, record)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_interleaving_of_sources_does_not_matter(data):
    """Reordering packets of different sources in k (each source's own order kept) only
    renumbers them: no result may change. The engine decides by keys, not by process order."""
    t = data.draw(timings())
    ph = data.draw(phases(t))
    K = ph.n_packets
    seed = data.draw(st.integers(0, 2**16))
    # a random merge of the per-source sequences
    queues = {s: [k for k in range(K) if ph.src[k] == s] for s in set(ph.src.tolist())}
    rnd = random.Random(seed)
    order = []
    while queues:
        s = rnd.choice(sorted(queues))
        order.append(queues[s].pop(0))
        if not queues[s]:
            del queues[s]
    ph2 = reorder(ph, order)
    assert run_phase(ph, t) == run_phase(ph2, t)


def reorder(ph: Phase, order):
    ptr, dst, cols = [0], [], {f: [] for f in ("reads", "cycles", "macs", "acs")}
    for k in order:
        a, b = ph.dst_ptr[k], ph.dst_ptr[k + 1]
        dst += ph.dst[a:b].tolist()
        for f in cols:
            cols[f] += getattr(ph, f)[a:b].tolist()
        ptr.append(len(dst))
    return Phase(ph.n_pe, ph.src[order], ph.flits[order], ptr, dst, cols["reads"],
                 cols["cycles"], cols["macs"], cols["acs"], ph.upd_reads, ph.upd_writes,
                 ph.upd_cycles, ph.upd_macs, ph.upd_neurons, extra_barrier=ph.extra_barrier)


def test_large_phase_runs_and_conserves():
    """~2,000 packets x 16 destinations on a 4x4 mesh (a few seconds)."""
    rng = np.random.default_rng(0)
    n, K = 16, 2000
    src = np.sort(rng.integers(0, n, K))
    dst = np.tile(np.arange(n), K)
    J = len(dst)
    ph = Phase(n, src, rng.integers(1, 3, K), np.arange(K + 1) * n, dst,
               rng.integers(0, 5, J), rng.integers(1, 4, J), rng.integers(0, 5, J),
               np.zeros(J), *[rng.integers(0, 5, n) for _ in range(5)])
    t = Timing(4, 4, MESH, 8, 1, 2, 1, 2, 1, 1, 2)
    r = run_phase(ph, t)
    check_conservation(ph, t, r)


# --- inputs outside the model ---------------------------------------------------------------

def one_packet(n=2, **kw):
    fields = dict(src=[0], flits=[1], dst_ptr=[0, 1], dst=[1], reads=[0], cycles=[1], macs=[1],
                  acs=[0])
    fields.update(kw)
    z = np.zeros(n, np.int64)
    return Phase(n, fields["src"], fields["flits"], fields["dst_ptr"], fields["dst"],
                 fields["reads"], fields["cycles"], fields["macs"], fields["acs"], z, z, z, z, z)


T12 = Timing(1, 2, MESH, 4, 1, 2, 1, 1, 1, 1, 2)


@pytest.mark.parametrize("bad", [dict(hop_latency=0), dict(read_latency=0), dict(queue_depth=0),
                                 dict(credit_latency=0), dict(topology=7),
                                 dict(barrier_latency=-1)])
def test_bad_timing_is_input_error(bad):
    import dataclasses

    with pytest.raises(InputError, match=next(iter(bad)) if "topology" not in bad else "topology"):
        run_phase(one_packet(), dataclasses.replace(T12, **bad))


@pytest.mark.parametrize("bad", [dict(flits=[0]), dict(dst=[2]), dict(src=[5]),
                                 dict(dst_ptr=[0, 2], dst=[1, 1], reads=[0, 0], cycles=[1, 1],
                                      macs=[0, 0], acs=[0, 0])])
def test_bad_phase_is_input_error(bad):
    with pytest.raises(InputError):
        run_phase(one_packet(**bad), T12)


# --- registry and custom components ---------------------------------------------------------

E1 = one_packet(dst=[0], reads=[2], cycles=[3], macs=[12])  # docs/timing-model.md E1


def test_builtin_pe_is_registered():
    assert "pe" in registry.names()
    assert registry.get("pe") is PE and PE.has_fast_kernel is True and PE.params == ()


def test_plugin_file_loads_and_changes_decode_time(monkeypatch):
    registry.load_plugin(str(PLUGIN))
    monkeypatch.chdir(ROOT)
    registry.load_plugin("examples/plugins/serial_decoder.py")  # same file again: no duplicate
    cls = registry.get("serial_decoder")
    assert cls.has_fast_kernel is False and issubclass(cls, PE)
    base = run_phase(E1, T12)
    assert base.cycles == 9
    # decode = 1 + ceil(16 / 4) = 5 instead of 1: four more compute cycles, phase 13
    r = run_phase(E1, T12, components={"pe": ("serial_decoder",
                                              {"bits_per_cycle": 4, "address_bits": 16})})
    assert r.cycles == 13
    assert r.pe[0, C["compute"]] == 9 and r.pe[0, C["barrier"]] == 2
    # ceil(10 / 3) = 4 more; defaults (4 bits/cycle, 16 bits) give 4 more
    r = run_phase(E1, T12, components={"pe": (cls, {"bits_per_cycle": 3, "address_bits": 10})})
    assert r.cycles == 13
    r = run_phase(E1, T12, components={"pe": ("serial_decoder", {"bits_per_cycle": 16})})
    assert r.cycles == 10 and r.pe[0, C["compute"]] == 6
    assert run_phase(E1, T12, components={"pe": "serial_decoder"}).cycles == 13
    # the rest of the counters are the built-in PE's
    diff = np.argwhere(r.pe != base.pe)
    assert {int(c) for _, c in diff} <= {C["compute"], C["barrier"], C["idle"]}


def test_plugin_by_module_name(tmp_path, monkeypatch):
    (tmp_path / "my_hw_plugin_mod.py").write_text(textwrap.dedent("""
        from hwsim.components import register
        from hwsim.components.pe import PE

        @register("test_module_pe")
        class ModPE(PE):
            has_fast_kernel = False
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.load_plugin("my_hw_plugin_mod")
    assert registry.get("test_module_pe").__name__ == "ModPE"
    assert run_phase(E1, T12, components={"pe": "test_module_pe"}).cycles == 9


def test_unknown_component_is_input_error():
    with pytest.raises(InputError) as e:
        registry.get("no_such_pe", where="archs/x.yaml:7: pe.component")
    msg = str(e.value)
    assert msg.startswith("archs/x.yaml:7: pe.component")
    assert "no_such_pe" in msg and "pe" in msg and "--plugin" in msg
    with pytest.raises(InputError, match="no_such_pe"):
        run_phase(E1, T12, components={"pe": "no_such_pe"})
    with pytest.raises(InputError, match="slot"):
        run_phase(E1, T12, components={"router": "pe"})


@pytest.mark.parametrize("params, match", [
    ({"bits_per_cycle": 0}, "bits_per_cycle"),          # out of range
    ({"bits_per_cycle": 65}, "bits_per_cycle"),
    ({"bits_per_cycle": "4"}, "integer"),              # wrong type
    ({"bits_per_cycle": 4.0}, "integer"),
    ({"bits_per_cycle": True}, "integer"),
    ({"bits_per_second": 4}, "unknown parameter"),     # unknown param
    (["bits_per_cycle"], "mapping"),
])
def test_bad_component_params_are_input_errors(params, match):
    registry.load_plugin(str(PLUGIN))
    with pytest.raises(InputError, match=match):
        run_phase(E1, T12, components={"pe": ("serial_decoder", params)})


def test_builtin_pe_takes_no_params():
    with pytest.raises(InputError, match="unknown parameter 'x'"):
        run_phase(E1, T12, components={"pe": ("pe", {"x": 1})})
    where = "archs/x.yaml:9: pe.component_params"
    with pytest.raises(InputError, match="^archs/x.yaml:9: pe.component_params"):
        registry.validate_params(PE, {"x": 1}, where)


def test_register_refuses_duplicates_and_bad_declarations():
    class Other(PE):
        pass

    with pytest.raises(InputError, match="already registered"):
        registry.register("pe", Other)
    registry.register("pe", PE)  # the same class again is fine

    class NoTuple(PE):
        params = [ComponentParam("a", int, 1, "", "a")]

    with pytest.raises(InputError, match="tuple"):
        registry.register("test_no_tuple", NoTuple)

    class BadDefault(PE):
        params = (ComponentParam("a", int, 0, "", "a", min=1),)

    with pytest.raises(InputError, match="default"):
        registry.register("test_bad_default", BadDefault)

    @registry.register("test_decorated_pe")
    class Decorated(PE):
        params = (ComponentParam("lanes", int, 2, "lanes", "lanes", min=1),)
        has_fast_kernel = False

    assert registry.get("test_decorated_pe") is Decorated
    assert "| `lanes` | int | 2 | lanes |" in registry.param_table(Decorated)


def test_load_plugin_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        registry.load_plugin(str(tmp_path / "missing.py"))
    bad = tmp_path / "broken.py"
    bad.write_text("def (:\n")
    with pytest.raises(InputError, match="cannot import"):
        registry.load_plugin(str(bad))
    with pytest.raises(InputError, match="cannot import"):
        registry.load_plugin("no_such_module_for_hwsim_tests")


def test_entry_points(monkeypatch):
    class EP:
        name, value = "test_ep_pe", "somewhere:EPpe"

        @staticmethod
        def load():
            class EPpe(PE):
                has_fast_kernel = False
            return EPpe

    import importlib.metadata as md

    monkeypatch.setattr(md, "entry_points", lambda group=None: [EP] if group ==
                        registry.ENTRY_POINT_GROUP else [])
    registry.load_entry_points()
    assert registry.get("test_ep_pe").__name__ == "EPpe"

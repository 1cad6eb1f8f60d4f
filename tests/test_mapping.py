"""The mapping places exactly the work the trace implies: nothing lost, nothing invented."""

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.errors import InputError
from hwsim.mapping import Mapping, even_split
from hwsim.synth import synthetic_trace


def analytical_ops(op, events: int) -> int:
    """MACs or ACs one op's input events imply, from the model alone (no chip)."""
    per_event = {
        "linear": op.out_width,
        "conv1d": op.params.get("kernel", 0),
        "scan": op.params.get("d_state", 0),
        "elementwise": 1,
        "norm": 1,
    }[op.kind]
    return events * per_event


@pytest.fixture(scope="module")
def arch():
    return load_arch("archs/pe16.yaml")


@pytest.mark.parametrize("variant", ["dense", "fatrelu", "spiking"])
@pytest.mark.parametrize("mode", ["op_by_op", "layer_pipelined"])
@pytest.mark.parametrize("multicast", [True, False])
@pytest.mark.parametrize("strategy", ["even", "balanced"])
def test_ops_equal_analytical_count(arch, variant, mode, multicast, strategy):
    trace = synthetic_trace(variant, layers=1, d_model=32, steps=4, seed=3)
    a = arch.with_overrides({"mapping.mode": mode, "noc.multicast": multicast,
                             "mapping.strategy": strategy})
    m = Mapping(trace, a)
    ops = np.zeros(len(trace.ops), np.int64)
    spikes = np.zeros(len(trace.ops), np.int64)
    counts = np.zeros((len(trace.ops), 5), np.int64)  # Mapping.op_totals, from the pairs
    for _, ph in m.phases(trace.steps):
        op_j = np.repeat(ph.op_of, np.diff(ph.dst_ptr))
        ops += np.bincount(op_j, weights=ph.macs + ph.acs, minlength=len(ops)).astype(np.int64)
        spikes += np.bincount(op_j, weights=ph.acs, minlength=len(ops)).astype(np.int64)
        np.add.at(counts, ph.op_of, [1, 0, 0, 0, 0])
        for col, per_pair in enumerate((np.ones_like(ph.dst), ph.macs, ph.acs, ph.reads), 1):
            np.add.at(counts[:, col], op_j, per_pair)
    assert np.array_equal(m.op_totals, counts)
    for i, op in enumerate(trace.ops):
        n = int(np.diff(trace.events[i].indptr).sum())
        assert ops[i] == analytical_ops(op, n), op.name
        assert (spikes[i] == ops[i]) if op.binary else (spikes[i] == 0), op.name


def test_linear_multicast_reaches_every_owner(arch):
    trace = synthetic_trace("fatrelu", layers=1, d_model=32, steps=2, seed=1)
    m = Mapping(trace, arch)
    i = [o.name for o in trace.ops].index("layers.0.in_proj")
    ph = m.build((0, i))
    n_events = int(np.diff(trace.events[i].indptr)[0])
    assert ph.n_packets == n_events
    assert np.all(np.diff(ph.dst_ptr) == arch.n_pe)  # 128 outputs over 16 PEs: all own some
    # one unicast packet per destination without multicast
    m2 = Mapping(trace, arch.with_overrides({"noc.multicast": False}))
    assert m2.build((0, i)).n_packets == n_events * arch.n_pe


def test_sources_are_owners_of_the_feeding_op(arch):
    trace = synthetic_trace("dense", layers=1, d_model=32, steps=1)
    m = Mapping(trace, arch)
    names = [o.name for o in trace.ops]
    conv, in_proj = names.index("layers.0.conv1d"), names.index("layers.0.in_proj")
    ch = np.arange(trace.ops[conv].in_width)
    np.testing.assert_array_equal(m.places[conv].src_of_channel, m.places[in_proj].owner[ch])


def test_even_split():
    assert even_split(10, 4).tolist() == [3, 3, 2, 2]
    assert even_split(2, 4).tolist() == [1, 1, 0, 0]


def test_capacity_is_checked(arch):
    trace = synthetic_trace("dense", layers=1, d_model=32, steps=1)
    tiny = arch.with_overrides({"sram.capacity_kib": 0.01})
    with pytest.raises(InputError, match="capacity_kib"):
        Mapping(trace, tiny)


def test_balanced_owners_cover_every_neuron_once(arch):
    trace = synthetic_trace("fatrelu", layers=1, d_model=32, steps=6, seed=2)
    m = Mapping(trace, arch.with_overrides({"mapping.strategy": "balanced"}))
    for op, pl in zip(trace.ops, m.places):
        assert len(pl.owner) == op.out_width and pl.owned.sum() == op.out_width, op.name
        assert np.array_equal(np.bincount(pl.owner, minlength=m.n_pe), pl.owned)


def test_balanced_groups_follow_op_work():
    """In layer_pipelined mode the heaviest op gets the most PEs, every op at least one."""
    arch = load_arch("archs/pe64.yaml", {"mapping.mode": "layer_pipelined",
                                         "mapping.strategy": "balanced"})
    trace = synthetic_trace("fatrelu", layers=1, d_model=32, steps=4, seed=2)
    m = Mapping(trace, arch)
    sizes = np.array([len(g) for g in m.groups])
    work = np.array([m._op_work(i) for i in range(len(trace.ops))])
    assert sizes.sum() == arch.n_pe and sizes.min() >= 1
    assert sizes[np.argmax(work)] == sizes.max()
    flat = np.concatenate(m.groups)
    assert len(np.unique(flat)) == arch.n_pe  # disjoint groups covering the chip


@pytest.mark.parametrize("variant,density", [("dense", 1.0), ("fatrelu", 1.0), ("fatrelu", 0.0)])
@pytest.mark.parametrize("mode", ["op_by_op", "layer_pipelined"])
def test_distinct_phases_are_the_same_work(arch, variant, density, mode):
    """Phases that Mapping.distinct says are alike (an engine simulates one for all) build the
    same arrays; phases it keeps apart differ in their op or input channels (density 0: no
    events at all, yet each op's update work is its own)."""
    trace = synthetic_trace(variant, layers=1, d_model=32, steps=6, seed=4, density_scale=density)
    m = Mapping(trace, arch.with_overrides({"mapping.mode": mode}))
    keys = m.phase_keys(trace.steps)
    distinct, copies = m.distinct(keys)
    assert len(copies) == len(keys) and sorted(set(copies.tolist())) == list(range(len(distinct)))
    if mode == "op_by_op":  # the dense ops' steps are alike
        assert len(distinct) < len(keys)
    fields = ("src", "flits", "dst_ptr", "pair_lo", "k_off", "upd_cycles", "extra_barrier")
    built = [m.batch([k]) for k in keys]
    for q, key in enumerate(keys):
        same = built[keys.index(distinct[copies[q]])]
        assert all(np.array_equal(getattr(built[q], f), getattr(same, f)) for f in fields)
    channels = {}
    for q, (t, i) in enumerate(keys):
        ops = range(len(trace.ops)) if i is None else [i]
        channels.setdefault(int(copies[q]), set()).add(
            tuple((o, tuple(trace.events[o].index[trace.events[o].indptr[t]:
                                                  trace.events[o].indptr[t + 1]])) for o in ops))
    assert all(len(v) == 1 for v in channels.values())  # one channel list per distinct phase
    assert len({next(iter(v)) for v in channels.values()}) == len(distinct)  # all different
    if mode == "op_by_op":
        assert all(distinct[copies[q]][1] == i for q, (_, i) in enumerate(keys))
    arrays = m.phase_key_arrays(trace.steps)  # what a run uses: the same phases as arrays
    assert list(arrays) == keys and [arrays[q] for q in range(len(keys))] == keys
    as_arrays, same_copies = m.distinct(arrays)
    assert list(as_arrays) == distinct and np.array_equal(same_copies, copies)
    assert all(np.array_equal(getattr(m.batch(as_arrays[2:5]), f),
                              getattr(m.batch(distinct[2:5]), f)) for f in fields)

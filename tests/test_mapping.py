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
def test_ops_equal_analytical_count(arch, variant, mode, multicast):
    trace = synthetic_trace(variant, layers=1, d_model=32, steps=4, seed=3)
    a = arch.with_overrides({"mapping.mode": mode, "noc.multicast": multicast})
    m = Mapping(trace, a)
    ops = np.zeros(len(trace.ops), np.int64)
    spikes = np.zeros(len(trace.ops), np.int64)
    for _, ph in m.phases(trace.steps):
        op_j = np.repeat(ph.op_of, np.diff(ph.dst_ptr))
        ops += np.bincount(op_j, weights=ph.macs + ph.acs, minlength=len(ops)).astype(np.int64)
        spikes += np.bincount(op_j, weights=ph.acs, minlength=len(ops)).astype(np.int64)
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

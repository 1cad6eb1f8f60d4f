"""The worked examples of docs/timing-model.md section 6 (E1-E5), and more hand-checked ones,
as exact expectations of EVERY counter of EVERY PE and of phase_cycles, for every engine.

A counter an example does not list is asserted to be 0. Unless a test says otherwise the
architecture is the one of section 6: 1x2 mesh, decode 1, banks 2, read_latency 1, sharing 1,
hop 1, credit_latency 1, queue_depth 4, barrier_latency 2, 1-flit packets.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from hwsim.phase import BUS, C, COUNTERS, MESH, N_COUNTERS, Phase, Timing

ENGINES = ["detailed", "fast"]


@pytest.fixture(params=ENGINES)
def run_phase(request):
    name = request.param
    if name == "fast":
        pytest.importorskip("hwsim.engines.fast")
    return importlib.import_module(f"hwsim.engines.{name}").run_phase


def timing(rows=1, cols=2, topology=MESH, queue_depth=4, decode_cycles=1, banks=2,
           read_latency=1, sharing=1, hop_latency=1, credit_latency=1, barrier_latency=2):
    return Timing(rows, cols, topology, queue_depth, decode_cycles, banks, read_latency, sharing,
                  hop_latency, credit_latency, barrier_latency)


def pkt(src, dests, *, flits=1, reads=0, cycles=1, macs=0, acs=0):
    """A packet from `src` to `dests`, the same work at every destination."""
    return (src, flits, [(d, reads, cycles, macs, acs) for d in dests])


def phase(n_pe, packets, *, upd=None, extra_barrier=0):
    """Build a Phase from `pkt(...)` tuples (k = list order) and `upd = {pe: {field: v}}`."""
    src, flits, ptr, dst, reads, cycles, macs, acs = [], [], [0], [], [], [], [], []
    for s, f, ds in packets:
        src.append(s)
        flits.append(f)
        for d, r, c, m, a in ds:
            dst.append(d), reads.append(r), cycles.append(c), macs.append(m), acs.append(a)
        ptr.append(len(dst))
    u = {f: np.zeros(n_pe, np.int64) for f in ("reads", "writes", "cycles", "macs", "neurons")}
    for p, fields in (upd or {}).items():
        for f, v in fields.items():
            u[f][p] = v
    return Phase(n_pe, src, flits, ptr, dst, reads, cycles, macs, acs, u["reads"], u["writes"],
                 u["cycles"], u["macs"], u["neurons"], extra_barrier=extra_barrier)


def check(result, n_pe, phase_cycles, expected):
    """Assert phase_cycles and the whole counter matrix; unlisted counters must be 0."""
    want = np.zeros((n_pe, N_COUNTERS), np.int64)
    for p, counters in expected.items():
        for name, v in counters.items():
            want[p, C[name]] = v
    msgs = []
    if result.cycles != phase_cycles:
        msgs.append(f"phase_cycles {result.cycles} != {phase_cycles}")
    for p, c in np.argwhere(result.pe != want):
        msgs.append(f"PE {p} {COUNTERS[c]}: got {result.pe[p, c]}, want {want[p, c]}")
    assert not msgs, "; ".join(msgs)
    # the six cycle classes partition the phase for every PE
    assert (result.pe[:, :6].sum(axis=1) == phase_cycles).all()


# --- section 6 ------------------------------------------------------------------------------

def test_e1_one_local_event(run_phase):
    # Sent 0; ejection 1, queue 2; pop 2; decode to 3; SRAM 3 (1 cycle), data 4; compute to 7.
    r = run_phase(phase(2, [pkt(0, [0], reads=2, cycles=3, macs=12)]), timing())
    check(r, 2, 9, {
        0: dict(compute=5, noc_wait=2, barrier=2, events=1, macs=12, sram_reads=2,
                queue_hwm=1, packets_sent=1),
        1: dict(idle=9),
    })


def test_e2_one_hop(run_phase):
    # Link 0->1 at 1, router 1 at 2, ejection 2, queue 3; pop 3, decode 4, SRAM 4, data 5, done 8.
    r = run_phase(phase(2, [pkt(0, [1], reads=2, cycles=3, macs=12)]), timing())
    check(r, 2, 10, {
        0: dict(idle=10, flit_hops=1, packets_sent=1),
        1: dict(compute=5, noc_wait=3, barrier=2, events=1, macs=12, sram_reads=2, queue_hwm=1),
    })


def test_e3_backpressure(run_phase):
    # queue_depth 1, credit_latency 2. Sent 0, 4, 8 (credit_wait 0, 3, 3); popped 2, 6, 10;
    # waits before the pops 2, 2, 2 of which min(wait, credit_wait) = 0, 2, 2 are back-pressure.
    r = run_phase(phase(2, [pkt(0, [0], cycles=1, macs=4)] * 3),
                  timing(queue_depth=1, credit_latency=2))
    check(r, 2, 14, {
        0: dict(compute=6, noc_wait=2, backpressure=4, barrier=2, events=3, macs=12,
                queue_hwm=1, packets_sent=3, credit_wait=6),
        1: dict(idle=14),
    })


def test_e4_sram_conflict(run_phase):
    # sharing 2: both request the SRAM at 3; key (3, 0) wins. PE 0: granted 3, data 5, done 6.
    # PE 1: granted 5 (conflict 2), data 7, done 8.
    r = run_phase(phase(2, [pkt(0, [0], reads=4, cycles=1, macs=4),
                            pkt(1, [1], reads=4, cycles=1, macs=4)]), timing(sharing=2))
    check(r, 2, 10, {
        0: dict(compute=4, noc_wait=2, barrier=4, events=1, macs=4, sram_reads=4, queue_hwm=1,
                packets_sent=1),
        1: dict(compute=4, sram_conflict=2, noc_wait=2, barrier=2, events=1, macs=4,
                sram_reads=4, queue_hwm=1, packets_sent=1),
    })


def test_e5_link_contention(run_phase):
    # 1x3 mesh, 2-flit packets, reads 2 and cycles 3 as in E1 (the page leaves the work open).
    # PE 1's packet: link 1->2 granted 1, router 2 at 2, ejection 2 (busy 2), queue 4.
    # PE 0's packet: link 0->1 at 1, router 1 at 2, link 1->2 free at 3 -> granted 3, router 2 at
    # 4, ejection 4, queue 6. PE 2: pop 4, decode 5, SRAM 5, data 6, done 9; pop 9 (entered 6),
    # decode 10, SRAM 10, data 11, done 14. phase = 14 + 2.
    r = run_phase(phase(3, [pkt(0, [2], flits=2, reads=2, cycles=3, macs=12),
                            pkt(1, [2], flits=2, reads=2, cycles=3, macs=12)]),
                  timing(cols=3))
    check(r, 3, 16, {
        0: dict(idle=16, flit_hops=4, packets_sent=1),
        1: dict(idle=16, flit_hops=2, packets_sent=1),
        2: dict(compute=10, noc_wait=4, barrier=2, events=2, macs=24, sram_reads=4,
                queue_hwm=1),
    })


# --- more hand-checked examples -------------------------------------------------------------

def test_bus_shared_transfer_and_self_destination(run_phase):
    # 1x3 bus. k0: PE 0 -> {0,1,2}, 2 flits, reads 2, cycles 1. k1: PE 2 -> {1}, 1 flit,
    # binary (ACs), reads 0, cycles 1. Both sent 0; at 1 both request the bus, key (1,0,0) wins:
    # k0 granted 1 (busy 1-2), at PEs 1 and 2 in 1 + hop = 2. k1 granted 3, at PE 1 in 4.
    # k0's own destination PE 0 skips the bus: ejection 1 (busy 2), queue 3; pop 3, decode 4,
    # SRAM 4, data 5, done 6.
    # PE 1: k0 ejection 2, queue 4; pop 4, decode 5, SRAM 5, data 6, done 7. k1 asks PE 1's
    # ejection at 4 (free at 4), queue 5; pop 7, decode 8, done 9. PE 2: like PE 1's k0, done 7.
    # phase = 9 + 2. Flit-hops: one bus transfer each, 2 and 1 flits.
    r = run_phase(phase(3, [pkt(0, [0, 1, 2], flits=2, reads=2, cycles=1, macs=4),
                            pkt(2, [1], cycles=1, acs=3)]),
                  timing(cols=3, topology=BUS))
    check(r, 3, 11, {
        0: dict(compute=3, noc_wait=3, barrier=5, events=1, macs=4, sram_reads=2, flit_hops=2,
                queue_hwm=1, packets_sent=1),
        1: dict(compute=5, noc_wait=4, barrier=2, events=2, macs=4, acs=3, sram_reads=2,
                queue_hwm=1),
        2: dict(compute=3, noc_wait=4, barrier=4, events=1, macs=4, sram_reads=2, flit_hops=1,
                queue_hwm=1, packets_sent=1),
    })


def test_mesh_multicast_tree_2x2(run_phase):
    # PE 0 -> {1, 2, 3} on a 2x2 mesh, one packet. Tree: 0->1 (east), 0->2 (south in column 0),
    # 1->3 (south in column 1): 3 links. At 1 links 0->1 and 0->2 granted; routers 1 and 2 at 2:
    # ejections at 2 (queue 3) and link 1->3 at 2; router 3 at 3, ejection 3, queue 4.
    # PEs 1, 2: pop 3, decode 4, compute to 6. PE 3: pop 4, done 7. phase = 7 + 2.
    r = run_phase(phase(4, [pkt(0, [1, 2, 3], cycles=2, macs=8)]), timing(rows=2, cols=2))
    check(r, 4, 9, {
        0: dict(idle=9, flit_hops=3, packets_sent=1),
        1: dict(compute=3, noc_wait=3, barrier=3, events=1, macs=8, queue_hwm=1),
        2: dict(compute=3, noc_wait=3, barrier=3, events=1, macs=8, queue_hwm=1),
        3: dict(compute=3, noc_wait=4, barrier=2, events=1, macs=8, queue_hwm=1),
    })


def test_mesh_multicast_off_is_separate_unicasts(run_phase):
    # The same event with multicast off: three packets k0 -> 1, k1 -> 2, k2 -> 3 (increasing
    # destination), one per cycle: sent 0, 1, 2 (no credit wait).
    # k0: link 0->1 at 1, router 1 at 2, queue 3; PE 1 done 6.
    # k1: link 0->2 at 2, router 2 at 3, queue 4; PE 2 pop 4, done 7.
    # k2: link 0->1 at 3 (XY: east first), router 1 at 4, link 1->3 at 4, router 3 at 5, queue 6;
    # PE 3 pop 6, done 9. phase = 9 + 2. Flit-hops 1 + 1 + 2.
    r = run_phase(phase(4, [pkt(0, [d], cycles=2, macs=8) for d in (1, 2, 3)]),
                  timing(rows=2, cols=2))
    check(r, 4, 11, {
        0: dict(idle=11, flit_hops=4, packets_sent=3),
        1: dict(compute=3, noc_wait=3, barrier=5, events=1, macs=8, queue_hwm=1),
        2: dict(compute=3, noc_wait=4, barrier=4, events=1, macs=8, queue_hwm=1),
        3: dict(compute=3, noc_wait=6, barrier=2, events=1, macs=8, queue_hwm=1),
    })


def test_mesh_tree_north_south_3x3(run_phase):
    # 3x3 mesh, PE 3 (row 1, col 0) -> {0, 2, 6, 8}. Tree: 3->4, 4->5 (east), 3->0 / 3->6
    # (column 0), 5->2 / 5->8 (column 2): 6 links. At 1: 3->4, 3->0, 3->6 granted; routers 0, 6
    # at 2 -> ejection 2, queue 3, done 5. Router 4 at 2 -> 4->5 at 2, router 5 at 3 -> 5->2,
    # 5->8 at 3, routers 2, 8 at 4 -> queue 5, done 7. phase = 7 + 2.
    r = run_phase(phase(9, [pkt(3, [0, 2, 6, 8], cycles=1, macs=2)]), timing(rows=3, cols=3))
    side = dict(compute=2, noc_wait=3, barrier=4, events=1, macs=2, queue_hwm=1)
    far = dict(compute=2, noc_wait=5, barrier=2, events=1, macs=2, queue_hwm=1)
    check(r, 9, 9, {
        0: side, 6: side, 2: far, 8: far,
        1: dict(idle=9), 4: dict(idle=9), 5: dict(idle=9), 7: dict(idle=9),
        3: dict(idle=9, flit_hops=6, packets_sent=1),
    })


def test_mesh_west_branch_and_self(run_phase):
    # 1x3 mesh, PE 1 -> {0, 1, 2}: own ejection at 1 (queue 2), links 1->0 and 1->2 at 1,
    # routers 0 and 2 at 2, queue 3. PE 1: pop 2, done 4. PEs 0, 2: pop 3, done 5. phase 7.
    r = run_phase(phase(3, [pkt(1, [0, 1, 2], cycles=1, macs=1)]), timing(cols=3))
    edge = dict(compute=2, noc_wait=3, barrier=2, events=1, macs=1, queue_hwm=1)
    check(r, 3, 7, {
        0: edge, 2: edge,
        1: dict(compute=2, noc_wait=2, barrier=3, events=1, macs=1, queue_hwm=1, flit_hops=2,
                packets_sent=1),
    })


def test_update_work_and_shared_sram(run_phase):
    # 1x3 mesh, sharing 2 (PEs 0, 1 share an SRAM). k0: PE 0 -> {0}, reads 2, cycles 3.
    # PE 1 (no events) starts its update at 0: SRAM (0, 1) granted 0, busy ceil(8/2) = 4, data 4,
    # 5 cycles -> done 9 (compute 4 + 5). PE 0: pop 2, decode 3, SRAM request 3 waits until 4
    # (conflict 1), data 5, compute to 8; update: SRAM 8 (busy 2), data 10, 3 cycles -> 13.
    # compute = (1 + 1 + 3) + (2 + 3) = 10. phase = 13 + 2.
    # PE 2 has neurons and write-back but no update cycles or reads: no update work -> idle,
    # its neuron_updates and sram_writes still count.
    upd = {0: dict(reads=4, writes=4, cycles=3, macs=8, neurons=2),
           1: dict(reads=8, writes=8, cycles=5, macs=10, neurons=5),
           2: dict(writes=2, neurons=3)}
    r = run_phase(phase(3, [pkt(0, [0], reads=2, cycles=3, macs=12)], upd=upd),
                  timing(cols=3, sharing=2))
    check(r, 3, 15, {
        0: dict(compute=10, sram_conflict=1, noc_wait=2, barrier=2, events=1, macs=20,
                sram_reads=6, sram_writes=4, queue_hwm=1, packets_sent=1, neuron_updates=2),
        1: dict(compute=9, barrier=6, macs=10, sram_reads=8, sram_writes=8, neuron_updates=5),
        2: dict(idle=15, sram_writes=2, neuron_updates=3),
    })


def test_extra_barrier(run_phase):
    # E1 with extra_barrier 5: done 7, phase = 7 + 2 + 5.
    r = run_phase(phase(2, [pkt(0, [0], reads=2, cycles=3, macs=12)], extra_barrier=5),
                  timing())
    check(r, 2, 14, {
        0: dict(compute=5, noc_wait=2, barrier=7, events=1, macs=12, sram_reads=2,
                queue_hwm=1, packets_sent=1),
        1: dict(idle=14),
    })


def test_empty_phase(run_phase):
    # Nothing happens: max(done) = 0, phase = barrier_latency + extra_barrier, all PEs idle.
    r = run_phase(Phase.empty(2, extra_barrier=3), timing())
    check(r, 2, 5, {0: dict(idle=5), 1: dict(idle=5)})


def test_binary_and_graded_events(run_phase):
    # PE 0 -> {1} twice: k0 graded, 2 flits, 4 MACs; k1 binary, 1 flit, 4 ACs; both reads 2,
    # cycles 1. k0: link at 1 (busy 1-2), router 1 at 2, ejection 2 (busy 2), queue 4.
    # k1: sent 1, link asked at 2, free at 3 -> granted 3, router 1 at 4, ejection 4, queue 5.
    # PE 1: pop 4, decode 5, SRAM 5, data 6, done 7; pop 7, decode 8, SRAM 8, data 9, done 10.
    r = run_phase(phase(2, [pkt(0, [1], flits=2, reads=2, cycles=1, macs=4),
                            pkt(0, [1], flits=1, reads=2, cycles=1, acs=4)]), timing())
    check(r, 2, 12, {
        0: dict(idle=12, flit_hops=3, packets_sent=2),
        1: dict(compute=6, noc_wait=4, barrier=2, events=2, macs=4, acs=4, sram_reads=4,
                queue_hwm=1),
    })


def test_credit_race_in_source_order(run_phase):
    # queue_depth 1, 1x3 mesh; k0: PE 2 -> {1}, k1: PE 0 -> {1}. Both ask for PE 1's only credit
    # at 0; the check goes in increasing *source* index, so PE 0 (k1) gets it.
    # k1: sent 0, link 0->1 at 1, router 1 at 2, queue 3, pop 3 (credit back 4), done 5.
    # k0: sent 4 (credit_wait 4), link 2->1 at 5, router 1 at 6, queue 7, pop 7, done 9.
    # PE 1 waits 3 before k1 (noc_wait) and 2 before k0, all back-pressure (min(2, 4)).
    r = run_phase(phase(3, [pkt(2, [1], cycles=1, macs=1), pkt(0, [1], cycles=1, macs=1)]),
                  timing(cols=3, queue_depth=1))
    check(r, 3, 11, {
        0: dict(idle=11, flit_hops=1, packets_sent=1),
        1: dict(compute=4, noc_wait=3, backpressure=2, barrier=2, events=2, macs=2, queue_hwm=1),
        2: dict(idle=11, flit_hops=1, packets_sent=1, credit_wait=4),
    })


def test_queue_fills(run_phase):
    # queue_depth 2, 4 packets PE 0 -> {0}, cycles 5. k0 sent 0 (queue 2), k1 sent 1 (queue 3);
    # k2 first tries 2, the credit of k0's pop at 2 is back at 3 -> sent 3 (wait 1), queue 5;
    # k3 first tries 4, next credit from k1's pop at 8 is back at 9 -> sent 9 (wait 5), queue 11.
    # Core: pops 2, 8, 14, 20, each 6 cycles -> done 26. At 5 the queue holds k1 and k2: hwm 2.
    r = run_phase(phase(2, [pkt(0, [0], cycles=5, macs=20)] * 4), timing(queue_depth=2))
    check(r, 2, 28, {
        0: dict(compute=24, noc_wait=2, barrier=2, events=4, macs=80, queue_hwm=2,
                packets_sent=4, credit_wait=6),
        1: dict(idle=28),
    })

"""Kernel of the fast engine: docs/timing-model.md (rules T1-T7) as one time-ordered loop.

Everything here is integers in flat preallocated int64 arrays, so the same source runs compiled
by numba (``@njit(cache=True)``) or as plain Python/numpy (no numba installed, or
``HWSIM_DISABLE_NUMBA=1``), with identical results.

How the rules become a fast exact loop
--------------------------------------
* **Bucket queue over cycles.** Future work is kept as events in a ring of ``H`` cycle buckets
  (events further than ``H`` cycles ahead wait in a small overflow heap). The loop jumps from one
  non-empty cycle to the next. (The lean kernel files the router heads due in the next 31
  cycles, most of them, in a wheel of flat per-cycle arrays instead of the buckets' linked lists:
  no pointer chasing when a cycle gathers them.) Inside a cycle, four event classes are handled
  in a fixed order that realises the rules' same-cycle ordering:

  0. ``RET``     credit returns (T2: a credit returned in cycle t can be taken in cycle t);
  1. ``HEAD``    a source's next packet reaches the head (T1), then all sends of the cycle, in
                 increasing source PE index (T2);
  2. ``REQ``     a packet's head at a router (or the bus) requesting links / ejection ports,
                 sorted by the packet's rank in (source PE, k) order (T3);
  3. ``SRAM``    SRAM requests of shared SRAMs, sorted by PE index (T3).

* **Shared units are "free-at" counters.** Every request for a unit reaches the unit in its own
  request cycle, cycles are processed in increasing order and the requests of one cycle in key
  order, so a waiting request can never be overtaken: the grant is simply
  ``g = max(request cycle, free_at)`` and ``free_at = g + occupancy``. This is exactly T3's
  smallest-(request cycle, ...)-key-first rule, computed eagerly at request time.

* **Cores are FIFO servers computed eagerly.** When an event's ejection grant is known, its
  entry cycle is known; the core pops it at ``max(entry, core free)``. With private SRAMs
  (``sharing == 1``) the whole service is known at once; with shared SRAMs the core waits for
  its ``SRAM`` event. Credit returns go back into the bucket queue.

* **Sources blocked on credits sleep.** A source that fails its credit check registers (through
  its packet's *destination-set group*) on one destination queue that had no credit; only a
  credit return at that queue wakes the group. Packets of a group have identical destination
  sets, so when the lowest blocked source of a group fails in a cycle, all higher ones would fail
  too and are not examined (exact, and it keeps congested multicast cheap).

* **One flat function per phase.** Work that a stage schedules is staged in flat arrays and
  filed into the buckets after the stage (every scheduled cycle lies in the future, except the
  cycle-0 update SRAM requests, which are filed before that cycle's SRAM stage). Helpers are
  written inline: numba calls that pass arrays cost atomic reference counting per call. Every
  index is >= 0, and ``run_many`` is compiled without numba's negative-index wraparound
  (:func:`_without_wraparound`).

Two kernels
-----------
``run_many`` picks one per batch (both exact; ``tests/test_fast_kernel.py`` checks each against
the detailed engine):

* ``_phase_lean`` for **private SRAMs** (``sharing == 1``, the default chips). Nothing but the
  NoC and the credits is arbitrated, which allows three shortcuts, each exact under it:

  - *cores need no events*: a core is a FIFO server whose per-event service
    (``decode + ceil(reads/banks) + read_latency - 1 + cycles``) is a constant of the pair, so
    its pops follow from the entry cycles alone (``pop = max(entry, previous done)``), computed
    as each event enters (entries are granted in time order);
  - *credits are counted lazily*: a credit check that finds a queue at zero takes back the
    returns of cycles ``<= t`` (``pop + credit_latency``) first; a blocked group is woken by one
    ``WAKE`` event at its queue's next return (known, or the pop of the next event to enter),
    instead of one credit-return event per pop. When every packet of the phase has the same
    destinations (a linear op's), every queue has taken one credit per send, so all have a
    credit for send n (from 0) iff each has returned that of its event ``n - depth``: one global
    return time per n (the latest queue's), found once, replaces the per-queue counts;
  - *heads are ordered per router* (mesh): heads at different routers touch disjoint units in
    the same cycle, so a cycle's heads are filed per router (at most five per router: four
    links in and the local PE) and only each router's heads are put in rank order; the bus is
    one unit, so its heads are sorted as a whole.

  Counters that do not depend on timing (compute, events, MACs/ACs, SRAM reads) are summed once
  per run of packets that share their table rows (a linear op's packets all do); the core's
  service time of each row is computed once per batch; the end-of-phase update needs no
  arbitration either. When no queue gets more events in the phase than it has credits (most
  unicast ops), every send succeeds at its first try (T1, T2): source s sends its i-th packet in
  cycle i, so the sends are filed as heads at once, with no send events or credit checks.
  It is compiled in several copies, each with its mode's branches dropped (topology; every
  packet to every PE; every packet to one PE, whose XY route takes one link per router), and a
  batch runs its phases grouped by copy: phases are independent, and one copy's code then stays
  hot in the core's caches and branch predictors.
* ``_phase`` (general) for shared SRAMs, where a core must wait for its SRAM grant.

Pair tables are read where they lie: a mapping's batch points every packet into per-op cost
tables shared by all packets of an input channel (``pair_lo``); the lean kernel indexes pairs
by table row (the general one copies the phase's rows first); nothing is expanded to one row
per pair in memory.

``fault`` (0 in production) plants a deliberate bug, for the mutation tests: ``FAULT_*``.
"""

from __future__ import annotations

import functools
import os
import types

import numpy as np

_PURE = bool(globals().get("_HWSIM_PURE", False)) or os.environ.get(
    "HWSIM_DISABLE_NUMBA", "").strip() not in ("", "0")

BACKEND = "python"
if not _PURE:
    try:
        import numba as _numba

        BACKEND = "numba"
    except ImportError:  # pragma: no cover - numba is a dependency, but optional at run time
        _numba = None

if BACKEND == "numba":
    def njit(f):
        return _numba.njit(cache=True, nogil=True)(f)

    def njit_inline(f):
        # small helpers are inlined at numba-IR level: no call, no array reference counting
        return _numba.njit(cache=True, nogil=True, inline="always")(f)
else:
    def njit(f):
        return f

    njit_inline = njit

# Timing vector (hwsim.phase.Timing.as_array)
T_ROWS, T_COLS, T_TOPO, T_DEPTH, T_DECODE, T_BANKS, T_RLAT, T_SHARE, T_HOP, T_CLAT, T_BAR = range(11)
MESH, BUS = 0, 1

# Counter columns, in hwsim.phase.COUNTERS order (fast.py checks this).
C_COMPUTE, C_CONFLICT, C_NOC, C_BP, C_BARRIER, C_IDLE, C_EVENTS, C_MACS, C_ACS = range(9)
C_READS, C_WRITES, C_FLITS, C_HWM, C_SENT, C_CW, C_NEUR = range(9, 16)
N_COUNTERS = 16

# Planted faults for the mutation tests (tests/test_fast_kernel.py); 0 in production.
FAULT_NONE, FAULT_TIEBREAK, FAULT_CREDIT_EARLY, FAULT_SRAM_LATENCY, FAULT_PORT_FREE = range(5)

# Event classes (processing order within a cycle)
E_RET, E_HEAD, E_REQ, E_SRAM = 0, 1, 2, 3
NCLS = 4

# Per-PE state columns
P_CF, P_WAIT, P_SERVED, P_TOTAL, P_FH, P_FN, P_UST, P_DONE, P_PJ, P_NREC, P_NPOP, P_OFF, \
    P_ACTIVE, P_DIRTY = range(14)
NPF = 14

# Scalar state slots
S_FREE, S_RING, S_OVN, S_BUS, S_NCAND, S_NDIRTY = range(6)

DENSE_LIMIT = 1 << 22  # (packets x PEs) up to which the (packet, PE) -> pair table is dense


@njit_inline
def _ov_push(ov_t, ov_c, ov_v, ov_n, tt, cls, val):
    """Add (tt, cls, val) to the overflow min-heap (by cycle) of ov_n entries; return ov_n + 1."""
    x = ov_n
    while x > 0:
        par = (x - 1) >> 1
        if ov_t[par] <= tt:
            break
        ov_t[x] = ov_t[par]
        ov_c[x] = ov_c[par]
        ov_v[x] = ov_v[par]
        x = par
    ov_t[x] = tt
    ov_c[x] = cls
    ov_v[x] = val
    return ov_n + 1


@njit_inline
def _ov_pop(ov_t, ov_c, ov_v, ov_n):
    """Remove the root of the overflow min-heap (by cycle) of ov_n entries; return ov_n - 1."""
    ov_n -= 1
    if ov_n > 0:
        xt = ov_t[ov_n]
        xc = ov_c[ov_n]
        xv = ov_v[ov_n]
        i = 0
        while True:
            l = 2 * i + 1
            if l >= ov_n:
                break
            m = l
            if l + 1 < ov_n and ov_t[l + 1] < ov_t[l]:
                m = l + 1
            if ov_t[m] >= xt:
                break
            ov_t[i] = ov_t[m]
            ov_c[i] = ov_c[m]
            ov_v[i] = ov_v[m]
            i = m
        ov_t[i] = xt
        ov_c[i] = xc
        ov_v[i] = xv
    return ov_n


@njit
def _phase(tim, n_pe, kb, ke, dst_ptr, src, flits, dst, reads, cyc, macs, acs,
           ur, uw, uc, um, un, extra, out, ob,
           order, grp, cw, rmin, rmax, cmin, cmax, pair_of, pk_of_pair, rec_e, rec_p,
           sp_ptr, sp_end, head_t, inlist, nxt, gcache,
           g_fail, g_fsrc, g_wait, g_head, g_wnext,
           credits, dw_head, ps, fifo_e, fifo_j, link_free, port_free, sram_free,
           ev_val, ev_next, bh, bcnt, ov_t, ov_c, ov_v, st, tmp, cflag, dirty, mask,
           sg_t, sg_c, sg_v, ej_p, ej_j, prow, pcol, fault):
    """Simulate one phase (packets kb..ke-1 of the concatenated arrays); fill out[ob:ob+n_pe].

    Returns the phase's cycle count, or -1 if packets were left unsent (a bug guard)."""
    rows = tim[T_ROWS]
    cols = tim[T_COLS]
    topo = tim[T_TOPO]
    depth = tim[T_DEPTH]
    dec = tim[T_DECODE]
    banks = tim[T_BANKS]
    rl = tim[T_RLAT]
    if fault == FAULT_SRAM_LATENCY:
        rl += 1
    share = tim[T_SHARE]
    hop = tim[T_HOP]
    clat = tim[T_CLAT]
    bar = tim[T_BAR]
    K = ke - kb
    jb = dst_ptr[kb]
    # REQ payload: (packet rank << 16) + router, router n_pe = arrival by the bus
    dense = K * n_pe <= DENSE_LIMIT

    # ---- per-source packet lists in (source, k) order: order[rank] = local k -------------
    for s in range(n_pe):
        sp_end[s] = 0
    for kl in range(K):
        sp_end[src[kb + kl]] += 1
    acc = 0
    for s in range(n_pe):
        c = sp_end[s]
        sp_ptr[s] = acc
        sp_end[s] = acc
        acc += c
    for kl in range(K):
        s = src[kb + kl]
        pos = sp_end[s]
        order[pos] = kl
        sp_end[s] = pos + 1

    # ---- per-PE state --------------------------------------------------------------------
    for p in range(n_pe):
        for f in range(NPF):
            ps[p, f] = 0
        ps[p, P_PJ] = -1
        credits[p] = depth
        dw_head[p] = -1
        head_t[p] = 0
        inlist[p] = 0
        nxt[p] = -1
        port_free[p] = 0
        sram_free[p] = 0
        for d in range(4):
            link_free[p * 4 + d] = 0
    for j in range(dst_ptr[kb], dst_ptr[ke]):
        ps[dst[j], P_TOTAL] += 1
    acc = 0
    for p in range(n_pe):
        ps[p, P_OFF] = acc
        acc += ps[p, P_TOTAL]
        q = ob + p
        out[q, C_WRITES] = uw[p]
        out[q, C_NEUR] = un[p]
        out[q, C_MACS] = um[p]
        if ps[p, P_TOTAL] > 0 or uc[p] > 0 or ur[p] > 0:
            ps[p, P_ACTIVE] = 1

    # ---- per-packet tables: pair lookup, XY tree extents, destination-set groups ---------
    ng = 0
    ncache = 0
    for kl in range(K):
        k = kb + kl
        j0 = dst_ptr[k]
        j1 = dst_ptr[k + 1]
        if topo == MESH:
            cmin[kl] = cols
            cmax[kl] = -1
            for c in range(cols):
                rmin[kl * cols + c] = rows
                rmax[kl * cols + c] = -1
        for j in range(j0, j1):
            d = dst[j]
            pk_of_pair[j - jb] = kl
            if dense:
                pair_of[kl * n_pe + d] = j - jb
            if topo == MESH:
                rr = d // cols
                cc = d - rr * cols
                if cc < cmin[kl]:
                    cmin[kl] = cc
                if cc > cmax[kl]:
                    cmax[kl] = cc
                if rr < rmin[kl * cols + cc]:
                    rmin[kl * cols + cc] = rr
                if rr > rmax[kl * cols + cc]:
                    rmax[kl * cols + cc] = rr
        # group = identical destination set (checked exactly against a few recent groups)
        found = -1
        for ci in range(ncache):
            rep = gcache[ci]
            r0 = dst_ptr[kb + rep]
            if dst_ptr[kb + rep + 1] - r0 != j1 - j0:
                continue
            same = True
            for x in range(j1 - j0):
                if dst[r0 + x] != dst[j0 + x]:
                    same = False
                    break
            if same:
                found = grp[rep]
                break
        if found < 0:
            found = ng
            ng += 1
            g_fail[found] = -1
            g_fsrc[found] = -1
            g_wait[found] = -1
            g_head[found] = -1
            g_wnext[found] = -1
            if ncache < gcache.shape[0]:
                gcache[ncache] = kl
                ncache += 1
            else:
                gcache[found % gcache.shape[0]] = kl
        grp[kl] = found

    # ---- cycle 0: every source with packets tries; every PE is examined once -------------
    free_head = st[S_FREE]
    ring_n = 0
    ov_n = 0
    bus_free = 0
    nsg = 0  # events staged by the current stage, filed into the buckets after it
    ncand = 0
    cfirst = n_pe
    for s in range(n_pe):
        cflag[s] = 0
        if sp_ptr[s] < sp_end[s]:
            cflag[s] = 1
            ncand += 1
            if s < cfirst:
                cfirst = s
        ps[s, P_DIRTY] = 1
        dirty[s] = s
    ndirty = n_pe

    cur = 0
    first = True
    while True:
        if first:
            first = False
        else:
            # jump to the next non-empty cycle, filing overflow work that comes into range
            t = cur + 1
            while True:
                if ring_n == 0:
                    if ov_n == 0:
                        t = -1
                        break
                    if ov_t[0] > t:
                        t = ov_t[0]
                while ov_n > 0 and ov_t[0] - t <= mask:
                    tt = ov_t[0]
                    b = (tt & mask) * NCLS + ov_c[0]
                    e = free_head
                    free_head = ev_next[e]
                    ev_val[e] = ov_v[0]
                    ev_next[e] = bh[b]
                    bh[b] = e
                    bcnt[tt & mask] += 1
                    ring_n += 1
                    ov_n = _ov_pop(ov_t, ov_c, ov_v, ov_n)
                if bcnt[t & mask] > 0:
                    break
                t += 1
            if t < 0:
                break
            cur = t
        t = cur
        slot = t & mask
        base = slot * NCLS

        for stage in range(5):
            if stage == 0:
                # -- class 0: credit returns, waking the groups that wait on that queue -------
                e = bh[base + E_RET]
                bh[base + E_RET] = -1
                while e >= 0:
                    d = ev_val[e]
                    en = ev_next[e]
                    ev_next[e] = free_head
                    free_head = e
                    bcnt[slot] -= 1
                    ring_n -= 1
                    credits[d] += 1
                    G = dw_head[d]
                    while G >= 0:
                        g_wait[G] = -1
                        h = g_head[G]
                        cflag[h] = 1
                        ncand += 1
                        if h < cfirst:
                            cfirst = h
                        G = g_wnext[G]
                    dw_head[d] = -1
                    e = en
                # -- class 1: new head packets --------------------------------------------------
                e = bh[base + E_HEAD]
                bh[base + E_HEAD] = -1
                while e >= 0:
                    h = ev_val[e]
                    cflag[h] = 1
                    ncand += 1
                    if h < cfirst:
                        cfirst = h
                    en = ev_next[e]
                    ev_next[e] = free_head
                    free_head = e
                    bcnt[slot] -= 1
                    ring_n -= 1
                    e = en
                # -- sends, in increasing source index (T1, T2) ---------------------------------
                s = cfirst
                while ncand > 0:
                    while cflag[s] == 0:
                        s += 1
                    cflag[s] = 0
                    ncand -= 1
                    pos = sp_ptr[s]
                    kl = order[pos]
                    k = kb + kl
                    G = grp[kl]
                    j0 = dst_ptr[k]
                    j1 = dst_ptr[k + 1]
                    if g_fail[G] == t and g_fsrc[G] < s:
                        ok = False  # a lower source with the same destinations failed
                    elif inlist[s] == 0 and g_wait[G] >= 0:
                        ok = False  # the group waits on a queue that still has no credit
                    else:
                        fail = -1
                        for j in range(j0, j1):
                            if credits[dst[j]] == 0:
                                fail = dst[j]
                                break
                        if fail >= 0:
                            ok = False
                            g_fail[G] = t
                            g_fsrc[G] = s
                            if g_wait[G] < 0:
                                g_wait[G] = fail
                                g_wnext[G] = dw_head[fail]
                                dw_head[fail] = G
                        else:
                            ok = True
                            for j in range(j0, j1):
                                credits[dst[j]] -= 1
                    if not ok:
                        if inlist[s] == 0:
                            # into the group's blocked list, sorted by source index
                            h = g_head[G]
                            if h < 0 or s < h:
                                nxt[s] = h
                                g_head[G] = s
                            else:
                                prev = h
                                while nxt[prev] >= 0 and nxt[prev] < s:
                                    prev = nxt[prev]
                                nxt[s] = nxt[prev]
                                nxt[prev] = s
                            inlist[s] = 1
                        continue
                    if inlist[s] == 1:
                        # s was its group's lowest blocked source: the next one tries now
                        h = nxt[s]
                        g_head[G] = h
                        inlist[s] = 0
                        if h >= 0:
                            cflag[h] = 1
                            ncand += 1
                    w = t - head_t[s]
                    cw[kl] = w
                    out[ob + s, C_CW] += w
                    out[ob + s, C_SENT] += 1
                    if j1 > j0:
                        sg_t[nsg] = t + 1
                        sg_c[nsg] = E_REQ
                        sg_v[nsg] = (pos << 16) + s
                        nsg += 1
                    sp_ptr[s] = pos + 1
                    if pos + 1 < sp_end[s]:
                        head_t[s] = t + 1
                        sg_t[nsg] = t + 1
                        sg_c[nsg] = E_HEAD
                        sg_v[nsg] = s
                        nsg += 1
                cfirst = n_pe

            elif stage == 1 or stage == 3:
                # -- gather class 2 (heads at routers / bus) or class 3 (SRAM requests), sorted
                cls = E_REQ if stage == 1 else E_SRAM
                e = bh[base + cls]
                if e < 0:
                    continue
                bh[base + cls] = -1
                n = 0
                while e >= 0:
                    tmp[n] = ev_val[e]
                    n += 1
                    en = ev_next[e]
                    ev_next[e] = free_head
                    free_head = e
                    e = en
                bcnt[slot] -= n
                ring_n -= n
                if n > 48:
                    tmp[:n] = np.sort(tmp[:n])
                else:
                    for i in range(1, n):
                        x = tmp[i]
                        j = i - 1
                        while j >= 0 and tmp[j] > x:
                            tmp[j + 1] = tmp[j]
                            j -= 1
                        tmp[j + 1] = x
                if stage == 1:
                    # links, bus and ejection ports (T3, T4), in (source, k) rank order
                    for i in range(n):
                        v = tmp[i]
                        pos = v >> 16
                        r = v & 0xFFFF
                        kl = order[pos]
                        k = kb + kl
                        s = src[k]
                        f = flits[k]
                        j0 = dst_ptr[k]
                        j1 = dst_ptr[k + 1]
                        nej = 0
                        if topo == MESH:
                            rr = prow[r]
                            rc = pcol[r]
                            sr = prow[s]
                            sc = pcol[s]
                            # outgoing links of the XY multicast tree at router r: E, W, N, S
                            for dr in range(4):
                                if dr == 0:
                                    go = rr == sr and rc >= sc and cmax[kl] > rc
                                    nb = r + 1
                                elif dr == 1:
                                    go = rr == sr and rc <= sc and cmin[kl] < rc
                                    nb = r - 1
                                elif dr == 2:
                                    go = rr <= sr and rmin[kl * cols + rc] < rr
                                    nb = r - cols
                                else:
                                    go = rr >= sr and rmax[kl * cols + rc] > rr
                                    nb = r + cols
                                if go:
                                    lid = r * 4 + dr
                                    g = link_free[lid]
                                    if g < t:
                                        g = t
                                    link_free[lid] = g + f
                                    out[ob + s, C_FLITS] += f
                                    sg_t[nsg] = g + hop
                                    sg_c[nsg] = E_REQ
                                    sg_v[nsg] = (pos << 16) + nb
                                    nsg += 1
                            # is router r's PE a destination?
                            if dense:
                                jl = pair_of[kl * n_pe + r]
                            else:
                                lo = j0
                                hi = j1
                                while lo < hi:
                                    mid = (lo + hi) >> 1
                                    if dst[mid] < r:
                                        lo = mid + 1
                                    else:
                                        hi = mid
                                jl = lo - jb if lo < j1 and dst[lo] == r else -1
                            if jl >= 0:
                                ej_p[0] = r
                                ej_j[0] = jl
                                nej = 1
                        elif r == s:
                            # sent last cycle: the source's own PE ejects, the rest takes the bus
                            others = False
                            for j in range(j0, j1):
                                if dst[j] == s:
                                    ej_p[nej] = s
                                    ej_j[nej] = j - jb
                                    nej += 1
                                else:
                                    others = True
                            if others:
                                g = bus_free
                                if g < t:
                                    g = t
                                bus_free = g + f
                                out[ob + s, C_FLITS] += f
                                sg_t[nsg] = g + hop
                                sg_c[nsg] = E_REQ
                                sg_v[nsg] = (pos << 16) + n_pe
                                nsg += 1
                        else:
                            for j in range(j0, j1):
                                d = dst[j]
                                if d != s:
                                    ej_p[nej] = d
                                    ej_j[nej] = j - jb
                                    nej += 1
                        # ejection ports: granted at g, the event enters the queue at g + flits
                        for x in range(nej):
                            p = ej_p[x]
                            g = port_free[p]
                            if g < t:
                                g = t
                            en_t = g + f
                            port_free[p] = en_t
                            idx = ps[p, P_FH] + ps[p, P_FN]
                            if idx >= depth:
                                idx -= depth
                            idx += p * depth
                            fifo_e[idx] = en_t
                            fifo_j[idx] = ej_j[x]
                            ps[p, P_FN] += 1
                            rec_e[ps[p, P_OFF] + ps[p, P_NREC]] = en_t
                            ps[p, P_NREC] += 1
                            if ps[p, P_DIRTY] == 0:
                                ps[p, P_DIRTY] = 1
                                dirty[ndirty] = p
                                ndirty += 1
                else:
                    # shared SRAMs (T3): (request cycle, PE) order
                    for i in range(n):
                        p = tmp[i]
                        jl = ps[p, P_PJ]
                        if jl >= 0:
                            rd = reads[jb + jl]
                            cy = cyc[jb + jl]
                        else:
                            rd = ur[p]
                            cy = uc[p]
                        busy = (rd + banks - 1) // banks
                        sid = p // share
                        g = sram_free[sid]
                        if g < t:
                            g = t
                        sram_free[sid] = g + busy
                        out[ob + p, C_CONFLICT] += g - t
                        tdone = g + busy + rl - 1 + cy
                        ps[p, P_WAIT] = 0
                        if jl >= 0:
                            ps[p, P_CF] = tdone
                            ps[p, P_SERVED] += 1
                            if ps[p, P_DIRTY] == 0:
                                ps[p, P_DIRTY] = 1
                                dirty[ndirty] = p
                                ndirty += 1
                        else:
                            ps[p, P_DONE] = tdone
                            ps[p, P_UST] = 2

            else:
                # -- cores (T5) and end-of-phase updates (T6) of the PEs that changed -----------
                for di in range(ndirty):
                    p = dirty[di]
                    ps[p, P_DIRTY] = 0
                    q = ob + p
                    while ps[p, P_WAIT] == 0:
                        if ps[p, P_FN] == 0:
                            if ps[p, P_SERVED] == ps[p, P_TOTAL] and ps[p, P_UST] == 0:
                                tu = ps[p, P_CF]
                                rd = ur[p]
                                cy = uc[p]
                                ps[p, P_UST] = 2
                                if rd > 0:
                                    busy = (rd + banks - 1) // banks
                                    out[q, C_COMPUTE] += busy + rl - 1 + cy
                                    out[q, C_READS] += rd
                                    if share == 1:
                                        ps[p, P_DONE] = tu + busy + rl - 1 + cy
                                    else:
                                        ps[p, P_UST] = 1
                                        ps[p, P_PJ] = -1
                                        ps[p, P_WAIT] = 1
                                        sg_t[nsg] = tu
                                        sg_c[nsg] = E_SRAM
                                        sg_v[nsg] = p
                                        nsg += 1
                                else:
                                    out[q, C_COMPUTE] += cy
                                    ps[p, P_DONE] = tu + cy
                            break
                        # pop the head of the input queue
                        idx = p * depth + ps[p, P_FH]
                        en_t = fifo_e[idx]
                        jl = fifo_j[idx]
                        fh = ps[p, P_FH] + 1
                        ps[p, P_FH] = 0 if fh == depth else fh
                        ps[p, P_FN] -= 1
                        cf = ps[p, P_CF]
                        pop = en_t if en_t > cf else cf
                        wait = pop - cf
                        bp = cw[pk_of_pair[jl]]
                        if bp > wait:
                            bp = wait
                        out[q, C_BP] += bp
                        out[q, C_NOC] += wait - bp
                        rec_p[ps[p, P_OFF] + ps[p, P_NPOP]] = pop
                        ps[p, P_NPOP] += 1
                        sg_t[nsg] = pop + clat
                        sg_c[nsg] = E_RET
                        sg_v[nsg] = p
                        nsg += 1
                        j = jb + jl
                        rd = reads[j]
                        cy = cyc[j]
                        out[q, C_EVENTS] += 1
                        out[q, C_MACS] += macs[j]
                        out[q, C_ACS] += acs[j]
                        t1 = pop + dec
                        if rd > 0:
                            busy = (rd + banks - 1) // banks
                            out[q, C_READS] += rd
                            out[q, C_COMPUTE] += dec + busy + rl - 1 + cy
                            if share == 1:
                                ps[p, P_CF] = t1 + busy + rl - 1 + cy
                                ps[p, P_SERVED] += 1
                            else:
                                ps[p, P_PJ] = jl
                                ps[p, P_WAIT] = 1
                                sg_t[nsg] = t1
                                sg_c[nsg] = E_SRAM
                                sg_v[nsg] = p
                                nsg += 1
                        else:
                            out[q, C_COMPUTE] += dec + cy
                            ps[p, P_CF] = t1 + cy
                            ps[p, P_SERVED] += 1
                ndirty = 0

            # -- file the staged events: bucket ring, or overflow heap when beyond the ring ----
            for i in range(nsg):
                tt = sg_t[i]
                if tt - cur > mask:
                    ov_n = _ov_push(ov_t, ov_c, ov_v, ov_n, tt, sg_c[i], sg_v[i])
                else:
                    b = (tt & mask) * NCLS + sg_c[i]
                    e = free_head
                    free_head = ev_next[e]
                    ev_val[e] = sg_v[i]
                    ev_next[e] = bh[b]
                    bh[b] = e
                    bcnt[tt & mask] += 1
                    ring_n += 1
            nsg = 0
    st[S_FREE] = free_head

    # ---- barrier (T7) and the per-PE classes ---------------------------------------------
    ok = True
    for s in range(n_pe):
        if sp_ptr[s] != sp_end[s]:
            ok = False
    maxdone = 0
    for p in range(n_pe):
        if ps[p, P_ACTIVE] == 1:
            if ps[p, P_UST] != 2 or ps[p, P_SERVED] != ps[p, P_TOTAL]:
                ok = False
            if ps[p, P_DONE] > maxdone:
                maxdone = ps[p, P_DONE]
    pc = maxdone + bar + extra
    for p in range(n_pe):
        q = ob + p
        if ps[p, P_ACTIVE] == 1:
            out[q, C_BARRIER] = pc - ps[p, P_DONE]
        else:
            out[q, C_IDLE] = pc
        # queue high-water mark: occupancy at each entry, pops of that cycle not yet removed
        off = ps[p, P_OFF]
        i = 0
        best = 0
        for m in range(ps[p, P_TOTAL]):
            en_t = rec_e[off + m]
            while rec_p[off + i] < en_t:
                i += 1
            if m + 1 - i > best:
                best = m + 1 - i
        out[q, C_HWM] = best
    if dense:
        for j in range(dst_ptr[kb], dst_ptr[ke]):
            pair_of[pk_of_pair[j - jb] * n_pe + dst[j]] = -1
    if not ok:
        return -1
    return pc


# ============================================================================================
# The lean kernel: private SRAMs (sharing == 1), both topologies
# ============================================================================================
# With one PE per SRAM nothing but the NoC and the credits is arbitrated, and a core is a plain
# FIFO server: an event's pop is max(entry, core free) and its service a per-pair constant,
# both known the moment its ejection is granted. So the only work kept in the bucket queue is
#   class 0  WAKE  the next credit return of a queue that a blocked source group waits on,
#   class 1  HEAD  a source's next packet reaching the head of its generator,
#   class 2  REQ   a packet's head at a router (or arriving by the bus),
# and credits are counted lazily: every entry appends its entry and pop cycles to its queue's
# lists, and a credit check that sees no credit first takes back the returns of cycles <= t.
# (fault flags: see FAULT_* at the top)
L_WAKE, L_HEAD, L_REQ = 0, 1, 2
LCLS = 3
WHEEL = 32  # heads due within this many cycles skip the buckets' lists (a power of two)
# Per-PE state of the lean kernel, one row of LNF words per PE (ps[p * LNF + F_...]):
# ejection port free-at, events entered, offset of the PE's events in ents and pops, core
# free-at, credits back / available, a WAKE pending at (or -1), waiting for the next entry, head
# of the blocked groups' list, events in total, the sums of the core's waits and of their
# back-pressure part, the router's row and column, and the free-at of its four links (east, west,
# north, south).
F_PORT, F_NREC, F_OFF, F_CF, F_NRET, F_CRED, F_WAKE, F_NEEDW, F_DW, F_TOT, F_WS, F_BS, F_ROW, \
    F_COL, F_LINK = range(15)
LNF = F_LINK + 4
# Per packet rank (ps order): source, flits, pair range, group, source column, credit_wait,
# and its group's XY tree column extents and router -> pair table (copied from gr, so that a
# head reads one record).
RK_S, RK_F, RK_J0, RK_J1, RK_G, RK_SC, RK_CW, RK_CMIN, RK_CMAX, RK_TAB = range(10)
RKF = 10
# Per destination-set group: XY tree column extents, router -> pair table.
GR_CMIN, GR_CMAX, GR_TAB = range(3)
GRF = 4


# The lean kernel is compiled once per topology, and on the mesh twice more: for phases whose
# packets all go to every PE (a linear op's) and for phases whose packets all go to one PE (an
# elementwise op's): each copy (near the end of this module) sees its own _LEAN_MESH, _LEAN_FULL
# and _LEAN_UNI as constants, and numba drops the branches that cannot run there (measured on
# pe64: 5-6 % of the kernel's time for the topology, 7-9 % of broadcast phases', 15-19 % of
# one-destination phases').
_LEAN_MESH = True
_LEAN_FULL = False
_LEAN_UNI = False


@njit_inline
def _lpush(tt, cls, val, cur, mask, bh, bcnt, ev_val, ev_next, ov_t, ov_c, ov_v, nev, ov_n):
    """File event (tt, cls, val), tt > cur, in the ring or the overflow heap."""
    if tt - cur > mask:
        return nev, _ov_push(ov_t, ov_c, ov_v, ov_n, tt, cls, val), 0
    b = (tt & mask) * LCLS + cls
    ev_val[nev] = val
    ev_next[nev] = bh[b]
    bh[b] = nev
    bcnt[tt & mask] += 1
    return nev + 1, ov_n, 1


@njit_inline
def _rpush(tt, val, t, mask, wh, wn, nn, bh, bcnt, ev_val, ev_next, ov_t, ov_c, ov_v, nev, ov_n):
    """File a head at a router (class REQ) for cycle tt > t: the next WHEEL - 1 cycles' heads
    are appended to flat arrays (cycle tt's: ``wh`` from ``wn[tt % WHEEL]`` on; the next
    cycle's, most of them, from ``nn`` on, a register), later ones to the bucket's list.
    Returns (nev, ov_n, nn, number filed in the ring)."""
    if tt == t + 1:
        wh[nn] = val
        bcnt[tt & mask] += 1
        return nev, ov_n, nn + 1, 1
    if tt - t < WHEEL:
        w = tt & (WHEEL - 1)
        wh[wn[w]] = val
        wn[w] += 1
        bcnt[tt & mask] += 1
        return nev, ov_n, nn, 1
    nev, ov_n, x = _lpush(tt, L_REQ, val, t, mask, bh, bcnt, ev_val, ev_next, ov_t, ov_c, ov_v,
                          nev, ov_n)
    return nev, ov_n, nn, x


@njit_inline
def _read_time(rd, banks, rlx, busy_tab, nbt):
    """Private-SRAM read of rd > 0 words: ceil(rd / banks) busy cycles, plus the latency
    beyond the first cycle (rlx = read_latency - 1); small rd from a precomputed table."""
    if rd < nbt:
        return busy_tab[rd] + rlx
    return (rd + banks - 1) // banks + rlx


@njit
def _phase_lean(tim, n_pe, kb, ke, dst_ptr, src, flits, plo, dst, reads, cyc, macs, acs, svt,
                rlx, ur, uw, uc, um, un, extra, out, ob, fault,
                scratch, mask):
    """One phase with private SRAMs; same contract as :func:`_phase`, except that the pair
    arrays are the shared tables (``dst``, ``reads`` .. ``acs``, and ``svt``, the core's service
    time of each row): packet k's pairs are rows ``plo[k]``.. ``plo[k] + dst_ptr[k+1] - dst_ptr[k]``,
    and every pair index below is a table row. ``rlx``: SRAM read latency - 1 (as in ``svt``)."""
    (order, grp, ents, pops, sp_ptr, sp_end, head_t, inlist, nxt, gcache, g_one, g_fail, g_fsrc,
     g_wait, g_head, g_wnext, gr, g_rm, rk, pool, ps, ev_val, ev_next, bh, bcnt, ov_t, ov_c,
     ov_v, wh, wn, tmp2, lnext, rhead, touched, cflag, stamp, prc, busy_tab, gret, garg) = scratch
    rows = tim[T_ROWS]
    cols = tim[T_COLS]
    depth = tim[T_DEPTH]
    banks = tim[T_BANKS]
    hop = tim[T_HOP]
    clat = tim[T_CLAT]
    bar = tim[T_BAR]
    if fault == FAULT_CREDIT_EARLY:
        clat -= 1
    K = ke - kb
    nbt = busy_tab.shape[0]

    # ---- per-source packet lists in (source, k) order: order[rank] = local k -------------
    for s in range(n_pe):
        sp_end[s] = 0
    for kl in range(K):
        sp_end[src[kb + kl]] += 1
    acc = 0
    for s in range(n_pe):
        c = sp_end[s]
        sp_ptr[s] = acc
        sp_end[s] = acc
        acc += c
    for kl in range(K):
        s = src[kb + kl]
        pos = sp_end[s]
        order[pos] = kl
        sp_end[s] = pos + 1

    # ---- per-PE state --------------------------------------------------------------------
    for p in range(n_pe):
        b = p * LNF
        for x in range(LNF):
            ps[b + x] = 0
        ps[b + F_CRED] = depth
        ps[b + F_WAKE] = -1
        ps[b + F_DW] = -1
        ps[b + F_ROW] = prc[2 * p]
        ps[b + F_COL] = prc[2 * p + 1]
        head_t[p] = 0
        inlist[p] = 0
        nxt[p] = -1
        stamp[p] = -1
        g_one[p] = -1
        q = ob + p
        out[q, C_WRITES] = uw[p]
        out[q, C_NEUR] = un[p]
        out[q, C_MACS] = um[p]

    # ---- the timing-independent counters, per run of packets on the same table rows -------
    # (all packets of a linear op share their rows: one pass over the rows, times the run)
    r0 = -1
    L0 = 0
    m = 0
    for kl in range(K + 1):
        if kl < K:
            r1 = plo[kl]
            L1 = dst_ptr[kb + kl + 1] - dst_ptr[kb + kl]
            if r1 == r0 and L1 == L0:
                m += 1
                continue
        for r in range(r0, r0 + L0 if m > 0 else r0):
            d = dst[r]
            ps[d * LNF + F_TOT] += m
            q = ob + d
            out[q, C_READS] += m * reads[r]
            out[q, C_COMPUTE] += m * svt[r]
            out[q, C_EVENTS] += m
            out[q, C_MACS] += m * macs[r]
            out[q, C_ACS] += m * acs[r]
        if kl < K:
            r0 = r1
            L0 = L1
            m = 1
    acc = 0
    for p in range(n_pe):
        ps[p * LNF + F_OFF] = acc
        acc += ps[p * LNF + F_TOT]

    # ---- destination-set groups: XY tree extents and a router -> pair table ---------------
    ng = 0
    ncache = 0
    npool = 0
    for kl in range(K):
        k = kb + kl
        j0 = plo[kl]
        L = dst_ptr[k + 1] - dst_ptr[k]
        j1 = j0 + L
        found = -1
        if L == 1:
            found = g_one[dst[j0]]  # one destination: its group, if it has one yet
        else:
            for ci in range(ncache):
                rep = gcache[ci]
                r0 = plo[rep]
                if dst_ptr[kb + rep + 1] - dst_ptr[kb + rep] != L:
                    continue
                if r0 == j0:
                    found = grp[rep]
                    break
                same = True
                for x in range(L):
                    if dst[r0 + x] != dst[j0 + x]:
                        same = False
                        break
                if same:
                    found = grp[rep]
                    break
        if found < 0:
            found = ng
            ng += 1
            g_fail[found] = -1
            g_fsrc[found] = -1
            g_wait[found] = -1
            g_head[found] = -1
            g_wnext[found] = -1
            if _LEAN_MESH:
                cmn = cols
                cmx = -1
                gb = found * cols
                for c in range(cols):
                    g_rm[2 * (gb + c)] = rows
                    g_rm[2 * (gb + c) + 1] = -1
                for j in range(j0, j1):
                    d = dst[j]
                    rr = prc[2 * d]
                    cc = prc[2 * d + 1]
                    if cc < cmn:
                        cmn = cc
                    if cc > cmx:
                        cmx = cc
                    if rr < g_rm[2 * (gb + cc)]:
                        g_rm[2 * (gb + cc)] = rr
                    if rr > g_rm[2 * (gb + cc) + 1]:
                        g_rm[2 * (gb + cc) + 1] = rr
                gr[found * GRF + GR_CMIN] = cmn
                gr[found * GRF + GR_CMAX] = cmx
                gr[found * GRF + GR_TAB] = -1
                if L > 8 and npool + n_pe <= pool.shape[0]:
                    gr[found * GRF + GR_TAB] = npool
                    for p in range(n_pe):
                        pool[npool + p] = -1
                    for x in range(L):
                        pool[npool + dst[j0 + x]] = x
                    npool += n_pe
            if L == 1:
                g_one[dst[j0]] = found
            elif ncache < gcache.shape[0]:
                gcache[ncache] = kl
                ncache += 1
            else:
                gcache[found % gcache.shape[0]] = kl
        grp[kl] = found
    one = ng == 1  # every packet has the same destinations
    if one:
        for x in range(K):
            gret[x] = -1
    # one record per packet rank (source, k order): what the sends and the heads read
    for pos in range(K):
        kl = order[pos]
        k = kb + kl
        b = pos * RKF
        s = src[k]
        rk[b + RK_S] = s
        rk[b + RK_F] = flits[k]
        rk[b + RK_J0] = plo[kl]
        rk[b + RK_J1] = plo[kl] + dst_ptr[k + 1] - dst_ptr[k]
        rk[b + RK_G] = grp[kl]
        rk[b + RK_SC] = prc[2 * s + 1]
        rk[b + RK_CW] = 0
        G = grp[kl]
        rk[b + RK_CMIN] = gr[G * GRF + GR_CMIN]
        rk[b + RK_CMAX] = gr[G * GRF + GR_CMAX]
        rk[b + RK_TAB] = gr[G * GRF + GR_TAB]
        if _LEAN_UNI:
            rk[b + RK_TAB] = dst[plo[kl]]  # (one destination: the head reads it here)
        out[ob + s, C_SENT] += 1
        if _LEAN_MESH and gr[G * GRF + GR_CMAX] >= 0:
            # flit-hops do not depend on timing: flits x the links of the packet's XY tree (T4)
            sr = prc[2 * s]
            sc = prc[2 * s + 1]
            c0 = gr[G * GRF + GR_CMIN]
            c1 = gr[G * GRF + GR_CMAX]
            nl = (c1 if c1 > sc else sc) - (c0 if c0 < sc else sc)
            gb = 2 * G * cols
            for c in range(c0, c1 + 1):
                r1 = g_rm[gb + 2 * c + 1]
                if r1 >= 0:
                    r0 = g_rm[gb + 2 * c]
                    nl += (r1 if r1 > sr else sr) - (r0 if r0 < sr else sr)
            out[ob + s, C_FLITS] += nl * flits[k]

    # ---- the time-ordered loop -----------------------------------------------------------
    nev = 0
    ring_n = 0
    ov_n = 0
    bus_free = 0
    ncand = 0
    nsent = 0
    cfirst = n_pe
    wcap = wh.shape[0] // WHEEL  # (heads of one cycle: at most five per router)
    for w in range(WHEEL):
        wn[w] = w * wcap
    nn = wn[1]
    unblocked = True
    for p in range(n_pe):
        if ps[p * LNF + F_TOT] > depth:
            unblocked = False
    for s in range(n_pe):
        cflag[s] = 0
        if sp_ptr[s] < sp_end[s]:
            if unblocked:
                # no queue gets more events than it has credits: every send succeeds at its
                # first try, so source s sends its i-th packet in cycle i (T1), without events
                for pos in range(sp_ptr[s], sp_end[s]):
                    if rk[pos * RKF + RK_J1] > rk[pos * RKF + RK_J0]:
                        nev, ov_n, nn, x = _rpush(pos - sp_ptr[s] + 1, (pos << 18) + s, 0, mask,
                                                  wh, wn, nn, bh, bcnt, ev_val, ev_next, ov_t,
                                                  ov_c, ov_v, nev, ov_n)
                        ring_n += x
                sp_ptr[s] = sp_end[s]
                continue
            cflag[s] = 1
            ncand += 1
            if s < cfirst:
                cfirst = s
    wn[1] = nn
    t = 0
    while True:
        nn = wn[(t + 1) & (WHEEL - 1)]  # the next cycle's heads so far (committed below)
        slot = t & mask
        base = slot * LCLS
        # -- class 0: a credit returns to a queue that blocked groups wait on -----------------
        e = bh[base + L_WAKE]
        if e >= 0:
            bh[base + L_WAKE] = -1
            while e >= 0:
                d = ev_val[e]
                bcnt[slot] -= 1
                ring_n -= 1
                pd = d * LNF
                ps[pd + F_WAKE] = -1
                G = ps[pd + F_DW]
                while G >= 0:
                    g_wait[G] = -1
                    h = g_head[G]
                    cflag[h] = 1
                    ncand += 1
                    if h < cfirst:
                        cfirst = h
                    G = g_wnext[G]
                ps[pd + F_DW] = -1
                e = ev_next[e]
        # -- class 1: new head packets --------------------------------------------------------
        e = bh[base + L_HEAD]
        if e >= 0:
            bh[base + L_HEAD] = -1
            while e >= 0:
                h = ev_val[e]
                cflag[h] = 1
                ncand += 1
                if h < cfirst:
                    cfirst = h
                bcnt[slot] -= 1
                ring_n -= 1
                e = ev_next[e]
        # -- sends, in increasing source index (T1, T2) ---------------------------------------
        s = cfirst
        while ncand > 0:
            while cflag[s] == 0:
                s += 1
            cflag[s] = 0
            ncand -= 1
            pos = sp_ptr[s]
            b = pos * RKF
            G = rk[b + RK_G]
            j0 = rk[b + RK_J0]
            j1 = rk[b + RK_J1]
            if g_fail[G] == t and g_fsrc[G] < s:
                ok = False  # a lower source with the same destinations failed
            elif inlist[s] == 0 and g_wait[G] >= 0:
                ok = False  # the group waits on a queue that still has no credit
            else:
                fail = -1
                if one:
                    m = nsent - depth
                    if m >= 0:
                        # every packet goes to every queue of the one destination set, so all
                        # have a credit iff each has returned the credit of its event m: at the
                        # m-th global return, the latest of those, found once per m
                        cm = gret[m]
                        if cm < 0:
                            late = -1
                            for j in range(j0, j1):
                                d = dst[j]
                                pd = d * LNF
                                if ps[pd + F_NREC] <= m:
                                    fail = d  # its event m has not entered yet
                                    break
                                x = pops[ps[pd + F_OFF] + m]
                                if x > late:
                                    late = x
                                    garg[m] = d
                            if fail < 0:
                                cm = late + clat
                                gret[m] = cm
                        if fail < 0 and cm > t:
                            fail = garg[m]
                        if fail >= 0:
                            ps[fail * LNF + F_NRET] = m  # the return the group waits for
                else:
                    for j in range(j0, j1):
                        pd = dst[j] * LNF
                        if ps[pd + F_CRED] == 0:
                            # take back the credits returned by cycle t
                            nret = ps[pd + F_NRET]
                            nrec = ps[pd + F_NREC]
                            o = ps[pd + F_OFF]
                            c = 0
                            while nret < nrec and pops[o + nret] + clat <= t:
                                nret += 1
                                c += 1
                            ps[pd + F_NRET] = nret
                            ps[pd + F_CRED] = c
                            if c == 0:
                                fail = dst[j]
                                # give back the credits taken from the queues before this one
                                for j2 in range(j0, j):
                                    ps[dst[j2] * LNF + F_CRED] += 1
                                break
                        ps[pd + F_CRED] -= 1  # taken now: given back if a later queue has none
                if fail >= 0:
                    ok = False
                    g_fail[G] = t
                    g_fsrc[G] = s
                    if g_wait[G] < 0:
                        pd = fail * LNF
                        g_wait[G] = fail
                        g_wnext[G] = ps[pd + F_DW]
                        ps[pd + F_DW] = G
                        if ps[pd + F_WAKE] < 0 and ps[pd + F_NEEDW] == 0:
                            nret = ps[pd + F_NRET]
                            if nret < ps[pd + F_NREC]:
                                # its next return is known (that event has entered)
                                tt = pops[ps[pd + F_OFF] + nret] + clat
                                ps[pd + F_WAKE] = tt
                                nev, ov_n, x = _lpush(tt, L_WAKE, fail, t, mask, bh, bcnt,
                                                      ev_val, ev_next, ov_t, ov_c, ov_v,
                                                      nev, ov_n)
                                ring_n += x
                            else:
                                ps[pd + F_NEEDW] = 1
                else:
                    ok = True
            if not ok:
                if inlist[s] == 0:
                    # into the group's blocked list, sorted by source index
                    h = g_head[G]
                    if h < 0 or s < h:
                        nxt[s] = h
                        g_head[G] = s
                    else:
                        prev = h
                        while nxt[prev] >= 0 and nxt[prev] < s:
                            prev = nxt[prev]
                        nxt[s] = nxt[prev]
                        nxt[prev] = s
                    inlist[s] = 1
                continue
            if inlist[s] == 1:
                # s was its group's lowest blocked source: the next one tries now
                h = nxt[s]
                g_head[G] = h
                inlist[s] = 0
                if h >= 0:
                    cflag[h] = 1
                    ncand += 1
            rk[b + RK_CW] = t - head_t[s]
            nsent += 1
            if j1 > j0:
                nev, ov_n, nn, x = _rpush(t + 1, (pos << 18) + s, t, mask, wh, wn, nn, bh, bcnt,
                                          ev_val, ev_next, ov_t, ov_c, ov_v, nev, ov_n)
                ring_n += x
            sp_ptr[s] = pos + 1
            if pos + 1 < sp_end[s]:
                head_t[s] = t + 1
                nev, ov_n, x = _lpush(t + 1, L_HEAD, s, t, mask, bh, bcnt,
                                      ev_val, ev_next, ov_t, ov_c, ov_v, nev, ov_n)
                ring_n += x
        cfirst = n_pe

        # -- class 2: heads at routers / bus, in (source, k) rank order (T3, T4) --------------
        e = bh[base + L_REQ]
        w = t & (WHEEL - 1)
        hb = w * wcap  # this cycle's heads: wh[hb:hb + n]
        n = wn[w] - hb
        if e >= 0 or n > 0:
            wn[w] = hb
            bh[base + L_REQ] = -1
            while e >= 0:
                wh[hb + n] = ev_val[e]
                n += 1
                e = ev_next[e]
            bcnt[slot] -= n
            ring_n -= n
            heads = wh
            ho = hb
            if _LEAN_MESH and fault != FAULT_TIEBREAK:
                # only heads at the same router compete (their links and ejection port): file
                # them per router, each router's few heads in rank order, and process router by
                # router (heads at different routers touch disjoint state)
                nr = 0
                for i in range(n):
                    v = wh[hb + i]
                    r = v & 0xFFFF
                    if stamp[r] != t:
                        stamp[r] = t
                        rhead[r] = i
                        lnext[i] = -1
                        touched[nr] = r
                        nr += 1
                    else:
                        h = rhead[r]
                        if v < wh[hb + h]:
                            lnext[i] = h
                            rhead[r] = i
                        else:
                            pv = h
                            while lnext[pv] >= 0 and wh[hb + lnext[pv]] < v:
                                pv = lnext[pv]
                            lnext[i] = lnext[pv]
                            lnext[pv] = i
                if nr < n:
                    m = 0
                    for ri in range(nr):
                        i = rhead[touched[ri]]
                        while i >= 0:
                            tmp2[m] = wh[hb + i]
                            m += 1
                            i = lnext[i]
                    heads = tmp2
                    ho = 0
            elif n > 1:
                # the bus and the ejection ports it feeds: all heads in rank order
                if n > 24:
                    wh[hb:hb + n].sort()
                else:
                    for i in range(hb + 1, hb + n):
                        x = wh[i]
                        j = i - 1
                        while j >= hb and wh[j] > x:
                            wh[j + 1] = wh[j]
                            j -= 1
                        wh[j + 1] = x
                if fault == FAULT_TIEBREAK:
                    for i in range(n // 2):
                        x = wh[hb + i]
                        wh[hb + i] = wh[hb + n - 1 - i]
                        wh[hb + n - 1 - i] = x
            for i in range(n):
                v = heads[ho + i]
                pos = v >> 18
                r = v & 0xFFFF
                b = pos * RKF
                s = rk[b + RK_S]
                f = rk[b + RK_F]
                j0 = rk[b + RK_J0]
                j1 = rk[b + RK_J1]
                G = rk[b + RK_G]
                ja = -1  # first pair to eject here; with jz: a run of pairs (bus)
                jz = -1
                skip = -1
                if _LEAN_MESH and _LEAN_UNI:
                    # one destination: its XY route takes one link per router
                    dd = rk[b + RK_TAB]
                    if dd != r:
                        pr = r * LNF
                        dc = prc[2 * dd + 1]
                        rc = ps[pr + F_COL]
                        if dc > rc:
                            lid = pr + F_LINK
                            nxr = r + 1
                        elif dc < rc:
                            lid = pr + F_LINK + 1
                            nxr = r - 1
                        elif dd < r:
                            lid = pr + F_LINK + 2
                            nxr = r - cols
                        else:
                            lid = pr + F_LINK + 3
                            nxr = r + cols
                        g = ps[lid]
                        if g < t:
                            g = t
                        ps[lid] = g + f
                        nev, ov_n, nn, x = _rpush(g + hop, (pos << 18) + nxr, t, mask, wh, wn, nn,
                                                  bh, bcnt, ev_val, ev_next, ov_t, ov_c, ov_v,
                                                  nev, ov_n)
                        ring_n += x
                        continue
                    ja = j0
                    jz = j0 + 1
                elif _LEAN_MESH:
                    pr = r * LNF
                    rr = ps[pr + F_ROW]
                    rc = ps[pr + F_COL]
                    # a head is in its source's row (d = 0) or on a column branch going north
                    # (d = 1) or south (d = 2): the XY tree forks only in the source's row
                    d = (v >> 16) & 3
                    if d == 0:
                        sc = rk[b + RK_SC]
                        if rc >= sc and rk[b + RK_CMAX] > rc:
                            lid = pr + F_LINK
                            g = ps[lid]
                            if g < t:
                                g = t
                            ps[lid] = g + f
                            nev, ov_n, nn, x = _rpush(g + hop, (pos << 18) + r + 1, t, mask, wh, wn,
                                                      nn, bh, bcnt, ev_val, ev_next, ov_t, ov_c,
                                                      ov_v, nev, ov_n)
                            ring_n += x
                        if rc <= sc and rk[b + RK_CMIN] < rc:
                            lid = pr + F_LINK + 1
                            g = ps[lid]
                            if g < t:
                                g = t
                            ps[lid] = g + f
                            nev, ov_n, nn, x = _rpush(g + hop, (pos << 18) + r - 1, t, mask, wh, wn,
                                                      nn, bh, bcnt, ev_val, ev_next, ov_t, ov_c,
                                                      ov_v, nev, ov_n)
                            ring_n += x
                    # the rows of the packet's destinations in this column (all, for a broadcast)
                    full = _LEAN_FULL or j1 - j0 == n_pe
                    top = 0
                    bot = rows - 1
                    if not full:
                        gc = 2 * (G * cols + rc)
                        top = g_rm[gc]
                        bot = g_rm[gc + 1]
                    if d != 2 and top < rr:
                        lid = pr + F_LINK + 2
                        g = ps[lid]
                        if g < t:
                            g = t
                        ps[lid] = g + f
                        nev, ov_n, nn, x = _rpush(g + hop, (pos << 18) + (1 << 16) + r - cols, t,
                                                  mask, wh, wn, nn, bh, bcnt, ev_val, ev_next, ov_t,
                                                  ov_c, ov_v, nev, ov_n)
                        ring_n += x
                    if d != 1 and bot > rr:
                        lid = pr + F_LINK + 3
                        g = ps[lid]
                        if g < t:
                            g = t
                        ps[lid] = g + f
                        nev, ov_n, nn, x = _rpush(g + hop, (pos << 18) + (2 << 16) + r + cols, t,
                                                  mask, wh, wn, nn, bh, bcnt, ev_val, ev_next, ov_t,
                                                  ov_c, ov_v, nev, ov_n)
                        ring_n += x
                    # is router r's PE a destination?
                    tb = rk[b + RK_TAB]
                    if full:
                        ja = j0 + r
                    elif tb >= 0:
                        x = pool[tb + r]
                        if x >= 0:
                            ja = j0 + x
                    else:
                        for j in range(j0, j1):
                            if dst[j] >= r:
                                if dst[j] == r:
                                    ja = j
                                break
                    jz = ja + 1
                elif r == s:
                    # sent last cycle: the source's own PE ejects, the rest takes the bus
                    others = False
                    for j in range(j0, j1):
                        if dst[j] == s:
                            ja = j
                            jz = j + 1
                        else:
                            others = True
                    if others:
                        g = bus_free
                        if g < t:
                            g = t
                        bus_free = g + f
                        out[ob + s, C_FLITS] += f
                        nev, ov_n, nn, x = _rpush(g + hop, (pos << 18) + n_pe, t, mask, wh, wn, nn,
                                              bh, bcnt, ev_val, ev_next, ov_t, ov_c, ov_v,
                                              nev, ov_n)
                        ring_n += x
                else:
                    ja = j0
                    jz = j1
                    skip = s
                if ja < 0:
                    continue
                bpk = rk[b + RK_CW]
                for j in range(ja, jz):
                    p = r if _LEAN_MESH else dst[j]
                    if p == skip:
                        continue
                    # ejection port: granted at g, the event enters the queue at g + flits;
                    # the core (T5), a FIFO server, pops it at max(entry, core free)
                    pp = p * LNF
                    g = ps[pp + F_PORT]
                    if g < t:
                        g = t
                    en_t = g + f
                    ps[pp + F_PORT] = en_t
                    if fault == FAULT_PORT_FREE:
                        ps[pp + F_PORT] = en_t - 1
                    m = ps[pp + F_NREC]
                    o = ps[pp + F_OFF]
                    ps[pp + F_NREC] = m + 1
                    cc = ps[pp + F_CF]
                    pop = en_t if en_t > cc else cc
                    wait = pop - cc
                    ps[pp + F_WS] += wait
                    ps[pp + F_BS] += bpk if bpk < wait else wait
                    ps[pp + F_CF] = pop + svt[j]
                    pops[o + m] = pop
                    ents[o + m] = en_t
                    if ps[pp + F_NEEDW] == 1:
                        # a source group waits for this queue's next credit: it is this one's
                        tr = pop + clat
                        ps[pp + F_NEEDW] = 0
                        ps[pp + F_WAKE] = tr
                        nev, ov_n, y = _lpush(tr, L_WAKE, p, t, mask, bh, bcnt, ev_val,
                                              ev_next, ov_t, ov_c, ov_v, nev, ov_n)
                        ring_n += y

        wn[(t + 1) & (WHEEL - 1)] = nn
        # -- jump to the next non-empty cycle, filing overflow work that comes into range ----
        t += 1
        while True:
            if ring_n == 0:
                if ov_n == 0:
                    t = -1
                    break
                if ov_t[0] > t:
                    t = ov_t[0]
            while ov_n > 0 and ov_t[0] - t <= mask:
                tt = ov_t[0]
                b = (tt & mask) * LCLS + ov_c[0]
                ev_val[nev] = ov_v[0]
                ev_next[nev] = bh[b]
                bh[b] = nev
                nev += 1
                bcnt[tt & mask] += 1
                ring_n += 1
                ov_n = _ov_pop(ov_t, ov_c, ov_v, ov_n)
            if bcnt[t & mask] > 0:
                break
            t += 1
        if t < 0:
            break

    # ---- end-of-phase updates (T6), barrier (T7) and the per-PE classes --------------------
    for pos in range(K):
        out[ob + rk[pos * RKF + RK_S], C_CW] += rk[pos * RKF + RK_CW]
    ok = True
    for s in range(n_pe):
        if sp_ptr[s] != sp_end[s]:
            ok = False
    maxdone = 0
    for p in range(n_pe):
        pp = p * LNF
        nrec = ps[pp + F_NREC]
        if nrec != ps[pp + F_TOT]:
            ok = False
        cc = ps[pp + F_CF]
        # the queue's high-water mark: its occupancy as each event enters, less the pops before
        # it (a pop in its entry cycle counts after it)
        o = ps[pp + F_OFF]
        i = 0
        best = 0
        for m in range(nrec):
            en_t = ents[o + m]
            while pops[o + i] < en_t:
                i += 1
            if m + 1 - i > best:
                best = m + 1 - i
        q = ob + p
        out[q, C_BP] = ps[pp + F_BS]
        out[q, C_NOC] = ps[pp + F_WS] - ps[pp + F_BS]
        if nrec > 0 or uc[p] > 0 or ur[p] > 0:
            rd = ur[p]
            dur = uc[p]
            if rd > 0:
                dur += _read_time(rd, banks, rlx, busy_tab, nbt)
                out[q, C_READS] += rd
            out[q, C_COMPUTE] += dur
            cc += dur
            if cc > maxdone:
                maxdone = cc
        ps[pp + F_CF] = cc
        out[q, C_HWM] = best
    pc = maxdone + bar + extra
    for p in range(n_pe):
        q = ob + p
        if ps[p * LNF + F_NREC] > 0 or uc[p] > 0 or ur[p] > 0:
            out[q, C_BARRIER] = pc - ps[p * LNF + F_CF]
        else:
            out[q, C_IDLE] = pc
    if not ok:
        return -1
    return pc


@njit
def run_many(tim, k_off, dst_ptr, pair_lo, src, flits, dst, reads, cyc, macs, acs,
             ur, uw, uc, um, un, extra, out, phase_cycles, frows, fstep, slot, same_ptr, same,
             sync_lat, ring_bits, fault=0):
    """Run every phase i (packets k_off[i]..k_off[i+1]-1, PEs i*n_pe..(i+1)*n_pe-1).

    ``dst_ptr`` numbers the pairs of the concatenated packets; pair j of packet k is row
    ``pair_lo[k] + j - dst_ptr[k]`` of the pair tables ``dst`` .. ``acs`` (per-op tables shared
    by many packets, or one row per pair with ``pair_lo = dst_ptr[:-1]``). ``ur`` .. ``un`` are
    ``[n_phases * n_pe]``. ``out`` (``[n_phases * n_pe, N_COUNTERS]``) must be zero.

    With ``frows`` non-empty, each phase is folded as it ends (:func:`_fold`): ``out`` is then
    only ``[n_pe, N_COUNTERS]`` of scratch, and ``phase_cycles``, ``frows`` ``[m, N_COUNTERS +
    1]`` and ``fstep`` ``[steps, n_pe, N_COUNTERS + 1]`` (zero) receive what a run keeps for the
    m phases that the batch's phases stand for: phase i (simulated once) for phases
    ``same[same_ptr[i]:same_ptr[i + 1]]`` (identical to it), phase q's step being ``slot[q]``.
    ``fault`` plants a deliberate bug (mutation tests only; 0 in production).
    Returns 0, or the index+1 of a phase that failed the internal consistency check."""
    if tim[T_SHARE] == 1 and tim[T_TOPO] == MESH:
        return _run_lean_mesh(tim, k_off, dst_ptr, pair_lo, src, flits, dst, reads, cyc, macs,
                              acs, ur, uw, uc, um, un, extra, out, phase_cycles, frows, fstep,
                              slot, same_ptr, same, sync_lat, ring_bits, fault)
    if tim[T_SHARE] == 1:
        return _run_lean_bus(tim, k_off, dst_ptr, pair_lo, src, flits, dst, reads, cyc, macs,
                             acs, ur, uw, uc, um, un, extra, out, phase_cycles, frows, fstep,
                             slot, same_ptr, same, sync_lat, ring_bits, fault)
    return _run_general(tim, k_off, dst_ptr, pair_lo, src, flits, dst, reads, cyc, macs, acs,
                        ur, uw, uc, um, un, extra, out, phase_cycles, frows, fstep, slot,
                        same_ptr, same, sync_lat, ring_bits, fault)


@njit_inline
def _add_counters(into, out, p, sy):
    """Add PE p's counters (scratch row p of ``out``) into ``into`` ([N_COUNTERS + 1]): sums,
    the queue high-water mark a maximum, and ``sy`` into the last column (``sync``) unless the
    PE was idle."""
    keep = into[C_HWM]
    for c in range(N_COUNTERS):
        into[c] += out[p, c]
    v = out[p, C_HWM]
    into[C_HWM] = keep if keep > v else v
    if out[p, C_IDLE] == 0:
        into[N_COUNTERS] += sy


@njit_inline
def _fold(out, n_pe, i, pc, phase_cycles, frows, fstep, slot, same_ptr, same, sync_lat, extra):
    """Fold phase i's cycles ``pc`` and per-PE counters (scratch rows 0..n_pe-1 of ``out``) into
    what a run keeps (``hwsim.runner.fold``, which says it in numpy), for every phase q it stands
    for (``same[same_ptr[i]:same_ptr[i + 1]]``): q's cycles and row (summed over PEs) and the
    per-PE totals of q's step. Then clear the scratch for the next phase."""
    sy = sync_lat + extra[i]
    lo = same_ptr[i]
    hi = same_ptr[i + 1]
    for x in range(lo, hi):
        q = same[x]
        phase_cycles[q] = pc
        for p in range(n_pe):
            _add_counters(fstep[slot[q], p], out, p, sy)
    if lo < hi:  # the first copy's row; the others are the same
        for p in range(n_pe):
            _add_counters(frows[same[lo]], out, p, sy)
        for x in range(lo + 1, hi):
            frows[same[x]] = frows[same[lo]]
    for p in range(n_pe):
        for c in range(N_COUNTERS):
            out[p, c] = 0


@njit_inline
def _gather_phase(kb, ke, dst_ptr, pair_lo, dst, reads, cyc, macs, acs,
                  ldp, ldst, lrd, lcy, lma, lac):
    """Copy phase kb..ke-1's pairs out of the shared tables into phase-local rows (which then
    stay in cache for the phase) and its pair pointers, rebased to 0."""
    jb = dst_ptr[kb]
    for kl in range(ke - kb):
        k = kb + kl
        j0 = dst_ptr[k] - jb
        ldp[kl] = j0
        shift = pair_lo[k] - j0
        for j in range(j0, dst_ptr[k + 1] - jb):
            r = shift + j
            ldst[j] = dst[r]
            lrd[j] = reads[r]
            lcy[j] = cyc[r]
            lma[j] = macs[r]
            lac[j] = acs[r]
    ldp[ke - kb] = dst_ptr[ke] - jb


@njit
def _run_lean(tim, k_off, dst_ptr, pair_lo, src, flits, dst, reads, cyc, macs, acs,
              ur, uw, uc, um, un, extra, out, phase_cycles, frows, fstep, slot, same_ptr, same,
              sync_lat, ring_bits, fault):
    fold = frows.shape[0] > 0
    n_pe = tim[T_ROWS] * tim[T_COLS]
    rows = tim[T_ROWS]
    cols = tim[T_COLS]
    depth = tim[T_DEPTH]
    banks = tim[T_BANKS]
    n_phases = k_off.shape[0] - 1
    maxk = 1
    maxj = 1
    maxev = 16
    maxpool = 1
    for i in range(n_phases):
        K = k_off[i + 1] - k_off[i]
        J = dst_ptr[k_off[i + 1]] - dst_ptr[k_off[i]]
        if K > maxk:
            maxk = K
        if J > maxj:
            maxj = J
        if tim[T_TOPO] == MESH:
            ev = K * (cols + 1) + J * rows + J + K + n_pe + 16
            nbig = 0
            for k in range(k_off[i], k_off[i + 1]):
                if dst_ptr[k + 1] - dst_ptr[k] > 8:
                    nbig += 1
            if nbig * n_pe > maxpool:
                maxpool = nbig * n_pe
        else:
            ev = 2 * K + J + K + n_pe + 16
        if ev > maxev:
            maxev = ev
    if maxpool > (1 << 21):
        maxpool = 1 << 21
    order = np.zeros(maxk, np.int64)
    grp = np.zeros(maxk, np.int64)
    ents = np.zeros(maxj, np.int64)  # every event's entry and pop cycles, per PE in entry order
    pops = np.zeros(maxj, np.int64)
    sp_ptr = np.zeros(n_pe, np.int64)
    sp_end = np.zeros(n_pe, np.int64)
    head_t = np.zeros(n_pe, np.int64)
    inlist = np.zeros(n_pe, np.int64)
    nxt = np.zeros(n_pe, np.int64)
    gcache = np.zeros(8, np.int64)
    g_one = np.zeros(n_pe, np.int64)
    g_fail = np.zeros(maxk, np.int64)
    g_fsrc = np.zeros(maxk, np.int64)
    g_wait = np.zeros(maxk, np.int64)
    g_head = np.zeros(maxk, np.int64)
    g_wnext = np.zeros(maxk, np.int64)
    gr = np.zeros(maxk * GRF, np.int64)
    g_rm = np.zeros(maxk * cols * 2, np.int64)
    rk = np.zeros(maxk * RKF, np.int64)
    pool = np.zeros(maxpool, np.int64)
    ps = np.zeros(n_pe * LNF, np.int64)
    stamp = np.zeros(n_pe + 1, np.int64)
    # (np.empty: scratch that is written before it is read)
    tmp2 = np.empty(maxev, np.int64)
    lnext = np.empty(maxev, np.int64)
    rhead = np.zeros(n_pe + 1, np.int64)
    touched = np.zeros(n_pe + 1, np.int64)
    ev_val = np.empty(maxev, np.int64)
    ev_next = np.empty(maxev, np.int64)
    H = 1 << ring_bits
    mask = H - 1
    bh = np.full(H * LCLS, -1, np.int64)
    bcnt = np.zeros(H, np.int64)
    ov_t = np.empty(maxev, np.int64)
    ov_c = np.empty(maxev, np.int64)
    ov_v = np.empty(maxev, np.int64)
    gret = np.empty(maxk, np.int64)  # (set in a phase that uses them)
    garg = np.empty(maxk, np.int64)
    wcap = min(5 * n_pe + 8, maxev)  # heads in one cycle: at most one per link in and the PE's
    wh = np.empty(WHEEL * wcap, np.int64)
    wn = np.zeros(WHEEL, np.int64)
    cflag = np.zeros(n_pe + 1, np.int64)
    prc = np.zeros(2 * n_pe, np.int64)
    for p in range(n_pe):
        prc[2 * p] = p // cols
        prc[2 * p + 1] = p % cols
    busy_tab = np.zeros(4096, np.int64)
    for x in range(4096):
        busy_tab[x] = (x + banks - 1) // banks
    # the core's service time (T5) of every table row, private SRAM: the same in every phase
    rlx = tim[T_RLAT] - 1 + (1 if fault == FAULT_SRAM_LATENCY else 0)
    svt = np.empty(dst.shape[0], np.int64)
    for r in range(dst.shape[0]):
        sv = tim[T_DECODE] + cyc[r]
        if reads[r] > 0:
            sv += _read_time(reads[r], banks, rlx, busy_tab, busy_tab.shape[0])
        svt[r] = sv
    scratch = (order, grp, ents, pops, sp_ptr, sp_end, head_t, inlist, nxt, gcache, g_one,
               g_fail, g_fsrc, g_wait, g_head, g_wnext, gr, g_rm, rk, pool, ps, ev_val, ev_next,
               bh, bcnt, ov_t, ov_c, ov_v, wh, wn, tmp2, lnext, rhead, touched, cflag, stamp,
               prc, busy_tab, gret, garg)
    ldp = np.zeros(maxk + 1, np.int64)
    # the copy for each phase: 0 every packet goes to one PE, 1 to every PE (a packet's
    # destinations are distinct), 2 other
    kinds = np.full(n_phases, 2, np.int64)
    for i in range(n_phases):
        K = k_off[i + 1] - k_off[i]
        J = dst_ptr[k_off[i + 1]] - dst_ptr[k_off[i]]
        if J == K * n_pe:
            kinds[i] = 1
        elif J == K:
            kinds[i] = 0
            for k in range(k_off[i], k_off[i + 1]):
                if dst_ptr[k + 1] - dst_ptr[k] != 1:
                    kinds[i] = 2
                    break
    # phases of one kind run together (phases are independent): one copy's code stays hot
    for x in range(3 * n_phases):
        kind = x // n_phases
        i = x % n_phases
        if kinds[i] != kind:
            continue
        pb = i * n_pe
        ob = 0 if fold else pb
        kb = k_off[i]
        ke = k_off[i + 1]
        jb = dst_ptr[kb]
        for k in range(kb, ke + 1):
            ldp[k - kb] = dst_ptr[k] - jb
        args = (tim, n_pe, 0, ke - kb, ldp, src[kb:ke], flits[kb:ke], pair_lo[kb:ke], dst, reads,
                cyc, macs, acs, svt, rlx, ur[pb:pb + n_pe], uw[pb:pb + n_pe], uc[pb:pb + n_pe],
                um[pb:pb + n_pe], un[pb:pb + n_pe], extra[i], out, ob, fault, scratch, mask)
        if kind == 0:
            pc = _phase_lean_uni(*args)
        elif kind == 1:
            pc = _phase_lean_full(*args)
        else:
            pc = _phase_lean(*args)
        if pc < 0:
            return i + 1
        if fold:
            _fold(out, n_pe, i, pc, phase_cycles, frows, fstep, slot, same_ptr, same, sync_lat,
                  extra)
        else:
            phase_cycles[i] = pc
    return 0


@njit
def _run_general(tim, k_off, dst_ptr, pair_lo, src, flits, dst, reads, cyc, macs, acs,
                 ur, uw, uc, um, un, extra, out, phase_cycles, frows, fstep, slot, same_ptr,
                 same, sync_lat, ring_bits, fault):
    fold = frows.shape[0] > 0
    n_pe = tim[T_ROWS] * tim[T_COLS]
    depth = tim[T_DEPTH]
    n_phases = k_off.shape[0] - 1
    maxk = 1
    maxj = 1
    maxev = 16
    maxdense = 1
    for i in range(n_phases):
        K = k_off[i + 1] - k_off[i]
        J = dst_ptr[k_off[i + 1]] - dst_ptr[k_off[i]]
        if K > maxk:
            maxk = K
        if J > maxj:
            maxj = J
        if tim[T_TOPO] == MESH:
            ev = J + 2 * n_pe + K * (tim[T_COLS] + 1) + J * tim[T_ROWS] + 16
        else:
            ev = J + 2 * n_pe + 2 * K + 16
        if ev > maxev:
            maxev = ev
        if K * n_pe <= DENSE_LIMIT and K * n_pe > maxdense:
            maxdense = K * n_pe
    cols = tim[T_COLS]
    order = np.zeros(maxk, np.int64)
    grp = np.zeros(maxk, np.int64)
    cw = np.zeros(maxk, np.int64)
    rmin = np.zeros(maxk * cols, np.int64)
    rmax = np.zeros(maxk * cols, np.int64)
    cmin = np.zeros(maxk, np.int64)
    cmax = np.zeros(maxk, np.int64)
    pair_of = np.full(maxdense, -1, np.int64)
    pk_of_pair = np.zeros(maxj, np.int64)
    rec_e = np.zeros(maxj, np.int64)
    rec_p = np.zeros(maxj, np.int64)
    sp_ptr = np.zeros(n_pe, np.int64)
    sp_end = np.zeros(n_pe, np.int64)
    head_t = np.zeros(n_pe, np.int64)
    inlist = np.zeros(n_pe, np.int64)
    nxt = np.zeros(n_pe, np.int64)
    gcache = np.zeros(8, np.int64)
    g_fail = np.zeros(maxk, np.int64)
    g_fsrc = np.zeros(maxk, np.int64)
    g_wait = np.zeros(maxk, np.int64)
    g_head = np.zeros(maxk, np.int64)
    g_wnext = np.zeros(maxk, np.int64)
    credits = np.zeros(n_pe, np.int64)
    dw_head = np.zeros(n_pe, np.int64)
    ps = np.zeros((n_pe, NPF), np.int64)
    fifo_e = np.zeros(n_pe * depth, np.int64)
    fifo_j = np.zeros(n_pe * depth, np.int64)
    link_free = np.zeros(n_pe * 4, np.int64)
    port_free = np.zeros(n_pe, np.int64)
    sram_free = np.zeros(n_pe, np.int64)
    ev_val = np.zeros(maxev, np.int64)
    ev_next = np.zeros(maxev, np.int64)
    for i in range(maxev):
        ev_next[i] = i + 1
    ev_next[maxev - 1] = -1
    H = 1 << ring_bits
    mask = H - 1
    bh = np.full(H * NCLS, -1, np.int64)
    bcnt = np.zeros(H, np.int64)
    ov_t = np.zeros(maxev, np.int64)
    ov_c = np.zeros(maxev, np.int64)
    ov_v = np.zeros(maxev, np.int64)
    st = np.zeros(8, np.int64)
    tmp = np.zeros(maxev, np.int64)
    cflag = np.zeros(n_pe + 1, np.int64)
    dirty = np.zeros(n_pe + 1, np.int64)
    sg_t = np.zeros(maxev, np.int64)
    sg_c = np.zeros(maxev, np.int64)
    sg_v = np.zeros(maxev, np.int64)
    ej_p = np.zeros(n_pe + 1, np.int64)
    ej_j = np.zeros(n_pe + 1, np.int64)
    prow = np.zeros(n_pe, np.int64)
    pcol = np.zeros(n_pe, np.int64)
    for p in range(n_pe):
        prow[p] = p // cols
        pcol[p] = p % cols
    ldp = np.zeros(maxk + 1, np.int64)
    ldst = np.zeros(maxj, np.int64)
    lrd = np.zeros(maxj, np.int64)
    lcy = np.zeros(maxj, np.int64)
    lma = np.zeros(maxj, np.int64)
    lac = np.zeros(maxj, np.int64)
    for i in range(n_phases):
        pb = i * n_pe
        ob = 0 if fold else pb
        kb = k_off[i]
        ke = k_off[i + 1]
        _gather_phase(kb, ke, dst_ptr, pair_lo, dst, reads, cyc, macs, acs,
                      ldp, ldst, lrd, lcy, lma, lac)
        pc = _phase(tim, n_pe, 0, ke - kb, ldp, src[kb:ke], flits[kb:ke], ldst, lrd, lcy,
                    lma, lac, ur[pb:pb + n_pe], uw[pb:pb + n_pe], uc[pb:pb + n_pe],
                    um[pb:pb + n_pe], un[pb:pb + n_pe], extra[i], out, ob,
                    order, grp, cw, rmin, rmax, cmin, cmax, pair_of, pk_of_pair, rec_e, rec_p,
                    sp_ptr, sp_end, head_t, inlist, nxt, gcache,
                    g_fail, g_fsrc, g_wait, g_head, g_wnext,
                    credits, dw_head, ps, fifo_e, fifo_j, link_free, port_free, sram_free,
                    ev_val, ev_next, bh, bcnt, ov_t, ov_c, ov_v, st, tmp, cflag, dirty, mask,
                    sg_t, sg_c, sg_v, ej_p, ej_j, prow, pcol, fault)
        if pc < 0:
            return i + 1
        if fold:
            _fold(out, n_pe, i, pc, phase_cycles, frows, fstep, slot, same_ptr, same, sync_lat,
                  extra)
        else:
            phase_cycles[i] = pc
    return 0


def _with_globals(f, name: str, **consts):
    """A copy of kernel function ``f`` (its Python source) with some of its globals replaced:
    numba reads globals as compile-time constants, so the copy is compiled (and cached, under
    ``name``) for its own values."""
    py = getattr(f, "py_func", f)
    scope = dict(py.__globals__)
    scope.update(consts)
    copy = types.FunctionType(py.__code__, scope, name, py.__defaults__, py.__closure__)
    copy.__qualname__ = name
    return njit(copy)


# _phase_lean and _run_lean above are templates (_run_lean's _phase_lean_full and
# _phase_lean_uni are bound only here); run_many calls these copies.
_phase_lean_mesh = _with_globals(_phase_lean, "_phase_lean_mesh", _LEAN_MESH=True)
_phase_lean_mesh_full = _with_globals(_phase_lean, "_phase_lean_mesh_full", _LEAN_MESH=True,
                                      _LEAN_FULL=True)
_phase_lean_mesh_uni = _with_globals(_phase_lean, "_phase_lean_mesh_uni", _LEAN_MESH=True,
                                     _LEAN_UNI=True)
_phase_lean_bus = _with_globals(_phase_lean, "_phase_lean_bus", _LEAN_MESH=False)
_run_lean_mesh = _with_globals(_run_lean, "_run_lean_mesh", _phase_lean=_phase_lean_mesh,
                               _phase_lean_full=_phase_lean_mesh_full,
                               _phase_lean_uni=_phase_lean_mesh_uni)
_run_lean_bus = _with_globals(_run_lean, "_run_lean_bus", _phase_lean=_phase_lean_bus,
                              _phase_lean_full=_phase_lean_bus,  # (no such copies on the bus)
                              _phase_lean_uni=_phase_lean_bus)


def _without_wraparound(dispatcher):
    """Compile ``dispatcher`` (and the kernel functions it calls) without numba's negative-index
    wraparound.

    Every index in this module is >= 0, but numba cannot know it: each array access gets a
    compare and a select, and keeps the array's size live, which with this kernel's dozens of
    arrays spills registers; measured, that is about a third of the kernel's time. Numba has no
    option to turn it off, so the compilation runs with its index fix-up
    (``numba.np.arrayobj.fix_integer_index``) replaced by a plain cast, under numba's global
    compiler lock, so that no other compilation can see the replacement. The tests that compare
    the compiled kernel with the pure-Python one and with the detailed engine would catch an
    index that relied on wraparound. If numba's internals differ (another version), the kernel
    is compiled as usual: slower, same results."""
    from numba.core.compiler_lock import global_compiler_lock
    from numba.np import arrayobj

    def cast_only(context, builder, idxty, idx, size):
        return context.cast(builder, idx, idxty, _numba.types.intp)

    def call(*args):
        sig = tuple(_numba.typeof(a) for a in args)
        if sig not in dispatcher.overloads and hasattr(arrayobj, "fix_integer_index"):
            with global_compiler_lock:
                usual = arrayobj.fix_integer_index
                arrayobj.fix_integer_index = cast_only
                try:
                    dispatcher.compile(sig)
                except Exception:  # pragma: no cover - numba's internals changed: compile as usual
                    pass
                finally:
                    arrayobj.fix_integer_index = usual
        return dispatcher(*args)

    return functools.wraps(dispatcher)(call)


if BACKEND == "numba":
    run_many = _without_wraparound(run_many)

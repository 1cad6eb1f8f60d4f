"""The network on chip (rule T4): mesh links with XY multicast trees, or one shared bus, and one
ejection port per PE.

Every link, the bus and every ejection port is a T3 unit (:class:`Arbiter`) with key
``(request cycle, source PE, packet k)``, where the request cycle is the cycle the packet's head
asks *that* unit (it reached the router, or was sent one cycle before for the first links).
A packet granted a link/bus in ``g`` holds it ``flits`` cycles and its head is at the next
router(s) in ``g + hop_latency``; routers buffer heads without limit (a waiting head never holds
the link it came on). An ejection port granted in ``e`` is busy ``flits`` cycles and the event
enters the PE's input queue in ``e + flits``, at the start of that cycle (a delivery).
"""

from __future__ import annotations

from hwsim.components.arbiter import Arbiter
from hwsim.components.clock import Delivery, at, cycle

EAST, WEST, NORTH, SOUTH = "E", "W", "N", "S"


class Packet:
    """One packet in flight: index ``k``, source PE, flits, and its (destination, pair j) list."""

    __slots__ = ("k", "src", "flits", "dests", "pairs")

    def __init__(self, k: int, src: int, flits: int, dests, pairs):
        self.k, self.src, self.flits, self.dests, self.pairs = k, src, flits, dests, pairs

    def key(self, t: int) -> tuple:
        return (t, self.src, self.k)


class NoC:
    """Common part: ejection ports, delivery into the PEs' queues, flit-hop counting."""

    def __init__(self, env, timing, packet_of, deliver, record=None):
        self.env = env
        self.timing = timing
        self.packet_of = packet_of  # k -> Packet
        self.deliver = deliver  # deliver(pe, (k, j)): the event enters pe's input queue now
        self.record = record  # link/bus occupancy for timelines, when asked for
        self.ejection = [Arbiter(env, f"eject{p}") for p in range(timing.n_pe)]
        self.flit_hops = [0] * timing.n_pe  # per *sending* PE

    def send(self, k: int, sent: int) -> None:
        """Packet ``k`` was sent in cycle ``sent``; its head enters the network in ``sent + 1``."""
        pkt = self.packet_of(k)
        if pkt.dests:
            self.env.process(self._launch(pkt, sent + 1))

    def _launch(self, pkt: Packet, t: int):  # pragma: no cover - topology specific
        raise NotImplementedError
        yield

    def eject(self, pkt: Packet, pe: int, j: int) -> None:
        """The packet's head asks ``pe``'s ejection port now."""
        self.env.process(self._eject(pkt, pe, j))

    def _eject(self, pkt: Packet, pe: int, j: int):
        env = self.env
        e = yield self.ejection[pe].request(pkt.key(cycle(env)), pkt.flits)
        yield Delivery(env, e + pkt.flits)
        self.deliver(pe, (pkt.k, j))


class Mesh(NoC):
    """``rows x cols`` routers, PE ``p`` at row ``p // cols``, column ``p % cols`` (row 0 is
    north). One directed link per neighbouring pair and direction, created on first use."""

    def __init__(self, env, timing, packet_of, deliver, record=None):
        super().__init__(env, timing, packet_of, deliver, record)
        self.links: dict[tuple[int, int], Arbiter] = {}

    def link(self, a: int, b: int) -> Arbiter:
        unit = self.links.get((a, b))
        if unit is None:
            unit = self.links[(a, b)] = Arbiter(self.env, f"link{a}->{b}")
        return unit

    def _launch(self, pkt: Packet, t: int):
        yield at(self.env, t)
        self._at_router(pkt, _XYTree(pkt, self.timing.cols), pkt.src, None)

    def _at_router(self, pkt: Packet, tree: "_XYTree", node: int, heading) -> None:
        """The head is at ``node``'s router now: ask the ejection port if ``node`` is a
        destination, and the next links of the tree, all branches at once."""
        cols = self.timing.cols
        r, c = divmod(node, cols)
        j = tree.eject.get(node)
        if j is not None:
            self.eject(pkt, node, j)
        if heading in (None, EAST, WEST):  # on the source's row
            if heading != WEST and c < tree.cmax:
                self._hop(pkt, tree, node, node + 1, EAST)
            if heading != EAST and c > tree.cmin:
                self._hop(pkt, tree, node, node - 1, WEST)
            if c in tree.north:
                self._hop(pkt, tree, node, node - cols, NORTH)
            if c in tree.south:
                self._hop(pkt, tree, node, node + cols, SOUTH)
        elif heading == NORTH:
            if r > tree.north[c]:
                self._hop(pkt, tree, node, node - cols, NORTH)
        elif r < tree.south[c]:
            self._hop(pkt, tree, node, node + cols, SOUTH)

    def _hop(self, pkt, tree, a, b, heading) -> None:
        self.env.process(self._traverse(pkt, tree, a, b, heading))

    def _traverse(self, pkt, tree, a, b, heading):
        env = self.env
        g = yield self.link(a, b).request(pkt.key(cycle(env)), pkt.flits)
        self.flit_hops[pkt.src] += pkt.flits
        if self.record is not None:
            self.record.append(("link", a, b, g, g + pkt.flits))
        yield at(env, g + self.timing.hop_latency)
        self._at_router(pkt, tree, b, heading)


class _XYTree:
    """The XY multicast tree of a packet: along the source row to the extreme destination
    columns, then north/south in every column holding destinations to its farthest one."""

    __slots__ = ("eject", "cmin", "cmax", "north", "south")

    def __init__(self, pkt: Packet, cols: int):
        rs, cs = divmod(pkt.src, cols)
        self.eject = dict(zip(pkt.dests, pkt.pairs))
        self.cmin = self.cmax = cs
        self.north: dict[int, int] = {}  # column -> northmost destination row (< rs)
        self.south: dict[int, int] = {}  # column -> southmost destination row (> rs)
        for d in pkt.dests:
            r, c = divmod(d, cols)
            self.cmin, self.cmax = min(self.cmin, c), max(self.cmax, c)
            if r < rs:
                self.north[c] = min(self.north.get(c, r), r)
            elif r > rs:
                self.south[c] = max(self.south.get(c, r), r)


class Bus(NoC):
    """One shared bus (a T3 unit): a transfer reaches every destination ``hop_latency`` after
    its grant and counts ``flits`` flit-hops. A destination that is the source itself skips the
    bus, as it skips the links of a mesh."""

    def __init__(self, env, timing, packet_of, deliver, record=None):
        super().__init__(env, timing, packet_of, deliver, record)
        self.bus = Arbiter(env, "bus")

    def _launch(self, pkt: Packet, t: int):
        env = self.env
        yield at(env, t)
        remote = []
        for d, j in zip(pkt.dests, pkt.pairs):
            if d == pkt.src:
                self.eject(pkt, d, j)
            else:
                remote.append((d, j))
        if not remote:
            return
        g = yield self.bus.request(pkt.key(t), pkt.flits)
        self.flit_hops[pkt.src] += pkt.flits
        if self.record is not None:
            self.record.append(("bus", g, g + pkt.flits))
        yield at(env, g + self.timing.hop_latency)
        for d, j in remote:
            self.eject(pkt, d, j)

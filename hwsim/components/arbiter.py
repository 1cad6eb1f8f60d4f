"""T3 arbitration: a shared unit (NoC link, bus, ejection port, SRAM) that serves one request
at a time, the one with the smallest key, deciding at half cycles.

A request made in cycle ``t`` (an integer time) waits in the unit's request heap. The unit's
process wakes at ``t + 0.5`` -- after every request of cycle ``t`` has been made, whatever
order the requesting processes ran in -- and, if the unit is free in cycle ``t``, grants the
smallest key for cycle ``t``. A unit granted in cycle ``g`` for ``d`` cycles is free again in
``g + d``; the next decision is then at ``g + d + 0.5`` among the requests waiting by then.
"""

from __future__ import annotations

import heapq

from hwsim.components.clock import HALF, cycle


class Arbiter:
    """One shared unit. ``request(key, duration)`` returns an event whose value is the integer
    grant cycle. Keys must be unique among the waiting requests (links and ejection ports use
    ``(request cycle, source PE, packet)``; SRAMs ``(request cycle, PE)``)."""

    def __init__(self, env, name: str):
        self.env = env
        self.name = name
        self.free_at = 0  # first cycle the unit is free
        self.grants = 0
        self.busy_cycles = 0
        self._waiting: list = []  # heap of (key, duration, event)
        self._server = None  # the deciding process while requests wait

    def request(self, key: tuple, duration: int):
        env = self.env
        if env.now != int(env.now):
            raise RuntimeError(f"{self.name}: request at {env.now}; requests are made at "
                               "integer cycles only")
        if duration < 1:
            raise ValueError(f"{self.name}: duration {duration} < 1")
        grant = env.event()
        heapq.heappush(self._waiting, (key, duration, grant))
        if self._server is None:
            self._server = env.process(self._serve())
        return grant

    def _serve(self):
        """The unit's process: one decision per grant, at half cycles, while requests wait."""
        env = self.env
        while self._waiting:
            t = max(cycle(env), self.free_at)
            yield env.timeout(t + HALF - env.now)
            key, duration, grant = heapq.heappop(self._waiting)
            self.free_at = t + duration
            self.grants += 1
            self.busy_cycles += duration
            grant.succeed(t)
        self._server = None

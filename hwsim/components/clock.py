"""The chip clock: integer cycles on a SimPy environment, and the three moments of a cycle.

Within one cycle ``t`` the detailed engine has three moments, ordered by construction (never by
SimPy's incidental ordering of same-time events):

1. ``t`` with URGENT priority -- **deliveries**: an event enters a PE's input queue
   (rule T4, ejection ``e + flits``), so that it can be popped in the same cycle and is counted
   in the queue high-water mark before the event popped in that cycle leaves;
2. ``t`` with NORMAL priority -- **activity**: pops, decode/compute ends, credit returns,
   packet heads reaching routers; every request to a shared unit is *made* here;
3. ``t + 0.5`` -- **decisions**: every arbiter (T3) and the credit check (T2) decide among all
   requests made in cycle ``t`` (and older waiting ones). A grant names the integer cycle ``t``.

Every consequence of a decision lies at least one cycle later (all latencies >= 1), so a
decision never needs anything that happens after it.
"""

from __future__ import annotations

from simpy.events import URGENT, Event

HALF = 0.5


def cycle(env) -> int:
    """The current cycle (a decision at ``t + 0.5`` belongs to cycle ``t``)."""
    return int(env.now)


def at(env, t: int):
    """A NORMAL-priority timeout that fires at the start of cycle ``t``."""
    return env.timeout(t - env.now)


class Delivery(Event):
    """A timeout that fires at cycle ``t`` before any NORMAL activity of that cycle (moment 1).

    Built like ``simpy.Timeout``, scheduled with URGENT priority.
    """

    def __init__(self, env, t: int, value=None):
        delay = t - env.now
        if delay <= 0:
            raise ValueError(f"delivery at cycle {t} scheduled at {env.now}: must be later")
        self.env = env
        self.callbacks = []
        self._value = value
        self._ok = True
        env.schedule(self, URGENT, delay)

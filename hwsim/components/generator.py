"""Output event generators and the credits of the input queues (rules T1 and T2).

Every PE's input queue has ``queue_depth`` credits. A source's generator holds its packets in
order and, from cycle 0, asks in every cycle it has a head packet for one credit of *every*
destination of the head packet. The credit check of cycle ``t`` is decided at ``t + 0.5``, in
increasing source PE index: a source gets all its credits or none, and a later source may
still succeed. A credit comes back ``credit_latency`` cycles after the destination PE pops the
event that held it, and can be taken in the cycle it comes back.

A refused source does not poll: it sleeps until a credit of a destination it lacked comes back
(credits only grow at returns, so every cycle in between would be refused too).
"""

from __future__ import annotations

from hwsim.components.clock import HALF, at, cycle


class CreditControl:
    """The credit counters of every PE's input queue, and the per-cycle credit check (T2)."""

    def __init__(self, env, n_pe: int, queue_depth: int):
        self.env = env
        self.depth = queue_depth
        self.credits = [queue_depth] * n_pe
        self._returned = [env.event() for _ in range(n_pe)]
        self._asks: dict[int, list] = {}  # cycle -> [(source, destinations, event)]

    def ask(self, src: int, dests) -> "object":
        """Ask, in the current cycle, for one credit of each of ``dests``. The event's value is
        ``None`` when all were taken, else the destinations that had no credit left."""
        env = self.env
        t = cycle(env)
        if env.now != t:
            raise RuntimeError(f"credit ask from PE {src} at {env.now}: asks are made at "
                               "integer cycles")
        asks = self._asks.get(t)
        if asks is None:
            asks = self._asks[t] = []
            env.process(self._check(t))
        answer = env.event()
        asks.append((src, dests, answer))
        return answer

    def _check(self, t: int):
        """The check of cycle ``t``, at ``t + 0.5``: sources in increasing index."""
        env = self.env
        yield env.timeout(t + HALF - env.now)
        credits = self.credits
        for src, dests, answer in sorted(self._asks.pop(t), key=lambda a: a[0]):
            lacking = [d for d in dests if credits[d] == 0]
            if lacking:
                answer.succeed(lacking)
            else:
                for d in dests:
                    credits[d] -= 1
                answer.succeed(None)

    def returned(self, pe: int):
        """An event that fires at the next credit return of ``pe``'s queue."""
        return self._returned[pe]

    def give_back(self, pe: int) -> None:
        """A credit of ``pe``'s queue comes back now."""
        self.credits[pe] += 1
        if self.credits[pe] > self.depth:
            raise RuntimeError(f"PE {pe}: more credits than queue entries")
        event, self._returned[pe] = self._returned[pe], self.env.event()
        event.succeed()

    def give_back_at(self, pe: int, t: int) -> None:
        """Schedule a credit of ``pe``'s queue to come back at cycle ``t``."""
        wire = at(self.env, t)
        wire.callbacks.append(lambda _ev: self.give_back(pe))


class OutputEventGenerator:
    """T1: one PE's output event generator. Sends its packets in order, at most one per cycle,
    each when every destination queue has a credit; a sent packet enters the NoC next cycle."""

    def __init__(self, env, index: int, packets, dests_of, credits: CreditControl, noc,
                 credit_wait_of):
        self.env = env
        self.index = index
        self.packets = packets  # packet indices k of this source, in sending order
        self.dests_of = dests_of  # k -> destination PEs
        self.credits = credits
        self.noc = noc
        self.credit_wait_of = credit_wait_of  # k -> credit_wait, filled at send (read by PEs)
        self.packets_sent = 0
        self.credit_wait = 0
        self.process = env.process(self.run())

    def run(self):
        env = self.env
        for k in self.packets:
            first_try = cycle(env)
            dests = self.dests_of(k)
            while True:
                lacking = yield self.credits.ask(self.index, dests)
                if lacking is None:
                    break
                yield env.any_of([self.credits.returned(d) for d in lacking])
            sent = cycle(env)
            self.credit_wait_of[k] = sent - first_try
            self.credit_wait += sent - first_try
            self.packets_sent += 1
            self.noc.send(k, sent)
            yield at(env, sent + 1)  # at most one packet per cycle

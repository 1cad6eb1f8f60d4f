"""The processing element: input event queue and core (rules T5, T6) with stall accounting.

The core process reads like the PE's timeline: take the head of the input queue (waiting for
one if it is empty), decode, read the SRAM (waiting for the shared port), compute; when every
event addressed to this PE has been served, run the end-of-phase neuron update; then wait at
the barrier.

Ports (what the engine connects):

* ``queue`` -- the input event queue, a ``simpy.Store(capacity=queue_depth)`` filled by the NoC's
  ejection port through :meth:`PE.enqueue` (credits guarantee it never overflows);
* ``sram`` -- the SRAM this PE shares (:class:`hwsim.components.sram.SRAM`);
* ``credits`` -- the credit control of T2: a pop gives a credit back ``credit_latency`` later.

Subclass hooks for custom PEs: :meth:`decode_cycles`, :meth:`serve`, :meth:`update`.
"""

from __future__ import annotations

import simpy

from hwsim.components.clock import at, cycle


class PE:
    """The built-in PE (registered as ``"pe"``)."""

    params: tuple = ()  # built-in PE: everything comes from the architecture's timing
    has_fast_kernel = True

    def __init__(self, env, index: int, chip, param):
        self.env = env
        self.index = index
        self.chip = chip
        self.timing = chip.timing
        self.param = param  # validated declared params (attributes)
        self.queue = simpy.Store(env, capacity=self.timing.queue_depth)
        self.sram = chip.sram_of(index)
        self.credits = chip.credits
        self.record = chip.record
        self.expected = chip.events_for(index)  # (packet, destination) pairs addressed here
        # counters (cycle classes and activity)
        self.compute = self.sram_conflict = self.noc_wait = self.backpressure = 0
        self.events = self.macs = self.acs = self.sram_reads = self.sram_writes = 0
        self.queue_hwm = 0
        self.neuron_updates = 0
        self.done = 0  # cycle the core finished its phase's work (T6)
        self.active = False  # served events or ran an update
        self.process = env.process(self.run())

    # --- input queue -----------------------------------------------------------------------
    def enqueue(self, item) -> None:
        """An event enters the queue now (a delivery: before any pop of this cycle)."""
        if len(self.queue.items) >= self.queue.capacity:
            raise RuntimeError(f"PE {self.index}: input queue overflow (credit bug)")
        self.queue.put(item)
        depth = len(self.queue.items)
        if depth > self.queue_hwm:
            self.queue_hwm = depth
        if self.record is not None:
            self.record.append(("queue", self.index, cycle(self.env), depth))

    def pop(self):
        """Generator: take the head event (waiting for one); give its credit back later."""
        item = yield self.queue.get()
        t = cycle(self.env)
        self.credits.give_back_at(self.index, t + self.timing.credit_latency)
        if self.record is not None:
            self.record.append(("queue", self.index, t, len(self.queue.items)))
        return item

    # --- core ------------------------------------------------------------------------------
    def run(self):
        """The core process (T5 then T6)."""
        env = self.env
        chip = self.chip
        free = 0  # cycle the core became free
        for _ in range(self.expected):
            k, j = yield from self.pop()
            t = cycle(env)
            wait = t - free
            bp = min(wait, chip.credit_wait_of[k])
            self.backpressure += bp
            self.noc_wait += wait - bp
            self.events += 1
            self.macs += chip.macs[j]
            self.acs += chip.acs[j]
            free = yield from self.serve(t, k, j)
        self.active = self.expected > 0
        upd = chip.update_of(self.index)
        self.macs += upd.macs
        self.sram_writes += upd.writes
        self.neuron_updates += upd.neurons
        if upd.cycles > 0 or upd.reads > 0:
            self.active = True
            free = yield from self.update(free, upd)
        self.done = free

    def decode_cycles(self, k: int, j: int) -> int:
        """Cycles to decode event ``(k, j)`` (hook for custom decoders)."""
        return self.timing.decode_cycles

    def serve(self, t: int, k: int, j: int):
        """Generator: serve event ``(k, j)`` popped at ``t``; return the cycle the core is free."""
        env, chip = self.env, self.chip
        t1 = t + self.decode_cycles(k, j)
        self._slice("decode", t, t1)
        yield at(env, t1)
        g, t2 = yield from self.read_sram(t1, chip.reads[j])
        t3 = t2 + chip.cycles[j]
        self._slice("compute", t2, t3)
        yield at(env, t3)
        self.compute += t3 - t - (g - t1)
        return t3

    def read_sram(self, t: int, words: int):
        """Generator: read ``words`` from the SRAM, requested at ``t`` (now); returns
        ``(grant, data ready)``; counts the conflict wait and the words."""
        if words <= 0:
            return t, t
        g, ready = yield from self.sram.read(self.index, words)
        self.sram_conflict += g - t
        self.sram_reads += words
        self._slice("sram_wait", t, g)
        self._slice("sram", g, ready)
        return g, ready

    def update(self, t: int, upd):
        """Generator: the end-of-phase neuron update (T6), starting at ``t`` (now)."""
        g, t2 = yield from self.read_sram(t, upd.reads)
        end = t2 + upd.cycles
        self._slice("update", t2, end)
        yield at(self.env, end)
        self.compute += end - g
        return end

    def _slice(self, kind: str, start: int, end: int) -> None:
        if self.record is not None and end > start:
            self.record.append((self.index, kind, start, end))

"""The PE SRAM (weights and neuron state), shared by ``sram.sharing`` consecutive PEs (T5).

An access of ``words`` words requested in cycle ``t`` waits for the SRAM's port (a T3 unit,
key ``(t, PE index)``), holds it ``ceil(words / banks)`` cycles from the grant ``g``, and has its
data ready at ``g + ceil(words / banks) + read_latency - 1``.
"""

from __future__ import annotations

from hwsim.components.arbiter import Arbiter
from hwsim.components.clock import cycle


class SRAM:
    def __init__(self, env, index: int, banks: int, read_latency: int):
        self.env = env
        self.index = index
        self.banks = banks
        self.read_latency = read_latency
        self.port = Arbiter(env, f"sram{index}")

    def occupancy(self, words: int) -> int:
        return -(-words // self.banks)

    def read(self, pe: int, words: int):
        """Generator (use ``yield from``): request now, return ``(grant cycle, data-ready cycle)``."""
        busy = self.occupancy(words)
        g = yield self.port.request((cycle(self.env), pe), busy)
        return g, g + busy + self.read_latency - 1

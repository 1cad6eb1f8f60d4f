"""A custom PE whose event decoder is bit-serial.

The built-in decoder takes ``pe.decode_cycles`` per event. This one also shifts the event's
address in ``bits_per_cycle`` bits per cycle, so decoding one event takes
``decode_cycles + ceil(address_bits / bits_per_cycle)`` cycles. Everything else (queue, SRAM,
compute, update, stall accounting) is the built-in PE's process, reused by subclassing.

Use it from an architecture file::

    pe:
      component: serial_decoder
      component_params: {bits_per_cycle: 4, address_bits: 16}

and load it: ``hwsim run --plugin examples/plugins/serial_decoder.py ...``. It has no fast
kernel, so the run uses the detailed engine (and says so).
"""

import math

from hwsim.components import ComponentParam, register
from hwsim.components.pe import PE


@register("serial_decoder")
class SerialDecoderPE(PE):
    """A PE with a bit-serial event decoder."""

    params = PE.params + (
        ComponentParam("bits_per_cycle", int, 4, "bits/cycle",
                       "Address bits the serial decoder shifts in per cycle.", min=1, max=64),
        ComponentParam("address_bits", int, 16, "bits",
                       "Address bits of an event (set it to the arch's noc.address_bits).",
                       min=1, max=64),
    )
    has_fast_kernel = False

    def decode_cycles(self, k: int, j: int) -> int:
        serial = math.ceil(self.param.address_bits / self.param.bits_per_cycle)
        return super().decode_cycles(k, j) + serial

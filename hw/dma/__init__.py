"""AXI4 DRAM side: the bus signatures (:mod:`hw.dma.axi`) and the DMA engines: :class:`AxiReader` (DRAM -> stream) and :class:`AxiWriter` (stream -> DRAM).

Both take byte-addressed commands ``{addr, length}`` (``length`` >= 1 bytes, any alignment)
and exchange *packed* data beats ``{data, count, last}`` with the fabric: byte ``i`` of a beat
sits in bits ``8i .. 8i+7`` (little-endian, byte 0 = lowest address); every beat of a command
but the last carries a full word (``count = data_width / 8``); the last carries
``count`` in 1..data_width/8 valid bytes (bytes ``0 .. count-1``).

AXI side: INCR bursts of full-width beats, at most 256 beats, never across a 4 KiB boundary,
AR/AW registered (valid held until ready), one ID (0), in-order responses.

Errors: a response with ``rresp`` / ``bresp`` != OKAY latches the sticky ``error`` output
(the response code, 2 = SLVERR, 3 = DECERR). The engine then issues no new AR / AW; what is in
flight is drained (R beats and B responses are accepted; W beats owed for already-issued AWs
are sent with ``wstrb = 0``, so nothing more is written), new commands and write data are
accepted and discarded so that producers never hang. A one-cycle ``clear`` pulse requests a
soft reset: it takes effect as soon as no AXI transaction is in flight and returns the engine
to idle with ``error = 0`` (``clear`` also aborts a healthy engine the same way).
"""

from hw.dma.bursts import MAX_BURST_BEATS, beat_layout, cmd_layout
from hw.dma.engine import AxiDma
from hw.dma.reader import AxiReader
from hw.dma.writer import AxiWriter

__all__ = ["AxiReader", "AxiWriter", "AxiDma", "cmd_layout", "beat_layout", "MAX_BURST_BEATS"]

"""Both DMA engines behind one AXI4 master."""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from hw.dma.axi import AXI4Signature
from hw.dma.reader import AxiReader
from hw.dma.writer import AxiWriter

__all__ = ["AxiDma"]


class AxiDma(wiring.Component):
    """An :class:`AxiReader` and an :class:`AxiWriter` behind one AXI4 master ``m_axi``.

    Members: ``rd_cmd``, ``rd_data``, ``rd_error``, ``rd_clear``, ``rd_busy`` (the reader's
    ``cmd``, ``data``, ``error``, ``clear``, ``busy``) and ``wr_cmd``, ``wr_data``,
    ``wr_done``, ``wr_error``, ``wr_clear``, ``wr_busy`` (the writer's).
    """

    def __init__(self, *, data_width=128, addr_width=40, max_outstanding_reads=8,
                 max_outstanding_writes=8, read_buffer_depth=512):
        self.reader = AxiReader(data_width=data_width, addr_width=addr_width,
                                max_outstanding=max_outstanding_reads, fifo_depth=read_buffer_depth)
        self.writer = AxiWriter(data_width=data_width, addr_width=addr_width,
                                max_outstanding=max_outstanding_writes)
        self.data_width, self.addr_width = data_width, addr_width
        rs, ws = self.reader.signature.members, self.writer.signature.members
        super().__init__({
            "rd_cmd": rs["cmd"], "rd_data": rs["data"], "rd_error": rs["error"],
            "rd_clear": rs["clear"], "rd_busy": rs["busy"],
            "wr_cmd": ws["cmd"], "wr_data": ws["data"], "wr_done": ws["done"],
            "wr_error": ws["error"], "wr_clear": ws["clear"], "wr_busy": ws["busy"],
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=data_width)),
        })

    @classmethod
    def from_config(cls, config):
        return cls(data_width=config.axi_data_width, addr_width=config.axi_addr_width,
                   max_outstanding_reads=config.max_outstanding_reads,
                   max_outstanding_writes=config.max_outstanding_writes,
                   read_buffer_depth=config.read_buffer_depth)

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = reader = self.reader
        m.submodules.writer = writer = self.writer
        for engine, prefix in ((reader, "rd_"), (writer, "wr_")):
            for name in ("cmd", "data", "done"):
                if name in engine.signature.members:
                    wiring.connect(m, wiring.flipped(getattr(self, prefix + name)),
                                   getattr(engine, name))
            m.d.comb += [getattr(self, prefix + "error").eq(engine.error),
                         getattr(self, prefix + "busy").eq(engine.busy),
                         engine.clear.eq(getattr(self, prefix + "clear"))]
            for name, member in engine.m_axi.signature.members.items():
                outer, inner = getattr(self.m_axi, name), getattr(engine.m_axi, name)
                if member.flow == Out:
                    m.d.comb += outer.eq(inner)
                else:
                    m.d.comb += inner.eq(outer)
        return m

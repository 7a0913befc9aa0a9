"""The accelerator: AXI4-Lite registers, AXI4 DRAM master, interrupt."""

from amaranth import Cat, Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from hw.dma.axi import AXI4LiteSignature, AXI4Signature
from hw.config import AccelConfig
from hw.control.controller import Controller
from hw.datapath.core import ComputeCore
from hw.control.csr import CsrBank
from hw.dma import AxiDma
from hw.contract import COUNTERS, CONTROL_SOFT_RESET, CONTROL_START, register_map
from hw.control.sequencer import COMMAND_STREAMS, Sequencer
from hw.control.tiler import LayerDescriptor, Tiler
from hw.control.steps import StepWalker

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    """A convolution accelerator generated from an :class:`AccelConfig`.

    ``s_axil``: AXI4-Lite slave (``csr_addr_width``), the registers of
    :func:`hw.contract.register_map`.
    ``m_axi``: AXI4 master to DRAM (``axi_data_width`` / ``axi_addr_width``).
    ``irq``: high while IRQ_ENABLE bit 0 and IRQ_STATUS bit 0 (a layer ended) are set.

    Inside: :class:`CsrBank` -> :class:`Controller`, which validates the layer, loads the
    activation table and starts the :class:`StepWalker`, whose one walk of the loop nest
    feeds the :class:`Tiler` (DMA commands, run through :class:`AxiDma`) and the
    :class:`Sequencer` (the matching commands to the :class:`ComputeCore`).
    """

    def __init__(self, cfg: AccelConfig = AccelConfig()):
        self.cfg = cfg
        self.register_map = register_map(cfg)
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=cfg.csr_addr_width)),
            "m_axi": Out(AXI4Signature(addr_width=cfg.axi_addr_width, data_width=cfg.axi_data_width)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.csr = csr = CsrBank(self.register_map, addr_width=cfg.csr_addr_width)
        m.submodules.controller = ctl = Controller(cfg)
        core = ComputeCore(cfg)
        walker = StepWalker(depth=2 * cfg.sequencer_queue_depth)
        tiler = Tiler(addr_width=cfg.axi_addr_width)
        sequencer = Sequencer(core)
        for name, block in (("core", core), ("walker", walker), ("tiler", tiler), ("sequencer", sequencer)):
            m.submodules[name] = ResetInserter(ctl.core_reset)(block)
        m.submodules.dma = dma = AxiDma.from_config(cfg)

        wiring.connect(m, wiring.flipped(self.s_axil), csr.s_axil)
        wiring.connect(m, dma.m_axi, wiring.flipped(self.m_axi))

        # registers <-> controller
        descriptor = Signal(LayerDescriptor)
        for reg in self.register_map.descriptor_registers():
            field = getattr(descriptor, reg.field_name)
            part = field[32 * reg.half:32 * reg.half + 32]
            m.d.comb += part.eq(getattr(csr, reg.name.lower())[:len(part)])
        m.d.comb += [
            ctl.descriptor.eq(descriptor),
            ctl.table_addr.eq(Cat(csr.table_addr_lo, csr.table_addr_hi)),
            ctl.window_base.eq(Cat(csr.window_base_lo, csr.window_base_hi)),
            ctl.window_size.eq(Cat(csr.window_size_lo, csr.window_size_hi)),
            ctl.zero_point.eq(csr.input_zero_point[:8]),
            ctl.start.eq(csr.control_write & (csr.control & CONTROL_START).any()),
            ctl.soft_reset.eq(csr.control_write & (csr.control & CONTROL_SOFT_RESET).any()),
            csr.status.eq(Cat(ctl.busy, ctl.done, ctl.error_code != 0)),
            csr.error_code.eq(ctl.error_code),
            csr.irq_status_set.eq(ctl.layer_end),
            self.irq.eq(csr.irq_enable[0] & csr.irq_status[0]),
        ]
        for name in COUNTERS:
            value = getattr(ctl, name)
            m.d.comb += [getattr(csr, f"{name}_lo").eq(value[:32]),
                         getattr(csr, f"{name}_hi").eq(value[32:])]

        # controller -> step walker -> tiler, sequencer
        connect(m, ctl.walker_desc, walker.desc)
        connect(m, walker.tiler_steps, tiler.steps)
        connect(m, walker.seq_steps, sequencer.steps)
        connect(m, tiler.cmd, ctl.tiler_cmd)
        m.d.comb += [tiler.descriptor.eq(ctl.active_descriptor),
                     sequencer.descriptor.eq(ctl.active_descriptor),
                     sequencer.zero_point.eq(ctl.active_zero_point),
                     core.pointwise.eq((ctl.active_descriptor.kernel_size == 1) & ~ctl.active_descriptor.depthwise),
                     core.depthwise.eq(ctl.active_descriptor.depthwise)]
        for name in COMMAND_STREAMS:
            connect(m, getattr(sequencer, name), getattr(core, name))

        # controller <-> DMA
        connect(m, ctl.rd_cmd, dma.rd_cmd)
        connect(m, dma.rd_data, ctl.rd_data)
        connect(m, ctl.wr_cmd, dma.wr_cmd)
        connect(m, dma.wr_done, ctl.wr_done)
        m.d.comb += [ctl.rd_error.eq(dma.rd_error), ctl.wr_error.eq(dma.wr_error),
                     ctl.rd_busy.eq(dma.rd_busy), ctl.wr_busy.eq(dma.wr_busy),
                     dma.rd_clear.eq(ctl.rd_clear), dma.wr_clear.eq(ctl.wr_clear)]

        # data: DMA -> controller routing -> core; core -> DMA writer
        def bridge(source, sink):
            m.d.comb += [sink.valid.eq(source.valid), sink.payload.eq(source.payload.as_value()),
                         source.ready.eq(sink.ready)]
        for name in ("iact_in", "weight_in", "params_in"):
            bridge(getattr(ctl, name), getattr(core, name))
        connect(m, ctl.table, core.table)
        connect(m, ctl.out_rows, core.out_rows)
        bridge(core.out, dma.wr_data)
        m.d.comb += [
            ctl.write_beat.eq(dma.wr_data.valid & dma.wr_data.ready),
            ctl.write_bytes.eq(dma.wr_data.payload.count),
            ctl.array_busy.eq(core.array_busy), ctl.stall_input.eq(core.stall_input),
            ctl.stall_weights.eq(core.stall_weights), ctl.stall_output.eq(core.stall_output),
        ]
        return m

"""The accelerator: AXI4-Lite registers, AXI4 DRAM master, interrupt."""

from amaranth import Cat, Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from hw.dma.axi import AXI4LiteSignature, AXI4Signature
from hw.config import AccelConfig
from hw.control.controller import Controller
from hw.datapath.core import ComputeCore
from hw.datapath.pipeline import registered
from hw.control.csr import CsrBank
from hw.dma import AxiDma
from hw.contract import COUNTERS, CONTROL_SOFT_RESET, CONTROL_START, CONTROL_START_QUEUE, register_map
from hw.control.queue import POOL_COUNTERS, CommandQueue
from hw.datapath.pool_engine import PoolEngine
from hw.control.sequencer import COMMAND_STREAMS, Sequencer
from hw.control.tiler import LayerDescriptor, Tiler
from hw.control.steps import StepWalker

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    """A convolution accelerator generated from an :class:`AccelConfig`.

    ``s_axil``: AXI4-Lite slave (``csr_addr_width``), the registers of
    :func:`hw.contract.register_map`.
    ``m_axi``: AXI4 master to DRAM (``axi_data_width`` / ``axi_addr_width``).
    ``irq``: high while IRQ_ENABLE bit 0 and IRQ_STATUS bit 0 (a layer or a queue ended)
    are set.

    Inside: :class:`CsrBank` -> :class:`CommandQueue`, which takes a single layer from the
    registers or fetches a list of commands from DRAM (and writes their trace) ->
    :class:`Controller`, which validates each layer, loads the
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

        # registers -> command queue -> controller
        m.submodules.queue = queue = CommandQueue(cfg)
        descriptor = Signal(LayerDescriptor)
        too_wide = []           # a register value with bits above its field: BAD_COMMAND
        for reg in self.register_map.descriptor_registers():
            field = getattr(descriptor, reg.field_name)
            part = field[32 * reg.half:32 * reg.half + 32]
            value = getattr(csr, reg.name.lower())
            m.d.comb += part.eq(value[:len(part)])
            if len(part) < 32:
                too_wide.append(value[len(part):] != 0)
        m.d.comb += queue.descriptor_too_wide.eq(Cat(*too_wide).any())
        control = csr.control_write.replicate(32) & csr.control
        soft_reset = Signal()
        m.d.comb += soft_reset.eq((control & CONTROL_SOFT_RESET).any())
        # the pooling engine restarts clean after a soft reset or the queue's abort of a pass
        pool_reset = Signal()
        m.submodules.pool = pool = ResetInserter(pool_reset)(PoolEngine(cfg))

        def pair(name):
            return Cat(getattr(csr, f"{name}_lo"), getattr(csr, f"{name}_hi"))
        m.d.comb += [
            queue.descriptor.eq(descriptor),
            queue.table_addr.eq(pair("table_addr")),
            queue.zero_point.eq(csr.input_zero_point[:8]),
            queue.queue_addr.eq(pair("queue_addr")),
            queue.queue_length.eq(csr.queue_length),
            queue.trace_addr.eq(pair("trace_addr")),
            queue.window_base.eq(pair("window_base")),
            queue.window_size.eq(pair("window_size")),
            queue.start.eq((control & CONTROL_START).any()),
            queue.start_queue.eq((control & CONTROL_START_QUEUE).any() & ~(control & CONTROL_START).any()),
            queue.soft_reset.eq(soft_reset),
            # a command starts the controller when it is idle
            queue.layer.ready.eq(~ctl.busy),
            ctl.start.eq(queue.layer.valid & ~ctl.busy),
            ctl.descriptor.eq(queue.layer.payload.descriptor),
            ctl.table_addr.eq(queue.layer.payload.table_addr),
            ctl.zero_point.eq(queue.layer.payload.zero_point),
            ctl.window_base.eq(pair("window_base")),
            ctl.window_size.eq(pair("window_size")),
            ctl.soft_reset.eq(soft_reset),
            queue.layer_end.eq(ctl.layer_end),
            queue.layer_error.eq(ctl.error_code),
            csr.status.eq(Cat(queue.busy | ctl.busy | pool.busy, queue.done, queue.error_code != 0)),
            csr.error_code.eq(queue.error_code),
            csr.queue_index.eq(queue.index),
            self.irq.eq(csr.irq_enable[0] & csr.irq_status[0]),
        ]
        # a finished list or layer raises the interrupt status a cycle later (registered)
        m.d.sync += csr.irq_status_set.eq(queue.finished)
        for name in COUNTERS:
            value = getattr(ctl, name)
            m.d.comb += [getattr(csr, f"{name}_lo").eq(value[:32]),
                         getattr(csr, f"{name}_hi").eq(value[32:]),
                         getattr(queue, f"layer_{name}").eq(value)]
        m.d.comb += [csr.queue_cycles_lo.eq(queue.cycles[:32]), csr.queue_cycles_hi.eq(queue.cycles[32:])]

        # controller -> step walker -> tiler, sequencer
        connect(m, ctl.walker_desc, walker.desc)
        connect(m, walker.tiler_steps, tiler.steps)
        connect(m, walker.seq_steps, sequencer.steps)
        connect(m, tiler.cmd, ctl.tiler_cmd)
        # the core's modes, registered: the descriptor is set at a layer's start, many cycles
        # before its first command reaches the core
        pointwise = registered(m, (ctl.active_descriptor.kernel_size == 1) & ~ctl.active_descriptor.depthwise,
                               "pointwise")
        depthwise = registered(m, ctl.active_descriptor.depthwise, "depthwise")
        m.d.comb += [tiler.descriptor.eq(ctl.active_descriptor),
                     sequencer.descriptor.eq(ctl.active_descriptor),
                     sequencer.zero_point.eq(ctl.active_zero_point),
                     core.pointwise.eq(pointwise), core.depthwise.eq(depthwise)]
        for name in COMMAND_STREAMS:
            connect(m, getattr(sequencer, name), getattr(core, name))

        # the DMA engines: the command queue's (fetches, trace writes) between commands, the
        # pooling engine's during a pooling pass, else the controller's
        connect(m, queue.pool, pool.cmd)
        m.d.comb += pool_reset.eq(soft_reset | queue.rd_clear)
        m.d.comb += [pool.window_base.eq(pair("window_base")), pool.window_size.eq(pair("window_size")),
                     queue.pool_done.eq(pool.done), queue.pool_code.eq(pool.code),
                     *(getattr(queue, f"pool_{name}").eq(getattr(pool, name)) for name in POOL_COUNTERS)]
        # the owner is registered (one cycle behind the clients' states, which hold their
        # requests until served; ownership changes only with nothing in flight)
        owner_queue, owner_pool, owner_ctl = Signal(), Signal(), Signal(init=1)
        m.d.sync += [owner_queue.eq(queue.dma_owner), owner_pool.eq(~queue.dma_owner & pool.busy),
                     owner_ctl.eq(~queue.dma_owner & ~pool.busy)]
        clients = ((owner_queue, queue), (owner_pool, pool), (owner_ctl, ctl))
        for name in ("rd_cmd", "wr_cmd"):
            sink = getattr(dma, name)
            for select, client in clients:
                source = getattr(client, name)
                m.d.comb += source.ready.eq(select & sink.ready)
                with m.If(select):
                    m.d.comb += [sink.valid.eq(source.valid), sink.payload.eq(source.payload)]
        for name in ("rd_data", "wr_done"):
            source = getattr(dma, name)
            for select, client in clients:
                sink = getattr(client, name)
                m.d.comb += [sink.valid.eq(select & source.valid), sink.payload.eq(source.payload)]
                with m.If(select):
                    m.d.comb += source.ready.eq(sink.ready)
        m.d.comb += [ctl.rd_error.eq(dma.rd_error), ctl.wr_error.eq(dma.wr_error),
                     ctl.rd_busy.eq(dma.rd_busy), ctl.wr_busy.eq(dma.wr_busy),
                     queue.rd_error.eq(dma.rd_error), queue.wr_error.eq(dma.wr_error),
                     queue.rd_busy.eq(dma.rd_busy), queue.wr_busy.eq(dma.wr_busy),
                     pool.rd_error.eq(dma.rd_error), pool.wr_error.eq(dma.wr_error),
                     dma.rd_clear.eq(ctl.rd_clear | queue.rd_clear),
                     dma.wr_clear.eq(ctl.wr_clear | queue.wr_clear)]

        # data: DMA -> controller routing -> core; core -> DMA writer
        def bridge(source, sink):
            m.d.comb += [sink.valid.eq(source.valid), sink.payload.eq(source.payload.as_value()),
                         source.ready.eq(sink.ready)]
        for name in ("iact_in", "weight_in", "params_in", "residual_in"):
            bridge(getattr(ctl, name), getattr(core, name))
        # the fused residual addition of the running layer
        active = ctl.active_descriptor
        m.d.comb += [core.add_params.enable.eq(active.residual),
                     *(getattr(core.add_params, name).eq(getattr(active, f"add_{name}"))
                       for name in ("ma", "mb", "shift", "za", "zb", "zo", "lo"))]
        connect(m, ctl.table, core.table)
        connect(m, ctl.out_rows, core.out_rows)
        # write data: the core's output rows, the queue's trace records or the pooled rows
        for select, source in ((owner_queue, queue.wr_data), (owner_pool, pool.wr_data), (owner_ctl, core.out)):
            m.d.comb += source.ready.eq(select & dma.wr_data.ready)
            with m.If(select):
                m.d.comb += [dma.wr_data.valid.eq(source.valid),
                             dma.wr_data.payload.eq(source.payload.as_value())]
        m.d.comb += [
            ctl.write_beat.eq(owner_ctl & dma.wr_data.valid & dma.wr_data.ready),
            ctl.write_bytes.eq(dma.wr_data.payload.count),
            ctl.array_busy.eq(core.array_busy), ctl.stall_input.eq(core.stall_input),
            ctl.stall_weights.eq(core.stall_weights), ctl.stall_output.eq(core.stall_output),
        ]
        return m

"""Sequencer: issues the compute core's block commands for every step of a layer's L3 loop nest."""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.datapath.core import ComputeCore
from hw.contract import CHANNEL_BLOCK, PARAM_BYTES, LayerDescriptor
from hw.datapath.pipeline import registered
from hw.control.steps import step_layout

__all__ = ["Sequencer", "COMMAND_STREAMS"]

# the ComputeCore command streams this block drives (out_rows comes from the Tiler)
COMMAND_STREAMS = ("iact_rows", "iact_load", "iact_replay", "weight_rows", "weight_load",
                   "weight_replay", "params_rows", "lb_cmd", "pw_cmd", "out_cmd")


class Sequencer(wiring.Component):
    """Issues, per step of the loop nest, the commands of ``host.golden.schedule.step_commands``
    (3x3 layers: windows from the line buffer, ``lb_cmd``; 1x1 layers: channel-packed
    windows from the pointwise reader, ``pw_cmd``, a flat step as one row; depthwise
    layers: KP channels at once through the line buffer's lanes).

    ``steps`` (In stream of :data:`hw.control.steps.step_layout`): the steps, from
    :class:`hw.control.steps.StepWalker` (the Tiler gets the same ones, so the core's data
    and commands line up). ``descriptor`` and ``zero_point`` (In): the layer, held until
    its last step's commands are queued. ``busy``: a step is being processed. Each step
    costs about ``2 + max(ceil(T_K / KP), ceil(T_YO / YP) / 16 + 16)`` cycles (a flat
    step: ``T_XO * T_YO`` columns), which the command queues (``sequencer_queue_depth``
    deep) hide behind the step's compute time. The descriptor
    must have been validated (see :class:`Controller`).

    Outputs: one stream per name in ``COMMAND_STREAMS``, with ComputeCore's layouts.
    """

    def __init__(self, core: ComputeCore):
        self.kp, self.yp, self.word_bytes = core.cfg.kp, core.cfg.yp, core.word_bytes
        self.queue_depth = core.cfg.sequencer_queue_depth
        self.depthwise_lanes = core.cfg.depthwise_lanes
        self.layouts = {name: core.signature.members[name].signature.members["payload"].shape
                        for name in COMMAND_STREAMS}
        super().__init__({
            "steps": In(stream.Signature(step_layout)),
            "descriptor": In(LayerDescriptor),
            "zero_point": In(8),
            "busy": Out(1),
            **{name: Out(stream.Signature(self.layouts[name])) for name in COMMAND_STREAMS},
        })

    def elaborate(self, platform):
        m = Module()
        d = self.descriptor

        queues = {}
        for name in COMMAND_STREAMS:
            q = fifo.SyncFIFOBuffered(width=self.layouts[name].size, depth=self.queue_depth)
            m.submodules[f"queue_{name}"] = queues[name] = q
            port = getattr(self, name)
            m.d.comb += [port.valid.eq(q.r_rdy), port.payload.eq(q.r_data), q.r_en.eq(port.ready)]

        st = Signal(step_layout)
        tk, tc, txo, tyo = st.tk, st.tc, st.txo, st.tyo
        rows_in, cols_in = st.rows_in.as_unsigned()[:16], st.cols_in.as_unsigned()[:16]

        # the layer's kinds, registered (the descriptor is held from before the first step)
        kernel1 = registered(m, d.kernel_size == 1, "kernel1")
        depthwise = registered(m, d.depthwise, "depthwise")
        flat = st.flat
        # ceil(tk / KP) and ceil(out_cols / YP) by repeated subtraction, both at once
        groups_k, groups = Signal(32), Signal(32)
        rest_k, rest_y = Signal(signed(18)), Signal(signed(34))
        dividing = (rest_k > 0) | (rest_y > 0)

        ready = Signal()
        m.d.comb += ready.eq(1)
        for q in queues.values():
            with m.If(~q.w_rdy):
                m.d.comb += ready.eq(0)

        # the step's sizes, registered in two levels from ``st`` (held from TAKE through
        # DIVIDE's two or more cycles, so both levels are ready by EMIT)
        shift = self.word_bytes.bit_length() - 1
        row_words = Signal(16)
        m.d.comb += row_words.eq((cols_in + self.word_bytes - 1) >> shift)
        pixels = registered(m, (rows_in * cols_in)[:32], "pixels")
        rows_words = registered(m, (rows_in * row_words)[:32], "rows_words")
        tc_rows = registered(m, (tc * rows_in)[:32], "tc_rows")
        # a flat step: one row of rows_in * cols_in pixels
        flat_words = Signal(32)
        m.d.comb += flat_words.eq((pixels + self.word_bytes - 1) >> shift)
        block_words = Mux(kernel1, Mux(flat, flat_words, rows_words), Mux(depthwise, rows_words, 1))
        words = registered(m, Mux(kernel1 & flat, tc * flat_words, tc_rows * row_words)[:32], "words")
        channels = Mux(kernel1, st.blocks, Mux(depthwise, 1, tc))
        out_rows = Mux(flat, 1, txo)
        out_cols = registered(m, Mux(flat, txo * tyo, tyo)[:32], "out_cols")
        pw_row_words = Mux(flat, flat_words, row_words)
        fields = {
            "iact_rows": {"rows": Mux(flat, tc, tc_rows), "row_bytes": Mux(flat, pixels, cols_in)},
            "iact_load": {"words": words, "block_words": block_words,
                          "block_lanes": Mux(depthwise, self.depthwise_lanes, CHANNEL_BLOCK)},
            # 1x1: a block's rows per kernel group; depthwise: its lanes' channels' rows per group
            "iact_replay": {"words": words, "replays": Mux(depthwise, 1, groups_k),
                            "pointwise": kernel1 | depthwise,
                            "blocks": Mux(kernel1, st.blocks, Mux(depthwise, groups_k, 0)),
                            "rows": Mux(kernel1, out_rows, Mux(depthwise, rows_in, 0)),
                            "row_words": Mux(kernel1, pw_row_words, Mux(depthwise, row_words, 0)),
                            "row_step": Mux(kernel1 & ~flat, Mux(d.stride == 2, row_words << 1, row_words),
                                            Mux(depthwise, row_words, 0)),
                            "block_words": block_words},
            # one row of T_K kernels' 9 weights per channel block (1x1), channel (3x3) or
            # for the whole tile (depthwise)
            "weight_rows": {"rows": channels, "row_bytes": tk * CHANNEL_BLOCK},
            "weight_load": {"kernels": tk, "channels": channels, "kernel_groups": groups_k},
            "weight_replay": {"kernel_groups": groups_k, "channels": channels},
            "params_rows": {"rows": tk, "row_bytes": PARAM_BYTES},
            "lb_cmd": {"channels": Mux(depthwise, groups_k, tc * groups_k), "rows_in": rows_in, "cols_in": cols_in,
                       "out_rows": txo, "groups": groups, "pad_top": st.pad_top, "pad_left": st.pad_left,
                       "stride": d.stride, "kernel": d.kernel_size, "zero_point": self.zero_point},
            "pw_cmd": {"channels": st.blocks * groups_k, "out_rows": out_rows, "groups": groups,
                       "row_words": pw_row_words, "stride": Mux(flat, 1, d.stride)},
            "out_cmd": {"kernel_groups": groups_k, "channels": channels, "out_rows": out_rows,
                        "groups": groups, "init": st.first_c, "drain": st.last_c, "kernels": tk,
                        "out_cols": out_cols},
        }
        for name, values in fields.items():
            view = Signal(self.layouts[name], name=f"{name}_cmd")
            for field_name, value in values.items():
                m.d.comb += getattr(view, field_name).eq(value)
            m.d.comb += queues[name].w_data.eq(view.as_value())

        with m.FSM():
            with m.State("TAKE"):
                m.d.comb += self.steps.ready.eq(1)
                with m.If(self.steps.valid):
                    p = self.steps.payload
                    m.d.sync += [st.eq(p), rest_k.eq(p.tk), rest_y.eq(Mux(p.flat, p.txo * p.tyo, p.tyo)),
                                 groups_k.eq(0), groups.eq(0)]
                    m.next = "DIVIDE"
            with m.State("DIVIDE"):
                m.d.comb += self.busy.eq(1)
                with m.If(rest_k > 0):
                    m.d.sync += [rest_k.eq(rest_k - self.kp), groups_k.eq(groups_k + 1)]
                with m.If(rest_y > 16 * self.yp):
                    m.d.sync += [rest_y.eq(rest_y - 16 * self.yp), groups.eq(groups + 16)]
                with m.Elif(rest_y > 0):
                    m.d.sync += [rest_y.eq(rest_y - self.yp), groups.eq(groups + 1)]
                with m.If(~dividing):
                    m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(ready):
                    for name, q in queues.items():
                        enable = {"params_rows": st.first_c, "lb_cmd": ~kernel1, "pw_cmd": kernel1}
                        m.d.comb += q.w_en.eq(enable.get(name, 1))
                    m.next = "TAKE"
        return m

"""Sequencer: walks a layer's L3 loop nest and issues the compute core's block commands."""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.datapath.core import ComputeCore
from hw.contract import PARAM_BYTES, LayerDescriptor

__all__ = ["Sequencer", "COMMAND_STREAMS"]

# the ComputeCore command streams this block drives (out_rows comes from the Tiler)
COMMAND_STREAMS = ("iact_rows", "iact_load", "iact_replay", "weight_rows", "weight_load",
                   "weight_replay", "params_rows", "lb_cmd", "out_cmd")


class Sequencer(wiring.Component):
    """Issues, per (output tile, channel tile) step, the commands of ``host.golden.schedule``.

    The loop order is the Tiler's (``k0``, ``x0``, ``y0``, then ``c0`` innermost), so the
    core's data and commands line up. ``start`` (a pulse) takes ``descriptor`` and
    ``zero_point``; ``busy`` stays high until the last step's commands are queued. Each
    step costs ``2 + max(ceil(T_K / KP), ceil(T_YO / YP))`` cycles, which the command
    queues (``sequencer_queue_depth`` deep) hide behind the step's compute time. The descriptor must have been
    validated (see :class:`Controller`).

    Outputs: one stream per name in ``COMMAND_STREAMS``, with ComputeCore's layouts.
    """

    def __init__(self, core: ComputeCore):
        self.kp, self.yp, self.word_bytes = core.cfg.kp, core.cfg.yp, core.word_bytes
        self.queue_depth = core.cfg.sequencer_queue_depth
        self.layouts = {name: core.signature.members[name].signature.members["payload"].shape
                        for name in COMMAND_STREAMS}
        super().__init__({
            "start": In(1),
            "descriptor": In(LayerDescriptor),
            "zero_point": In(8),
            "busy": Out(1),
            **{name: Out(stream.Signature(self.layouts[name])) for name in COMMAND_STREAMS},
        })

    def elaborate(self, platform):
        m = Module()
        d = Signal(LayerDescriptor)
        zero_point = Signal(8)
        stride2 = d.stride == 2

        queues = {}
        for name in COMMAND_STREAMS:
            q = fifo.SyncFIFOBuffered(width=self.layouts[name].size, depth=self.queue_depth)
            m.submodules[f"queue_{name}"] = queues[name] = q
            port = getattr(self, name)
            m.d.comb += [port.valid.eq(q.r_rdy), port.payload.eq(q.r_data), q.r_en.eq(port.ready)]

        dim = signed(20)
        out_h = Signal(16)
        out_w = Signal(16)
        k0, x0, y0, c0 = (Signal(16, name=n) for n in ("k0", "x0", "y0", "c0"))

        def clip(total, start, tile):
            return Mux(total - start < tile, total - start, tile)

        tk, tc, txo, tyo = (Signal(16, name=n) for n in ("tk", "tc", "txo", "tyo"))
        rows_in, cols_in, pad_top, pad_left = (Signal(16, name="rows_in"), Signal(16, name="cols_in"),
                                               Signal(2, name="pad_top"), Signal(2, name="pad_left"))
        first_c, last_c = Signal(), Signal()

        def span(origin, count, size, lo_name):
            """Stored rows (or columns) [lo, hi) of an output span, and its padding."""
            top = Signal(dim, name=f"{lo_name}_top")
            m.d.comb += top.eq(Mux(stride2, origin << 1, origin) - d.padding)
            end = Signal(dim, name=f"{lo_name}_end")
            m.d.comb += end.eq(top + Mux(stride2, (count - 1) << 1, count - 1) + d.kernel_size)
            lo = Mux(top < 0, 0, top)
            hi = Mux(end > size, size, end)
            return hi - lo, lo - top

        rows, pad_r = span(x0, clip(out_h, x0, d.tile_xo), d.height, "row")
        cols, pad_c = span(y0, clip(out_w, y0, d.tile_yo), d.width, "col")

        # ceil(tk / KP) and ceil(tyo / YP) by repeated subtraction, both at once
        groups_k, groups = Signal(16), Signal(16)
        rest_k, rest_y = Signal(signed(18)), Signal(signed(18))
        dividing = (rest_k > 0) | (rest_y > 0)

        ready = Signal()
        m.d.comb += ready.eq(1)
        for q in queues.values():
            with m.If(~q.w_rdy):
                m.d.comb += ready.eq(0)

        words_per_row = (cols_in + self.word_bytes - 1) >> (self.word_bytes.bit_length() - 1)
        words = Signal(32)
        m.d.comb += words.eq(tc * rows_in * words_per_row)
        fields = {
            "iact_rows": {"rows": tc * rows_in, "row_bytes": cols_in},
            "iact_load": {"words": words},
            "iact_replay": {"words": words, "replays": groups_k},
            "weight_rows": {"rows": tk * tc, "row_bytes": d.kernel_size * d.kernel_size},
            "weight_load": {"kernels": tk, "channels": tc, "kernel": d.kernel_size},
            "weight_replay": {"kernel_groups": groups_k, "channels": tc},
            "params_rows": {"rows": tk, "row_bytes": PARAM_BYTES},
            "lb_cmd": {"channels": tc * groups_k, "rows_in": rows_in, "cols_in": cols_in,
                       "out_rows": txo, "groups": groups, "pad_top": pad_top, "pad_left": pad_left,
                       "stride": d.stride, "kernel": d.kernel_size, "zero_point": zero_point},
            "out_cmd": {"kernel_groups": groups_k, "channels": tc, "out_rows": txo, "groups": groups,
                        "init": first_c, "drain": last_c, "kernels": tk, "out_cols": tyo},
        }
        for name, values in fields.items():
            view = Signal(self.layouts[name], name=f"{name}_cmd")
            for field_name, value in values.items():
                m.d.comb += getattr(view, field_name).eq(value)
            m.d.comb += queues[name].w_data.eq(view.as_value())

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [d.eq(self.descriptor), zero_point.eq(self.zero_point),
                                 k0.eq(0), x0.eq(0), y0.eq(0), c0.eq(0)]
                    m.next = "SIZE"
            with m.State("SIZE"):
                m.d.comb += self.busy.eq(1)
                span_h = d.height + (d.padding << 1) - d.kernel_size
                span_w = d.width + (d.padding << 1) - d.kernel_size
                m.d.sync += [out_h.eq(Mux(stride2, span_h >> 1, span_h) + 1),
                             out_w.eq(Mux(stride2, span_w >> 1, span_w) + 1)]
                m.next = "GEOMETRY"
            with m.State("GEOMETRY"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [
                    tk.eq(clip(d.kernels, k0, d.tile_k)), tc.eq(clip(d.channels, c0, d.tile_c)),
                    txo.eq(clip(out_h, x0, d.tile_xo)), tyo.eq(clip(out_w, y0, d.tile_yo)),
                    rows_in.eq(rows), cols_in.eq(cols), pad_top.eq(pad_r), pad_left.eq(pad_c),
                    first_c.eq(c0 == 0), last_c.eq(c0 + d.tile_c >= d.channels),
                    rest_k.eq(clip(d.kernels, k0, d.tile_k)), rest_y.eq(clip(out_w, y0, d.tile_yo)),
                    groups_k.eq(0), groups.eq(0),
                ]
                m.next = "DIVIDE"
            with m.State("DIVIDE"):
                m.d.comb += self.busy.eq(1)
                with m.If(rest_k > 0):
                    m.d.sync += [rest_k.eq(rest_k - self.kp), groups_k.eq(groups_k + 1)]
                with m.If(rest_y > 0):
                    m.d.sync += [rest_y.eq(rest_y - self.yp), groups.eq(groups + 1)]
                with m.If(~dividing):
                    m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(ready):
                    for name, q in queues.items():
                        m.d.comb += q.w_en.eq(first_c if name == "params_rows" else 1)
                    # next step: c0 innermost, then y0, x0, k0
                    m.next = "GEOMETRY"
                    with m.If(c0 + d.tile_c < d.channels):
                        m.d.sync += c0.eq(c0 + d.tile_c)
                    with m.Else():
                        m.d.sync += c0.eq(0)
                        with m.If(y0 + d.tile_yo < out_w):
                            m.d.sync += y0.eq(y0 + d.tile_yo)
                        with m.Else():
                            m.d.sync += y0.eq(0)
                            with m.If(x0 + d.tile_xo < out_h):
                                m.d.sync += x0.eq(x0 + d.tile_xo)
                            with m.Else():
                                m.d.sync += x0.eq(0)
                                with m.If(k0 + d.tile_k < d.kernels):
                                    m.d.sync += k0.eq(k0 + d.tile_k)
                                with m.Else():
                                    m.next = "IDLE"
        return m

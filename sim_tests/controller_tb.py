"""cocotb testbench of hw.control.controller.Controller alone.

Small models stand in for everything around it: a loop-nest source (the step walker or
Tiler handshake, then the Tiler's commands from ``host.golden.tiling.commands``), a DMA
reader (answers ``rd_cmd`` with packed beats of a deterministic memory, in order, after a
random latency; can raise ``rd_error`` at a chosen beat), a DMA writer (accepts
``wr_cmd``, reports its beats on ``write_beat`` / ``write_bytes`` and answers ``wr_done``;
a write completes only after the reads issued before it, as in the accelerator; can raise
``wr_error``), and sinks for ``iact_in``, ``weight_in``, ``params_in``, ``table`` and
``out_rows``. Both engines model ``clear``: sticky error and ``busy`` until a few cycles
after it. Every stream the testbench drives or sinks pauses at random (``pause``).

One loop drives every input each cycle and records a trace of every port, so the checks
are exact cycle by cycle: the descriptor rules (each ``ErrorCode`` before any DRAM
access, against the host's own rules, ``host.golden.machine.descriptor_error``), whole layers (table read, routing by kind, writes, the
end of the layer after the last write's done, start / done / layer_end, the counters),
and aborts (DMA read and write errors, soft reset mid-layer and in idle).
"""

from collections import deque

import cocotb
from amaranth.lib import data
from cocotb.triggers import ReadOnly, RisingEdge

from host.golden import tiling
from host.golden.machine import ZERO_FIELDS, descriptor_error
from host.golden.quant import output_size
from host.runtime.sim.runner import params
from host.runtime.sim.streams import pack, seeded_rng, start_clock_and_reset, unpack
from hw.config import AccelConfig
from hw.contract import (CHANNEL_BLOCK, COUNTERS, TABLE_BYTES, DmaKind, ErrorCode, descriptor_layout,
                         layer_extents)
from hw.control.controller import Controller

SINKS = ("iact_in", "weight_in", "params_in", "table", "out_rows")
ROUTED = {DmaKind.IACT: "iact_in", DmaKind.WEIGHT: "weight_in", DmaKind.PARAMS: "params_in"}
CORE_INPUTS = ("array_busy", "stall_input", "stall_weights", "stall_output")
COUNTED = {"array_busy_cycles": "array_busy", "stall_input_cycles": "stall_input",
           "stall_weights_cycles": "stall_weights", "stall_output_cycles": "stall_output"}
TOP = 1 << 64


def mem(addr):
    """The byte the reader model returns at ``addr``."""
    return ((addr * 0x9E3779B1) >> 13) & 0xFF


def read_beats(addr, length, bus_bytes):
    """Packed beats of one read: full beats, the last with ``count`` bytes and ``last``."""
    beats = []
    for offset in range(0, length, bus_bytes):
        chunk = bytes(mem(addr + offset + i) for i in range(min(bus_bytes, length - offset)))
        beats.append({"data": int.from_bytes(chunk, "little"), "count": len(chunk),
                      "last": int(offset + bus_bytes >= length)})
    return beats


expected_code = descriptor_error


def _layout(shape):
    try:
        return data.Layout.cast(shape)
    except TypeError:
        return shape


class Bench:
    """Drives every input of the Controller once per cycle and records every port."""

    def __init__(self, dut, cfg, rng, pause):
        self.dut, self.cfg, self.rng, self.pause = dut, cfg, rng, pause
        self.bus_bytes = cfg.axi_data_width // 8
        members = Controller(cfg).signature.members
        self.layouts = {name: _layout(m.signature.members["payload"].shape)
                        for name, m in members.items() if m.is_signature}
        # the layer's start handshake: the step walker's descriptor, or (before it) the Tiler's
        self.start_stream = next(n for n in ("walker_desc", "tiler_desc") if n in self.layouts)
        self.streams = list(self.layouts)
        self.flags = ["busy", "done", "layer_end", "rd_clear", "wr_clear", "core_reset", "start",
                      "soft_reset", "rd_busy", "wr_busy", "write_beat", *CORE_INPUTS]
        if "seq_start" in members:
            self.flags.append("seq_start")
        self.values = ["error_code", "rd_error", "wr_error", "write_bytes", *COUNTERS]
        self.handles = {name: getattr(dut, name) for name in self.flags + self.values}
        self.stream_handles = {name: tuple(getattr(dut, f"{name}__{part}")
                                           for part in ("valid", "ready", "payload"))
                               for name in self.streams}
        self.trace = []
        self.requests = set()
        self.idle_write_beats = 0
        # loop-nest source
        self.script, self.tiler_q, self.tiler_showing = [], deque(), False
        # reader model
        self.rd_enabled, self.rd_q, self.rd_showing = True, deque(), False
        self.rd_accepted = self.rd_completed = 0
        self.rd_err, self.rd_clearing, self.rd_error_at = 0, None, None
        # writer model
        self.wr_enabled, self.wr_q = True, deque()
        self.wr_accepted = 0
        self.wr_err, self.wr_clearing, self.wr_error_at, self.wr_slow = 0, None, None, {}
        for name in ("start", "soft_reset", "rd_busy", "wr_busy", "write_beat", "write_bytes",
                     "rd_error", "wr_error", *CORE_INPUTS):
            getattr(dut, name).value = 0
        self.task = cocotb.start_soon(self._loop())

    def paused(self):
        return self.pause > 0 and self.rng.random() < self.pause

    def drive_stream(self, name, valid, payload=None):
        v, _, p = self.stream_handles[name]
        v.value = int(valid)
        if valid:
            p.value = pack(self.layouts[name], payload)

    def drive(self):
        dut, rng = self.dut, self.rng
        for name in ("start", "soft_reset"):
            getattr(dut, name).value = int(name in self.requests)
            self.requests.discard(name)
        for name in CORE_INPUTS:
            getattr(dut, name).value = rng.getrandbits(1)
        for name in SINKS:
            self.stream_handles[name][1].value = int(not self.paused())
        # loop-nest source: takes the descriptor, then offers the Tiler's commands
        self.stream_handles[self.start_stream][1].value = int(not self.paused())
        show = bool(self.tiler_q) and (self.tiler_showing or not self.paused())
        self.drive_stream("tiler_cmd", show, self.tiler_q[0] if show else None)
        self.tiler_showing = show
        # reader: in-order beats after a latency; the error replaces the chosen beat
        self.stream_handles["rd_cmd"][1].value = int(self.rd_enabled and not self.paused())
        show = False
        if self.rd_q and not self.rd_err and self.rd_clearing is None and self.rd_q[0]["wait"] == 0:
            head = self.rd_q[0]
            if self.rd_error_at == (head["index"], head["next"]):
                self.rd_err = 2
            elif self.rd_showing or not self.paused():
                show = True
        self.drive_stream("rd_data", show, self.rd_q[0]["beats"][self.rd_q[0]["next"]] if show else None)
        self.rd_showing = show
        dut.rd_error.value = self.rd_err
        dut.rd_busy.value = int(bool(self.rd_q) or bool(self.rd_err) or self.rd_clearing is not None)
        # writer: gate on earlier reads, one write_beat per beat, then wr_done (or the error)
        self.stream_handles["wr_cmd"][1].value = int(self.wr_enabled and not self.paused())
        beat, done = 0, False
        if self.wr_q and not self.wr_err and self.wr_clearing is None:
            head = self.wr_q[0]
            if head["stage"] == "data" and head["wait"] == 0 and not self.paused():
                beat = head["beats"][head["next"]]
            elif head["stage"] == "resp" and head["wait"] == 0:
                if self.wr_error_at == head["index"]:
                    self.wr_err = 2
                else:
                    done = True
        if self.idle_write_beats and not self.wr_q:       # a stray beat while idle
            beat = self.bus_bytes
            self.idle_write_beats -= 1
        dut.write_beat.value = int(beat > 0)
        dut.write_bytes.value = beat
        self.drive_stream("wr_done", done, 0)
        dut.wr_error.value = self.wr_err
        dut.wr_busy.value = int(bool(self.wr_q) or bool(self.wr_err) or self.wr_clearing is not None)

    def sample(self):
        s = {name: int(self.handles[name].value) for name in self.flags}
        s.update({name: self.handles[name].value.to_unsigned() for name in self.values})
        for name, (v, r, p) in self.stream_handles.items():
            s[name + ".v"] = valid = int(v.value)
            s[name] = unpack(self.layouts[name], p.value.to_unsigned()) if valid and int(r.value) else None
        return s

    def update(self, s):
        rng = self.rng
        if s[self.start_stream] is not None:
            self.tiler_q = deque(self.script)
        if s["tiler_cmd"] is not None:
            self.tiler_q.popleft()
            self.tiler_showing = False
        if s["core_reset"]:                  # the loop nest sits under core_reset
            self.tiler_q.clear()
            self.tiler_showing = False
        # reader
        if s["rd_cmd"] is not None:
            if not self.rd_err and self.rd_clearing is None:
                c = s["rd_cmd"]
                self.rd_q.append({"index": self.rd_accepted, "next": 0, "wait": rng.randrange(6),
                                  "beats": read_beats(c["addr"], c["length"], self.bus_bytes)})
            self.rd_accepted += 1
        if s["rd_data"] is not None:
            head = self.rd_q[0]
            head["next"] += 1
            self.rd_showing = False
            if head["next"] == len(head["beats"]):
                self.rd_q.popleft()
                self.rd_completed += 1
        elif self.rd_q and self.rd_q[0]["wait"]:
            self.rd_q[0]["wait"] -= 1
        self.rd_clearing = self._clear(s["rd_clear"], self.rd_clearing, "rd")
        # writer
        if s["wr_cmd"] is not None:
            if not self.wr_err and self.wr_clearing is None:
                n = s["wr_cmd"]["length"]
                self.wr_q.append({"index": self.wr_accepted, "stage": "gate", "gate": self.rd_accepted,
                                  "wait": 0, "next": 0,
                                  "beats": [min(self.bus_bytes, n - o) for o in range(0, n, self.bus_bytes)]})
            self.wr_accepted += 1
        if self.wr_q:
            head = self.wr_q[0]
            if head["stage"] == "gate" and self.rd_completed >= head["gate"]:
                head["stage"], head["wait"] = "data", rng.randrange(4)
            elif head["wait"]:
                head["wait"] -= 1
            elif head["stage"] == "data" and s["write_beat"]:
                head["next"] += 1
                if head["next"] == len(head["beats"]):
                    head["stage"] = "resp"
                    head["wait"] = rng.randrange(6) + self.wr_slow.get(head["index"], 0)
            elif head["stage"] == "resp" and s["wr_done"] is not None:
                self.wr_q.popleft()
        self.wr_clearing = self._clear(s["wr_clear"], self.wr_clearing, "wr")

    def _clear(self, pulse, clearing, engine):
        """``clear``: error and busy stay a few cycles (the drain), then the engine is idle."""
        if pulse:
            return 2 + self.rng.randrange(5)
        if clearing is None:
            return None
        if clearing > 1:
            return clearing - 1
        if engine == "rd":
            self.rd_q.clear()
            self.rd_err, self.rd_showing, self.rd_completed = 0, False, self.rd_accepted
        else:
            self.wr_q.clear()
            self.wr_err = 0
        return None

    async def _loop(self):
        while True:
            self.drive()
            await ReadOnly()
            s = self.sample()
            self.trace.append(s)
            await RisingEdge(self.dut.clk)
            self.update(s)

    # --- for the test coroutines -----------------------------------------------------

    def set_layer(self, d, table_addr, window, zero_point=0):
        dut = self.dut
        dut.descriptor.value = pack(descriptor_layout(), d)
        dut.table_addr.value = table_addr
        dut.window_base.value, dut.window_size.value = window
        dut.zero_point.value = zero_point

    async def cycles(self, n):
        for _ in range(n):
            await RisingEdge(self.dut.clk)

    async def pulse(self, name):
        """Drive ``name`` high for one cycle; the trace index of that cycle."""
        first = len(self.trace)
        self.requests.add(name)
        await self.until(lambda: any(s[name] for s in self.trace[first:]), 10, f"{name} pulse")
        return next(i for i in range(first, len(self.trace)) if self.trace[i][name])

    async def until(self, predicate, timeout, what):
        for _ in range(timeout):
            await RisingEdge(self.dut.clk)
            if predicate():
                return
        raise AssertionError(f"timed out after {timeout} cycles waiting for {what}")

    def fires(self, name, lo, hi=None):
        return [(i, self.trace[i][name]) for i in range(lo, len(self.trace) if hi is None else hi)
                if self.trace[i][name] is not None]

    def high(self, name, lo, hi=None):
        return [i for i in range(lo, len(self.trace) if hi is None else hi) if self.trace[i][name]]


# --- descriptors -------------------------------------------------------------------------

def base_layer():
    """A valid layer and its window, which it fills exactly."""
    d = dict(input_addr=0x10000, weight_addr=0x20000, params_addr=0x30000, output_addr=0x40000,
             channels=4, height=8, width=8, kernels=5, kernel_size=3, stride=1, padding=1,
             tile_k=5, tile_c=4, tile_xo=8, tile_yo=8, in_pitch=8, out_pitch=8)
    table_addr = 0x50000
    return d, table_addr, (0x10000, table_addr + TABLE_BYTES - 0x10000)


def directed_cases(cfg):
    """(expected, fields, table_addr, window) per rule: one field broken, and each limit
    met exactly (those pass the rule and fail the next one checked, or the window)."""
    d0, t0, w0 = base_layer()
    P1 = {"kernel_size": 1, "padding": 0}
    top = 1 << cfg.axi_addr_width
    empty = (0, 0)
    wend = w0[0] + w0[1]
    E = ErrorCode
    cases = [
        (E.BAD_KERNEL, {"kernel_size": 0}), (E.BAD_KERNEL, {"kernel_size": 2}),
        (E.BAD_STRIDE, {"stride": 0}), (E.BAD_STRIDE, {"stride": 3}),
        (E.BAD_PADDING, {"kernel_size": 1, "padding": 1}), (E.BAD_PADDING, {"padding": 3}),
        *[(E.ZERO_SIZE, {f: 0}) for f in ZERO_FIELDS],
        (E.ZERO_SIZE, {"padding": 0, "height": 2}), (E.ZERO_SIZE, {"padding": 0, "width": 2}),
        (E.BAD_PITCH, {"in_pitch": 7}), (E.BAD_PITCH, {"out_pitch": 7}),
        (E.BAD_PITCH, {"stride": 2, "out_pitch": 3}),
        (E.OUTSIDE_WINDOW, {"stride": 2, "out_pitch": 4, "window": empty}),
        # line buffer: input columns of a tile, stride 1 and 2
        (E.LINE_BUFFER_OVERFLOW, {"width": 65, "in_pitch": 65, "out_pitch": 65, "tile_yo": 65,
                                  "tile_xo": 1, "tile_c": 1}),
        (E.OUTSIDE_WINDOW, {"width": 64, "in_pitch": 64, "out_pitch": 64, "tile_yo": 64,
                            "tile_xo": 1, "tile_c": 1, "window": empty}),
        (E.LINE_BUFFER_OVERFLOW, {"stride": 2, "width": 100, "in_pitch": 100, "out_pitch": 100,
                                  "tile_yo": 32, "tile_xo": 1, "tile_c": 1}),
        (E.OUTSIDE_WINDOW, {"stride": 2, "width": 100, "in_pitch": 100, "out_pitch": 100,
                            "tile_yo": 31, "tile_xo": 1, "tile_c": 1, "window": empty}),
        # tile rows: input rows (stride 2), output rows (padding 2); at the limit (256) a
        # tile's row words (nine to a word) overflow the streaming buffer (28 words)
        (E.TILE_ROWS_OVERFLOW, {"stride": 2, "height": 300, "tile_xo": 128, "tile_k": 3,
                                "tile_c": 1, "tile_yo": 1}),
        (E.STREAMING_BUFFER_OVERFLOW, {"stride": 2, "height": 300, "tile_xo": 127, "tile_k": 3,
                                       "tile_c": 1, "tile_yo": 1}),
        (E.OUTSIDE_WINDOW, {"stride": 2, "height": 300, "tile_xo": 125, "tile_k": 3,
                            "tile_c": 1, "tile_yo": 1, "window": empty}),
        (E.TILE_ROWS_OVERFLOW, {"padding": 2, "height": 256, "tile_xo": 257, "tile_c": 1,
                                "out_pitch": 10, "tile_yo": 1}),
        (E.STREAMING_BUFFER_OVERFLOW, {"padding": 2, "height": 256, "tile_xo": 256, "tile_c": 1,
                                       "out_pitch": 10, "tile_yo": 1}),
        # streaming buffer (28 words of 9 row words): 8 rows of one row word per channel
        (E.STREAMING_BUFFER_OVERFLOW, {"channels": 40, "tile_c": 32}),
        (E.OUTSIDE_WINDOW, {"channels": 40, "tile_c": 31, "window": empty}),
        # ... a 1x1 tile (not flat: the output pitched): 8 rows of one word per 9-channel block
        (E.STREAMING_BUFFER_OVERFLOW, {**P1, "channels": 40, "tile_c": 36, "out_pitch": 9}),
        (E.OUTSIDE_WINDOW, {**P1, "channels": 40, "tile_c": 27, "out_pitch": 9, "window": empty}),
        (E.STREAMING_BUFFER_OVERFLOW, {**P1, "channels": 27, "tile_c": 28, "out_pitch": 9}),   # T_C's 4 blocks count
        # ... a flat 1x1 tile: one row of 64 pixels, 4 words, per block
        (E.STREAMING_BUFFER_OVERFLOW, {**P1, "channels": 80, "tile_c": 72}),
        (E.OUTSIDE_WINDOW, {**P1, "channels": 80, "tile_c": 63, "window": empty}),
        # ... a 1x1 stride-2 tile reads two rows per output row, 2 words per row of 32 columns
        (E.STREAMING_BUFFER_OVERFLOW, {**P1, "stride": 2, "channels": 9, "tile_c": 9, "height": 30,
                                       "width": 40, "in_pitch": 40, "out_pitch": 20, "tile_xo": 8,
                                       "tile_yo": 16}),
        (E.OUTSIDE_WINDOW, {**P1, "stride": 2, "channels": 9, "tile_c": 9, "height": 30, "width": 40,
                            "in_pitch": 40, "out_pitch": 20, "tile_xo": 7, "tile_yo": 16,
                            "window": empty}),
        # 1x1 channel tiles: whole 9-channel blocks, or every channel
        (E.BAD_CHANNEL_TILE, {**P1, "channels": 20, "tile_c": 10}),
        (E.BAD_CHANNEL_TILE, {**P1, "channels": 20, "tile_c": 19}),
        (E.BAD_PITCH, {**P1, "channels": 20, "tile_c": 10, "in_pitch": 7}),
        (E.OUTSIDE_WINDOW, {**P1, "channels": 20, "tile_c": 9, "window": empty}),
        (E.OUTSIDE_WINDOW, {**P1, "channels": 20, "tile_c": 18, "window": empty}),
        (E.OUTSIDE_WINDOW, {**P1, "channels": 20, "tile_c": 21, "window": empty}),
        (E.OUTSIDE_WINDOW, {"channels": 20, "tile_c": 10, "window": empty}),     # 3x3: any
        # the line buffer does not bound a 1x1 tile's columns
        (E.OUTSIDE_WINDOW, {**P1, "channels": 1, "tile_c": 1, "width": 100, "in_pitch": 100,
                            "out_pitch": 100, "tile_yo": 100, "tile_xo": 1, "window": empty}),
        # 1x1 stationary buffer: ceil(T_K / KP) x KP x blocks slices
        (E.STATIONARY_BUFFER_OVERFLOW, {**P1, "channels": 27, "tile_c": 27, "kernels": 86,
                                        "tile_k": 85, "tile_xo": 1, "tile_yo": 4}),
        (E.OUTSIDE_WINDOW, {**P1, "channels": 27, "tile_c": 27, "kernels": 86, "tile_k": 84,
                            "tile_xo": 1, "tile_yo": 4, "window": empty}),
        # depthwise: 3x3, C == K, T_C == T_K
        (E.BAD_DEPTHWISE, {"depthwise": 1}),
        (E.BAD_DEPTHWISE, {"depthwise": 1, "kernels": 4, "tile_k": 4, "tile_c": 3}),
        (E.BAD_DEPTHWISE, {**P1, "depthwise": 1, "kernels": 4, "tile_k": 4}),
        (E.BAD_CHANNEL_TILE, {**P1, "depthwise": 1, "channels": 20, "tile_c": 10}),
        (E.OUTSIDE_WINDOW, {"depthwise": 1, "kernels": 4, "tile_k": 4, "window": empty}),
        (E.STATIONARY_BUFFER_OVERFLOW, {"kernels": 64, "tile_k": 64, "tile_xo": 1, "tile_yo": 4}),
        (E.OUTSIDE_WINDOW, {"kernels": 64, "tile_k": 63, "tile_xo": 1, "tile_yo": 4, "window": empty}),
        (E.OUTPUT_BUFFER_OVERFLOW, {"tile_k": 3, "tile_xo": 86}),
        (E.OUTSIDE_WINDOW, {"tile_k": 3, "tile_xo": 85, "window": empty}),
        # address space: each extent one byte past the top, and exactly to it
        (E.ADDRESS_OVERFLOW, {"input_addr": top - 255}),
        (E.OUTSIDE_WINDOW, {"input_addr": top - 256}),
        (E.ADDRESS_OVERFLOW, {"input_addr": 1 << 63}),
        (E.ADDRESS_OVERFLOW, {"weight_addr": top - 179}),
        (E.ADDRESS_OVERFLOW, {"params_addr": top - 79}),
        (E.ADDRESS_OVERFLOW, {"output_addr": top - 319}),
        (E.ADDRESS_OVERFLOW, {"table_addr": top - 255}),
        (E.ADDRESS_OVERFLOW, {"table_addr": TOP - 1, "window": (0, TOP - 1)}),
        # window: each extent one byte outside, the window one byte short, empty, wrapping
        (E.OUTSIDE_WINDOW, {"input_addr": w0[0] - 1}),
        (E.OUTSIDE_WINDOW, {"weight_addr": w0[0] - 1}),
        (E.OUTSIDE_WINDOW, {"params_addr": wend - 80 + 1}),
        (E.OUTSIDE_WINDOW, {"output_addr": wend - 320 + 1}),
        (E.OUTSIDE_WINDOW, {"table_addr": t0 + 1}),
        (E.OUTSIDE_WINDOW, {"window": (w0[0] + 1, w0[1] - 1)}),
        (E.OUTSIDE_WINDOW, {"window": (w0[0], w0[1] - 1)}),
        (E.OUTSIDE_WINDOW, {"window": empty}),
        (E.NONE, {}),
        (E.NONE, {"window": (w0[0], TOP - 1)}),                       # its end is past 2**64
        (E.NONE, {"params_addr": wend - 80, "output_addr": wend - 320 - 80}),
    ]
    out = []
    for code, fields in cases:
        fields = dict(fields)
        window = fields.pop("window", w0)
        table_addr = fields.pop("table_addr", t0)
        out.append((code, {**d0, **fields}, table_addr, window))
    return out


def random_case(rng, cfg):
    """A descriptor drawn near every limit, with a window around it most of the time."""
    def pick(*choices):
        total = sum(w for w, _ in choices)
        x = rng.random() * total
        for w, f in choices:
            x -= w
            if x < 0:
                return f()
        return choices[-1][1]()

    R = rng.choice([1, 3, 3, 1, 3, 1, 3, 0, 2] if rng.random() < 0.9 else [0, 2])
    S = rng.choice([1, 2] * 8 + [0, 3])
    P = rng.choice([0, 1, 2, 0, 1, 3]) if R == 3 else rng.choice([0] * 8 + [1, 2])

    def dim(big):
        return pick((0.03, lambda: 0), (0.2, lambda: rng.randint(1, 4)),
                    (0.55, lambda: rng.randint(5, 70)), (0.22, lambda: rng.randint(70, big)))

    d = {"kernel_size": R, "stride": S, "padding": P,
         "channels": dim(300), "kernels": dim(300), "height": dim(600), "width": dim(200)}
    valid = R in (1, 3) and S in (1, 2) and min(d["height"], d["width"]) + 2 * P >= R
    xo = output_size(d["height"], R, S, P) if valid else d["height"]
    yo = output_size(d["width"], R, S, P) if valid else d["width"]
    for tile, full in (("tile_k", d["kernels"]), ("tile_c", d["channels"]), ("tile_xo", xo),
                       ("tile_yo", yo)):
        d[tile] = pick((0.03, lambda: 0), (0.5, lambda: rng.randint(1, max(1, full + 2))),
                       (0.47, lambda: rng.randint(1, 40)))
    if R == 1 and d["tile_c"] and rng.random() < 0.7:     # whole 9-channel blocks, or all
        d["tile_c"] = rng.choice([CHANNEL_BLOCK * rng.randint(1, 4), d["channels"] + rng.randint(0, 9)])
    d["depthwise"] = int(rng.random() < 0.1)
    if d["depthwise"] and rng.random() < 0.7:                # mostly a valid depthwise layer
        d["kernels"], d["tile_c"] = d["channels"], d["tile_k"]
    d["in_pitch"] = max(0, d["width"] + rng.choice([-1, 0, 0, 0, 0, 5]))
    d["out_pitch"] = max(0, yo + rng.choice([-1, 0, 0, 0, 0, 3]))
    top = 1 << cfg.axi_addr_width

    def addr(region):
        return pick((0.9, lambda: region + rng.randrange(0x1000)),
                    (0.07, lambda: top - rng.randrange(1, 0x20000)),
                    (0.03, lambda: rng.randrange(top, TOP)))
    for i, name in enumerate(("input_addr", "weight_addr", "params_addr", "output_addr")):
        d[name] = addr(0x100000 * (i + 1))
    table_addr = addr(0x500000)
    extents = layer_extents(d, table_addr).values()
    lo, hi = min(s for s, _ in extents), max(e for _, e in extents)
    window = pick((0.55, lambda: (lo, hi - lo)),
                  (0.25, lambda: (lo + rng.choice([-1, 0, 1]), hi - lo + rng.choice([-1, 0, 1]))),
                  (0.1, lambda: (0, TOP - 1)),
                  (0.1, lambda: (rng.randrange(0x800000), rng.randrange(0x800000))))
    window = (max(0, min(window[0], TOP - 1)), max(0, min(window[1], TOP - 1)))
    return d, table_addr, window


# --- checks --------------------------------------------------------------------------

def assert_no_dma(bench, lo, hi, what):
    for i in range(lo, hi):
        s = bench.trace[i]
        for name in ("rd_cmd", "wr_cmd", bench.start_stream, *SINKS):
            assert not s[name + ".v"], f"{what}: {name} valid at cycle {i - lo}"
        for name in ("rd_clear", "wr_clear", "core_reset") + (("seq_start",) if "seq_start" in s else ()):
            assert not s[name], f"{what}: {name} at cycle {i - lo}"


async def check_refused(bench, code, d, table_addr, window):
    """Start a descriptor the controller must refuse: ``code`` within a few cycles, ``done``
    and one ``layer_end`` pulse, no DMA command, no loop-nest start."""
    what = f"{ErrorCode(code).name} {d} table {table_addr:#x} window {window}"
    bench.set_layer(d, table_addr, window)
    s0 = await bench.pulse("start")
    await bench.cycles(Controller.check_cycles + 3)
    tr = bench.trace
    ends = bench.high("layer_end", s0)
    assert len(ends) == 1 and ends[0] - s0 == Controller.check_cycles, \
        f"{what}: layer_end at {[e - s0 for e in ends]}"
    e = ends[0]
    assert all(tr[i]["busy"] and not tr[i]["done"] and tr[i]["error_code"] == 0
               for i in range(s0 + 1, e + 1)), f"{what}: busy / done / error_code before the end"
    for i in range(e + 1, len(tr)):
        assert tr[i]["done"] and not tr[i]["busy"], f"{what}: done {tr[i]['done']} busy {tr[i]['busy']}"
        assert tr[i]["error_code"] == code, f"{what}: got {ErrorCode(tr[i]['error_code']).name}"
    assert_no_dma(bench, s0, len(tr), what)
    last = tr[-1]
    assert last["cycles"] == e - s0, f"{what}: cycles {last['cycles']}, busy for {e - s0}"
    assert last["dram_read_bytes"] == 0 and last["dram_write_bytes"] == 0, what
    return e - s0


async def check_accepted(bench, d, table_addr, window):
    """A descriptor the controller must accept: it asks for the table, then a soft reset
    takes it back to idle with neither ``done`` nor an error."""
    what = f"NONE {d} table {table_addr:#x} window {window}"
    bench.set_layer(d, table_addr, window)
    bench.rd_enabled = False
    s0 = await bench.pulse("start")
    await bench.cycles(Controller.check_cycles + 3)
    tr = bench.trace
    offers = [i for i in range(s0, len(tr)) if tr[i]["rd_cmd.v"]]
    assert offers and offers[0] - s0 <= Controller.check_cycles + 1, f"{what}: no table read"
    assert unpack(bench.layouts["rd_cmd"], bench.dut.rd_cmd__payload.value.to_unsigned()) == \
        {"addr": table_addr & ((1 << bench.cfg.axi_addr_width) - 1), "length": TABLE_BYTES}, what
    for i in range(offers[0], len(tr)):
        assert tr[i]["busy"] and not tr[i]["done"] and not tr[i]["layer_end"], what
    assert tr[-1]["error_code"] == 0, what
    r = await bench.pulse("soft_reset")
    await bench.until(lambda: not bench.trace[-1]["busy"], 40, "idle after soft reset")
    assert not bench.high("layer_end", s0), f"{what}: layer_end"
    assert not any(tr[i]["done"] or tr[i]["error_code"] for i in range(r + 1, len(tr))), what
    bench.rd_enabled = True


@cocotb.test()
async def descriptor_rules(dut):
    """Every validation rule, at and one past each limit, then random descriptors near
    the limits against the host's bounds."""
    p = params()
    cfg = AccelConfig(**p["cfg"])
    rng = seeded_rng(p)
    await start_clock_and_reset(dut)
    bench = Bench(dut, cfg, rng, p.get("pause", 0.0))
    bench.wr_enabled = False
    cases = directed_cases(cfg)
    for _ in range(p.get("random", 200)):
        case = random_case(rng, cfg)
        cases.append((expected_code(cfg, *case), *case))
    seen = {}
    for code, d, table_addr, window in cases:
        assert expected_code(cfg, d, table_addr, window) == code, (code, d, table_addr, window)
        seen[code.name] = seen.get(code.name, 0) + 1
        if code == ErrorCode.NONE:
            await check_accepted(bench, d, table_addr, window)
        else:
            await check_refused(bench, code, d, table_addr, window)
    dut._log.info("validation cases per code: %s", seen)
    # every descriptor rule; DMA errors come below, the command queue's own codes in
    # test_queue.py, the pooling engine's in test_pool.py
    other_codes = {"BAD_QUEUE", "QUEUE_OUTSIDE_WINDOW", "BAD_COMMAND", "BAD_POOL"}
    assert set(seen) == {e.name for e in ErrorCode} - {"DMA_READ_ERROR", "DMA_WRITE_ERROR"} - other_codes, seen


# --- whole layers ------------------------------------------------------------------------

LAYER_BASE = dict(input_addr=0x10000, weight_addr=0x11000, params_addr=0x12000, output_addr=0x13000)
TABLE_ADDR = 0x14003
WINDOW = (0x10000, 0x5000)
LAYERS = {
    # tiled in every dimension, pitches wider than the rows: rows read one by one
    "tiled": dict(channels=5, height=7, width=9, kernels=5, kernel_size=3, stride=1, padding=1,
                  tile_k=3, tile_c=3, tile_xo=4, tile_yo=5, in_pitch=11, out_pitch=10),
    # stride 2, whole rows merged
    "stride2": dict(channels=3, height=6, width=7, kernels=4, kernel_size=3, stride=2, padding=1,
                    tile_k=2, tile_c=2, tile_xo=2, tile_yo=4),
    # 1x1, flat tiles of 9-channel blocks; weights (ceil(C / 9), K, 9) read per block
    "pointwise": dict(channels=12, height=5, width=6, kernels=4, kernel_size=1, stride=1, padding=0,
                      tile_k=2, tile_c=9, tile_xo=2, tile_yo=6),
    # 1x1, stride 2, pitched rows
    "pointwise_stride2": dict(channels=10, height=7, width=9, kernels=5, kernel_size=1, stride=2,
                              padding=0, tile_k=3, tile_c=10, tile_xo=2, tile_yo=3, in_pitch=10),
}


def layer(name):
    return tiling.descriptor(**LAYER_BASE, **LAYERS[name])


async def run_layer(bench, d, *, zero_point=0, restart=False, timeout=30000):
    """Run one layer to its end and check it cycle by cycle."""
    cfg, tr = bench.cfg, bench.trace
    mask = (1 << cfg.axi_addr_width) - 1
    assert expected_code(cfg, d, TABLE_ADDR, WINDOW) == ErrorCode.NONE
    script = [dict(c, addr=c["addr"] & mask) for c in tiling.commands(d)]
    reads = [c for c in script if c["kind"] != DmaKind.OUTPUT]
    writes = [c for c in script if c["kind"] == DmaKind.OUTPUT]
    bench.script = script
    bench.wr_slow = {bench.wr_accepted + len(writes) - 1: 40}      # the last write's done comes late
    bench.idle_write_beats = 2                                        # counters must not keep these
    await bench.cycles(4)
    bench.set_layer(d, TABLE_ADDR, WINDOW, zero_point)
    before = dict(tr[-1])
    s0 = await bench.pulse("start")
    assert before["dram_write_bytes"] > 0
    if restart:                        # a second start while running changes nothing
        await bench.until(lambda: bench.fires("tiler_cmd", s0), 2000, "first command")
        await bench.pulse("start")
    await bench.until(lambda: bench.high("layer_end", s0), timeout, "the end of the layer")
    await bench.cycles(10)
    what = f"layer {d}"
    end = len(tr)
    ends = bench.high("layer_end", s0)
    assert len(ends) == 1, f"{what}: layer_end pulses {ends}"
    le = ends[0]
    # start clears done, the error code and every counter
    assert all(tr[s0 + 1][name] == 0 for name in ("done", "error_code", *COUNTERS)), \
        {name: tr[s0 + 1][name] for name in ("done", "error_code", *COUNTERS)}
    for i in range(s0 + 1, end):
        assert tr[i]["busy"] == (i <= le) and tr[i]["done"] == (i > le), f"{what}: cycle {i - s0}"
        assert tr[i]["error_code"] == 0, f"{what}: {ErrorCode(tr[i]['error_code']).name}"
        assert not (tr[i]["core_reset"] or tr[i]["rd_clear"] or tr[i]["wr_clear"]), f"{what}: abort"
        assert tr[i]["cycles"] == min(i, le + 1) - (s0 + 1), f"{what}: cycles at {i - s0}"
    # the table first: one 256-byte read at table_addr, byte i to table entry i
    rd_cmds = bench.fires("rd_cmd", s0)
    assert rd_cmds[0][1] == {"addr": TABLE_ADDR, "length": TABLE_BYTES}, rd_cmds[0]
    table = bench.fires("table", s0)
    assert [t for _, t in table] == [{"addr": i, "data": mem(TABLE_ADDR + i)} for i in range(TABLE_BYTES)]
    # then the loop nest starts, once, with the latched descriptor
    starts = bench.fires(bench.start_stream, s0)
    assert len(starts) == 1 and starts[0][1] == {name: d[name] for name, _ in descriptor_layout()}, starts
    t_start = starts[0][0]
    assert not any(tr[i][bench.start_stream + ".v"] for i in range(s0, table[-1][0] + 1)), \
        "loop nest offered before the table was written"
    assert t_start > table[-1][0] and rd_cmds[1][0] > t_start
    if "seq_start" in tr[s0]:
        assert bench.high("seq_start", s0) == [t_start], "seq_start is not the descriptor handshake"
    dut = bench.dut
    assert dut.active_descriptor.value.to_unsigned() == pack(descriptor_layout(), d)
    if hasattr(dut, "active_zero_point"):
        assert dut.active_zero_point.value.to_unsigned() == zero_point
    # every read in order; its data to the input of its kind, beat for beat
    assert [c for _, c in rd_cmds[1:]] == [{"addr": c["addr"], "length": c["length"]} for c in reads]
    assert len(bench.fires("tiler_cmd", s0)) == len(script)
    for kind, sink in ROUTED.items():
        expected = [b for c in reads if c["kind"] == kind
                    for b in read_beats(c["addr"], c["length"], bench.bus_bytes)]
        got = [b for _, b in bench.fires(sink, s0)]
        assert got == expected, f"{what}: {sink}: {len(got)} beats, expected {len(expected)}"
    # reads in flight never exceed the routing queue
    inflight = peak = 0
    for i in range(t_start, end):
        inflight += (tr[i]["rd_cmd"] is not None) - bool(tr[i]["rd_data"] and tr[i]["rd_data"]["last"])
        peak = max(peak, inflight)
    assert peak <= cfg.read_route_depth, f"{peak} reads in flight"
    # every write in order, one output row each; the end one cycle after the last done
    assert [c for _, c in bench.fires("wr_cmd", s0)] == [{"addr": c["addr"], "length": c["length"]}
                                                           for c in writes]
    assert [r for _, r in bench.fires("out_rows", s0)] == [{"rows": 1, "row_bytes": c["length"]}
                                                           for c in writes]
    dones = bench.fires("wr_done", s0)
    assert len(dones) == len(writes) and le == dones[-1][0] + 1, \
        f"{what}: layer_end at {le - s0}, write dones at {[i - s0 for i, _ in dones[-3:]]}"
    # counters, held after the end
    last = tr[-1]
    for name in COUNTERS:
        assert tr[le + 2][name] == last[name], f"{name} changed after the end"
    assert last["cycles"] == le - s0 == sum(tr[i]["busy"] for i in range(s0, end))
    assert last["dram_read_bytes"] == TABLE_BYTES + sum(c["length"] for c in reads) == \
        sum(b["count"] for _, b in bench.fires("rd_data", s0))
    assert last["dram_write_bytes"] == sum(c["length"] for c in writes) == \
        sum(tr[i]["write_bytes"] for i in range(s0 + 1, end) if tr[i]["write_beat"])
    for counter, signal in COUNTED.items():       # counted only while the loop nest runs
        assert last[counter] == sum(tr[i][signal] for i in range(t_start + 1, le + 1)), counter
    return le - s0


@cocotb.test()
async def layers(dut):
    """Layers back to back (a second start while running ignored), 3x3 and 1x1, each
    checked against the Tiler's golden commands."""
    p = params()
    cfg = AccelConfig(**p["cfg"])
    await start_clock_and_reset(dut)
    bench = Bench(dut, cfg, seeded_rng(p, 2), p.get("pause", 0.0))
    n = await run_layer(bench, layer("tiled"), zero_point=0x5A, restart=True)
    dut._log.info("tiled layer: %d cycles", n)
    n = await run_layer(bench, layer("stride2"), zero_point=0xC3)
    dut._log.info("stride-2 layer: %d cycles", n)
    for name in ("pointwise", "pointwise_stride2"):
        n = await run_layer(bench, layer(name), zero_point=0x3C)
        dut._log.info("%s layer: %d cycles", name, n)


# --- aborts ----------------------------------------------------------------------------

async def abort(bench, d, *, read_error=None, write_error=None, soft_reset_after=None,
                hold_writes=False):
    """Start ``d`` and abort it: a read error at (read index from the layer's first, beat),
    a write error on a write index, or a soft reset some cycles into the loop nest."""
    tr = bench.trace
    script = [dict(c, addr=c["addr"] & ((1 << bench.cfg.axi_addr_width) - 1)) for c in tiling.commands(d)]
    bench.script = script
    bench.wr_slow = {}
    if read_error is not None:
        bench.rd_error_at = (bench.rd_accepted + read_error[0], read_error[1])
    if write_error is not None:
        bench.wr_error_at = bench.wr_accepted + write_error
    bench.set_layer(d, TABLE_ADDR, WINDOW)
    bench.wr_enabled = not hold_writes
    s0 = await bench.pulse("start")
    if soft_reset_after is not None:
        await bench.until(lambda: bench.fires(bench.start_stream, s0), 2000, "the loop nest")
        await bench.cycles(soft_reset_after)
        bench.wr_enabled = True
        e = await bench.pulse("soft_reset")
        expected = ErrorCode.NONE
    else:
        await bench.until(lambda: tr[-1]["rd_error"] or tr[-1]["wr_error"], 20000, "the error")
        e = len(tr) - 1
        expected = ErrorCode.DMA_READ_ERROR if read_error else ErrorCode.DMA_WRITE_ERROR
    await bench.until(lambda: not tr[-1]["busy"], 200, "idle after the abort")
    await bench.cycles(5)
    what = f"abort ({ErrorCode(expected).name}, soft reset after {soft_reset_after})"
    clears = bench.high("rd_clear", s0)
    assert clears == bench.high("wr_clear", s0) == [e + 1], \
        f"{what}: rd_clear {clears}, wr_clear {bench.high('wr_clear', s0)}, event at {e}"
    a = e + 1
    resets = bench.high("core_reset", s0)
    r = resets[-1]
    assert resets == list(range(a, r + 1)), f"{what}: core_reset not held from the clear on"
    drained = max(i for i in range(a, len(tr))
                  if tr[i]["rd_busy"] or tr[i]["wr_busy"] or tr[i]["rd_error"] or tr[i]["wr_error"])
    assert r == drained + 2, f"{what}: reset released at {r - a}, engines idle from {drained + 1 - a}"
    # No DMA traffic while the datapath is held (what the core's table and out_rows inputs
    # take then goes into its reset). The write queue is reset at the end of the clear
    # cycle, so a queued write may still go out in it: the writer, cleared in the same
    # cycle, discards it (hw.dma.writer takes clear before any AW).
    for i in range(a, r + 1):
        for name in ("rd_cmd", "rd_data", "tiler_cmd", bench.start_stream, *ROUTED.values()):
            assert tr[i][name] is None, f"{what}: {name} transfer {i - a} cycles into the abort"
        assert i == a or tr[i]["wr_cmd"] is None, f"{what}: write command {i - a} cycles into the abort"
    ends = bench.high("layer_end", s0)
    for i in range(r + 1, len(tr)):
        assert not tr[i]["busy"] and tr[i]["error_code"] == expected, f"{what}: cycle {i - a}"
        assert tr[i]["done"] == (expected != ErrorCode.NONE), f"{what}: done {tr[i]['done']}"
    assert ends == ([r] if expected != ErrorCode.NONE else []), f"{what}: layer_end {ends}, reset to {r}"
    assert not bench.high("done", s0 + 1, r + 1), f"{what}: done before the end"
    bench.rd_error_at = bench.wr_error_at = None
    return expected


@cocotb.test()
async def aborts(dut):
    """DMA read errors (table and loop nest), a DMA write error, soft reset mid-layer and
    in idle after an error; after each, a layer runs correctly."""
    p = params()
    cfg = AccelConfig(**p["cfg"])
    await start_clock_and_reset(dut)
    bench = Bench(dut, cfg, seeded_rng(p, 3), p.get("pause", 0.0))
    tiled, small = layer("tiled"), layer("stride2")
    await abort(bench, tiled, read_error=(0, 5))          # in the table
    await run_layer(bench, small)
    await abort(bench, tiled, read_error=(25, 0))         # reads queued behind it
    await run_layer(bench, small)
    await abort(bench, tiled, write_error=2)
    await run_layer(bench, small)
    await abort(bench, tiled, soft_reset_after=150)
    await run_layer(bench, small)
    await abort(bench, tiled, soft_reset_after=300, hold_writes=True)   # writes queued
    await run_layer(bench, small)
    # soft reset in idle clears done and the error code of a refused layer
    d, table_addr, window = base_layer()
    await check_refused(bench, ErrorCode.BAD_KERNEL, dict(d, kernel_size=2), table_addr, window)
    r = await bench.pulse("soft_reset")
    await bench.until(lambda: not bench.trace[-1]["busy"], 50, "idle after soft reset")
    await bench.cycles(3)
    tr = bench.trace
    assert bench.high("rd_clear", r) == bench.high("wr_clear", r) == [r + 1]
    assert not bench.high("layer_end", r) and not bench.high("done", r + 1)
    assert tr[-1]["error_code"] == 0
    await run_layer(bench, small)

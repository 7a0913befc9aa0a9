"""cocotb-side helpers: clock and reset, payload packing, stream source and sink.

Sources and sinks follow cocotbext-axi's structure: an optional ``pause`` generator
(idle on the source, backpressure on the sink) yields True for each cycle to hold off.
"""

import itertools
import random

import cocotb
from amaranth.hdl import Shape
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["start_clock_and_reset", "pack", "unpack", "StreamSource", "StreamSink",
           "TransferLog", "random_pauses", "no_pauses"]


async def start_clock_and_reset(dut, cycles=2):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def _shape(layout):
    return layout if isinstance(layout, data.Layout) else Shape.cast(layout)


def _width(layout):
    return Shape.cast(layout).width


def pack(layout, value):
    """Nested lists / dicts -> the integer a port of ``layout`` carries."""
    layout = _shape(layout)
    if isinstance(layout, data.ArrayLayout):
        width = _width(layout.elem_shape)
        bits = 0
        for index, item in enumerate(value):
            bits |= pack(layout.elem_shape, item) << (index * width)
        return bits
    if isinstance(layout, data.StructLayout):
        bits = 0
        for name, field in layout:
            bits |= pack(field.shape, value.get(name, 0)) << field.offset
        return bits
    return int(value) & ((1 << layout.width) - 1)


def unpack(layout, bits):
    """The integer on a port of ``layout`` -> nested lists / dicts of Python ints."""
    layout = _shape(layout)
    if isinstance(layout, data.ArrayLayout):
        width = _width(layout.elem_shape)
        mask = (1 << width) - 1
        return [unpack(layout.elem_shape, (bits >> (i * width)) & mask) for i in range(layout.length)]
    if isinstance(layout, data.StructLayout):
        out = {}
        for name, field in layout:
            width = _width(field.shape)
            out[name] = unpack(field.shape, (bits >> field.offset) & ((1 << width) - 1))
        return out
    bits &= (1 << layout.width) - 1
    if layout.signed and bits >> (layout.width - 1):
        bits -= 1 << layout.width
    return bits


def random_pauses(rng, probability):
    """A pause generator: pause each cycle with ``probability``."""
    while True:
        yield rng.random() < probability


def no_pauses():
    return itertools.repeat(False)


def _port(dut, prefix, name):
    return getattr(dut, f"{prefix}__{name}")


class _StreamEnd:
    """The ``<prefix>__{valid,ready,payload}`` ports of a stream, its layout and pauses."""

    def __init__(self, dut, prefix, layout, pause):
        self.clk = dut.clk
        self.valid = _port(dut, prefix, "valid")
        self.ready = _port(dut, prefix, "ready")
        self.payload = _port(dut, prefix, "payload")
        self.layout = layout
        self.pause = pause or no_pauses()


class StreamSource(_StreamEnd):
    """Drives an Amaranth stream input ``<prefix>__{valid,ready,payload}`` from a list."""

    def __init__(self, dut, prefix, layout, *, pause=None):
        super().__init__(dut, prefix, layout, pause)
        self.valid.value = 0

    async def send(self, beats):
        for beat in beats:
            bits = pack(self.layout, beat)
            while next(self.pause):
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.valid.value = 1
            self.payload.value = bits
            while True:
                await ReadOnly()
                fired = int(self.ready.value) == 1
                await RisingEdge(self.clk)
                if fired:
                    break
        self.valid.value = 0

    def start(self, beats):
        return cocotb.start_soon(self.send(list(beats)))


class StreamSink(_StreamEnd):
    """Collects beats from an Amaranth stream output, with optional backpressure.

    ``cycles`` records the clock cycle (counted from ``start``) of every beat.
    """

    def __init__(self, dut, prefix, layout, *, pause=None):
        super().__init__(dut, prefix, layout, pause)
        self.beats = []
        self.cycles = []
        self.ready.value = 0

    async def receive(self, count):
        cycle = 0
        while len(self.beats) < count:
            ready = not next(self.pause)
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and int(self.valid.value) == 1:
                self.beats.append(unpack(self.layout, self.payload.value.to_unsigned()))
                self.cycles.append(cycle)
            await RisingEdge(self.clk)
            cycle += 1
        self.ready.value = 0
        return self.beats

    def start(self, count):
        return cocotb.start_soon(self.receive(count))


class TransferLog:
    """Latency probe: the clock cycle (counted from construction, all channels alike) of
    every rising edge at which a channel transfers.

    ``channels`` maps a name to a stream prefix of ``dut`` (``"rows"``: ``rows__valid`` and
    ``rows__ready``) or to a ``(valid, ready)`` pair of signal names (``ready`` None: the
    cycles ``valid`` is high, e.g. ``("m_axi__arvalid", None)`` for when AR is first
    offered). ``latency(a, b)`` is the number of cycles from ``a``'s first transfer to
    ``b``'s first transfer.
    """

    def __init__(self, dut, **channels):
        self.clk = dut.clk
        self.signals = {}
        for name, spec in channels.items():
            valid, ready = (f"{spec}__valid", f"{spec}__ready") if isinstance(spec, str) else spec
            self.signals[name] = (getattr(dut, valid), getattr(dut, ready) if ready else None)
        self.cycles = {name: [] for name in channels}
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        cycle = 0
        while True:
            await ReadOnly()
            for name, (valid, ready) in self.signals.items():
                if int(valid.value) == 1 and (ready is None or int(ready.value) == 1):
                    self.cycles[name].append(cycle)
            await RisingEdge(self.clk)
            cycle += 1

    def first(self, name):
        assert self.cycles[name], f"no transfer on {name}"
        return self.cycles[name][0]

    def latency(self, a, b):
        return self.first(b) - self.first(a)

    def stop(self):
        self._task.cancel()


def seeded_rng(params, default=1):
    return random.Random(params.get("seed", default))


async def finish(tasks, clk, timeout_cycles):
    """Wait for all ``tasks``; fail instead of hanging after ``timeout_cycles``."""
    from cocotb.triggers import ClockCycles, First
    for task in tasks:
        timer = cocotb.start_soon(ClockCycles(clk, timeout_cycles))
        await First(task, timer)
        if not task.done():
            raise AssertionError(f"timed out after {timeout_cycles} cycles")
        timer.cancel()

"""cocotb-side AXI helpers on top of cocotbext-axi's AxiRam.

- :class:`CycleCounter`: a running cycle count.
- :func:`add_read_latency` / :func:`add_write_latency`: a fixed memory latency that keeps
  pipelining (AR requests are timestamped on arrival and served ``latency`` cycles later,
  so several outstanding bursts overlap their latency; B responses are delayed likewise).
- :class:`ErrorInjector`: answers SLVERR or DECERR for accesses touching chosen byte ranges
  (the faulting write beat writes nothing).
- :class:`ChannelMonitor`: records the cycles where a new AR / AW / strobed-W beat appears
  and where error responses arrive, to prove nothing is issued after an error.
- :func:`set_axi_pauses`: random ready/valid pauses on all five channels.
"""

import collections

import cocotb
from cocotb.triggers import Event, ReadOnly, RisingEdge

from host.runtime.sim.streams import random_pauses

__all__ = ["CycleCounter", "add_read_latency", "add_write_latency", "ErrorInjector",
           "ChannelMonitor", "check_bursts", "set_axi_pauses", "make_ram"]


class CycleCounter:
    def __init__(self, clk):
        self.clk = clk
        self.cycle = 0
        cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1

    async def wait_until(self, cycle):
        while self.cycle < cycle:
            await RisingEdge(self.clk)


def make_ram(dut, size, prefix="m_axi"):
    from cocotbext.axi import AxiBus, AxiRam
    return AxiRam(AxiBus.from_prefix(dut, prefix, bus_separator="__"), dut.clk, dut.rst, size=size)


def add_read_latency(ram, counter, latency):
    """Serve each AR ``latency`` cycles after it arrived (call before reset is released).

    ``latency`` is an int or a callable returning the current latency."""
    channel = ram.read_if.ar_channel
    original = channel.recv
    queue = collections.deque()
    event = Event()

    async def collect():
        while True:
            ar = await original()
            queue.append((counter.cycle, ar))
            event.set()

    async def recv():
        while not queue:
            event.clear()
            await event.wait()
        arrived, ar = queue.popleft()
        await counter.wait_until(arrived + (latency() if callable(latency) else latency))
        return ar

    cocotb.start_soon(collect())
    channel.recv = recv


def add_write_latency(ram, counter, latency):
    """Deliver each B response ``latency`` cycles after the last W beat of its burst."""
    channel = ram.write_if.b_channel
    original = channel.send
    queue = collections.deque()
    event = Event()

    async def deliver():
        while True:
            while not queue:
                event.clear()
                await event.wait()
            due, b = queue.popleft()
            await counter.wait_until(due)
            await original(b)

    async def send(b):
        queue.append((counter.cycle + (latency() if callable(latency) else latency), b))
        event.set()

    cocotb.start_soon(deliver())
    channel.send = send


class ErrorInjector:
    """Fail reads / writes touching ``[start, end)`` ranges with ``code`` (2 or 3)."""

    def __init__(self, ram):
        self.ranges = []
        self.code = 2
        self.read_errors = 0
        self.write_errors = 0
        read_if, write_if = ram.read_if, ram.write_if
        orig_read, orig_write = read_if._read, write_if._write

        def hit(address, length):
            return any(address < end and start < address + length for start, end in self.ranges)

        async def read(address, length):
            if hit(address, length):
                self.read_errors += 1
                raise IOError("injected read error")
            return await orig_read(address, length)

        async def write(address, data):
            if hit(address, len(data)):
                self.write_errors += 1
                raise IOError("injected write error")
            return await orig_write(address, data)

        read_if._read, write_if._write = read, write
        r_send, b_send = read_if.r_channel.send, write_if.b_channel.send

        async def send_r(r):
            if int(r.rresp) == 2:
                r.rresp = self.code
            await r_send(r)

        async def send_b(b):
            if int(b.bresp) == 2:
                b.bresp = self.code
            await b_send(b)

        read_if.r_channel.send, write_if.b_channel.send = send_r, send_b


class ChannelMonitor:
    """Per-cycle record of new AR / AW requests, strobed W beats and error responses."""

    def __init__(self, dut, counter, prefix="m_axi"):
        self.dut, self.counter, self.prefix = dut, counter, prefix
        self.new_ar, self.new_aw, self.strobed_w = [], [], []
        self.r_errors, self.b_errors = [], []
        self.ar_count = self.r_last_count = 0
        self.max_reads_in_flight = 0
        self.bursts = []            # (kind, addr, len, size) of every AR / AW handshake
        cocotb.start_soon(self._run())

    def _sig(self, name):
        return getattr(self.dut, f"{self.prefix}__{name}")

    async def _run(self):
        s = self._sig
        ar_held = aw_held = w_held = False
        while True:
            await ReadOnly()
            cycle = self.counter.cycle
            arv, arr = int(s("arvalid").value), int(s("arready").value)
            awv, awr = int(s("awvalid").value), int(s("awready").value)
            wv, wr = int(s("wvalid").value), int(s("wready").value)
            if arv and not ar_held:
                self.new_ar.append(cycle)
            if awv and not aw_held:
                self.new_aw.append(cycle)
            if wv and not w_held and s("wstrb").value.to_unsigned():
                self.strobed_w.append(cycle)
            ar_held, aw_held, w_held = arv and not arr, awv and not awr, wv and not wr
            if arv and arr:
                self.ar_count += 1
                self.bursts.append(("ar", s("araddr").value.to_unsigned(),
                                    s("arlen").value.to_unsigned() + 1, s("arsize").value.to_unsigned()))
            if awv and awr:
                self.bursts.append(("aw", s("awaddr").value.to_unsigned(),
                                    s("awlen").value.to_unsigned() + 1, s("awsize").value.to_unsigned()))
            if int(s("rvalid").value) and int(s("rready").value):
                if s("rresp").value.to_unsigned():
                    self.r_errors.append(cycle)
                if int(s("rlast").value):
                    self.r_last_count += 1
            if int(s("bvalid").value) and int(s("bready").value) and s("bresp").value.to_unsigned():
                self.b_errors.append(cycle)
            self.max_reads_in_flight = max(self.max_reads_in_flight,
                                           self.ar_count - self.r_last_count)
            await RisingEdge(self.dut.clk)


def check_bursts(bursts, lanes):
    """Every burst: full-width beats, aligned, <= 256 beats, inside one 4 KiB page."""
    assert bursts, "no bursts seen"
    for kind, addr, beats, size in bursts:
        assert 1 << size == lanes, f"{kind} {addr:#x}: size {size} is not the bus width"
        assert addr % lanes == 0, f"{kind} {addr:#x}: unaligned burst"
        assert beats <= 256, f"{kind} {addr:#x}: {beats} beats"
        assert addr // 4096 == (addr + beats * lanes - 1) // 4096, \
            f"{kind} {addr:#x}+{beats * lanes} crosses 4 KiB"


def set_axi_pauses(ram, rng, probability):
    for channel in (ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
                    ram.read_if.ar_channel, ram.read_if.r_channel):
        channel.set_pause_generator(random_pauses(rng, probability))

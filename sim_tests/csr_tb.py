"""cocotb testbench of hw.control.csr.CsrBank: every register kind of the accelerator's register
map through cocotbext-axi's AXI4-Lite master, with random pauses on all five channels."""

import random

import cocotb
from cocotb.triggers import RisingEdge, Timer

from host.runtime.sim.runner import params
from hw.config import AccelConfig
from hw.contract import register_map
from host.runtime.sim.streams import random_pauses, start_clock_and_reset


def _port(dut, reg, suffix=""):
    return getattr(dut, reg.name.lower() + suffix)


@cocotb.test()
async def register_kinds(dut):
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster

    p = params()
    rng = random.Random(p.get("seed", 1))
    rm = register_map(AccelConfig(**p.get("cfg", {})))
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"), dut.clk, dut.rst)
    if p.get("pause"):
        for channel in (axil.write_if.aw_channel, axil.write_if.w_channel, axil.write_if.b_channel,
                        axil.read_if.ar_channel, axil.read_if.r_channel):
            channel.set_pause_generator(random_pauses(rng, p["pause"]))
    inputs = {}
    for reg in rm:
        if reg.access == "ro" and hasattr(dut, reg.name.lower()):
            inputs[reg.name] = rng.getrandbits(32)
            _port(dut, reg).value = inputs[reg.name]
        elif reg.access == "w1c":
            _port(dut, reg, "_set").value = 0
    await start_clock_and_reset(dut)

    async def read(reg):
        return int.from_bytes((await axil.read(reg.offset, 4)).data, "little")

    async def write(reg, value, strobe_bytes=None):
        data = value.to_bytes(4, "little")
        if strobe_bytes is None:
            await axil.write(reg.offset, data)
        else:                          # a narrow write: only the given byte lanes
            await axil.write(reg.offset + strobe_bytes[0], data[strobe_bytes[0]:strobe_bytes[1]])

    # reset values and constants; ro registers read their port
    for reg in rm:
        got = await read(reg)
        if reg.access == "ro" and reg.name in inputs:
            assert got == inputs[reg.name], reg.name
        elif reg.access == "ro":
            assert got == reg.reset, reg.name                      # identification
        elif reg.access == "wo":
            assert got == 0, reg.name
        else:
            assert got == reg.reset, reg.name
    # rw: full and byte-lane writes read back, and drive the port
    for reg in [r for r in rm if r.access == "rw"]:
        value = rng.getrandbits(32)
        await write(reg, value)
        assert await read(reg) == value, reg.name
        await RisingEdge(dut.clk)
        assert _port(dut, reg).value.to_unsigned() == value, reg.name
        lane = rng.randrange(4)
        byte = rng.getrandbits(8)
        await write(reg, byte << (8 * lane), (lane, lane + 1))
        expected = (value & ~(0xFF << (8 * lane))) | (byte << (8 * lane))
        assert await read(reg) == expected, reg.name
    # wo: one write pulse per write, the port holds the value, reads return 0
    for reg in [r for r in rm if r.access == "wo"]:
        pulses = 0

        async def count():
            nonlocal pulses
            while True:
                await RisingEdge(dut.clk)
                await Timer(1, "ps")
                pulses += int(_port(dut, reg, "_write").value)
        counter = cocotb.start_soon(count())
        for value in (0x5, 0xA):
            await write(reg, value)
        for _ in range(4):
            await RisingEdge(dut.clk)
        counter.cancel()
        assert pulses == 2, (reg.name, pulses)
        assert _port(dut, reg).value.to_unsigned() == 0xA
        assert await read(reg) == 0
    # w1c: bits set by the hardware stay until the bus writes 1 to them
    for reg in [r for r in rm if r.access == "w1c"]:
        _port(dut, reg, "_set").value = 0b101
        await RisingEdge(dut.clk)
        _port(dut, reg, "_set").value = 0
        await RisingEdge(dut.clk)
        assert await read(reg) == 0b101
        await write(reg, 0b100)
        assert await read(reg) == 0b001
        await write(reg, 0b001)
        assert await read(reg) == 0
    # an unmapped offset reads 0 and a write there changes nothing
    first_rw = next(r for r in rm if r.access == "rw")
    before = await read(first_rw)
    unmapped = rm.size
    await axil.write(unmapped, (0xFFFFFFFF).to_bytes(4, "little"))
    assert int.from_bytes((await axil.read(unmapped, 4)).data, "little") == 0
    assert await read(first_rw) == before
    # back-to-back traffic: interleaved writes and reads of every rw register
    values = {r.name: rng.getrandbits(32) for r in rm if r.access == "rw"}
    writes = [cocotb.start_soon(write(rm[name], v)) for name, v in values.items()]
    for task in writes:
        await task
    for name, v in values.items():
        assert await read(rm[name]) == v, name

"""cocotb testbench of hw.control.tiler.Tiler: its command stream equals host.golden.tiling.commands."""

import cocotb
from amaranth import unsigned
from cocotb.triggers import ClockCycles, ReadOnly

from host.golden.tiling import commands, pack
from hw.contract import DmaKind, descriptor_layout
from hw.control.tiler import command_layout
from host.runtime.sim.runner import params
from host.runtime.sim.streams import StreamSink, StreamSource, finish, random_pauses, seeded_rng, start_clock_and_reset


@cocotb.test()
async def command_sequences(dut):
    p = params()
    rng = seeded_rng(p)
    await start_clock_and_reset(dut)
    desc_width = descriptor_layout().size
    layout = command_layout(p["addr_width"])
    for index, d in enumerate(p["descriptors"]):
        pause = p["pause"] if index % 2 else 0.0
        expected = commands(d)
        source = StreamSource(dut, "desc", unsigned(desc_width))
        sink = StreamSink(dut, "cmd", layout, pause=random_pauses(rng, pause) if pause else None)
        await finish([source.start([pack(d)]), sink.start(len(expected))], dut.clk,
                     20 * len(expected) + 2000)
        await ClockCycles(dut.clk, 8)
        await ReadOnly()
        assert int(dut.cmd__valid.value) == 0, f"descriptor {index}: extra commands"
        assert int(dut.busy.value) == 0, f"descriptor {index}: still busy"
        mask = (1 << p["addr_width"]) - 1
        for n, (got, want) in enumerate(zip(sink.beats, expected)):
            want = dict(want, addr=want["addr"] & mask)
            assert got == want, (f"descriptor {index} command {n}: got {got}, expected {want} "
                                 f"({DmaKind(want['kind']).name})")
        await ClockCycles(dut.clk, 1)

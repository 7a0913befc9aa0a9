"""cocotb testbench of hw.control.tiler.Tiler: fed host.golden.tiling.steps (with random gaps),
its command stream equals host.golden.tiling.commands."""

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly

from host.golden.tiling import commands, pack
from hw.contract import DmaKind
from hw.control.steps import step_layout
from hw.control.tiler import command_layout
from host.runtime.sim.layers import step_beats
from host.runtime.sim.runner import params
from host.runtime.sim.streams import StreamSink, StreamSource, finish, random_pauses, seeded_rng, start_clock_and_reset


@cocotb.test()
async def command_sequences(dut):
    p = params()
    rng = seeded_rng(p)
    await start_clock_and_reset(dut)
    layout = command_layout(p["addr_width"])
    for index, d in enumerate(p["descriptors"]):
        pause = p["pause"] if index % 2 else 0.0
        expected = commands(d)
        dut.descriptor.value = pack(d)
        await ClockCycles(dut.clk, 3)
        source = StreamSource(dut, "steps", step_layout, pause=random_pauses(rng, pause) if pause else None)
        sink = StreamSink(dut, "cmd", layout, pause=random_pauses(rng, pause) if pause else None)
        await finish([source.start(step_beats(d)), sink.start(len(expected))], dut.clk,
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

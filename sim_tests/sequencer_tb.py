"""cocotb testbench of hw.control.sequencer.Sequencer: fed host.golden.tiling.steps (with random
gaps), its command streams equal host.golden.schedule.core_commands."""

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from host.golden import tiling
from host.golden.schedule import core_commands
from hw.config import AccelConfig
from hw.datapath.core import ComputeCore
from hw.control.sequencer import COMMAND_STREAMS, Sequencer
from hw.control.steps import step_layout
from host.runtime.sim.layers import step_beats
from host.runtime.sim.runner import params
from host.runtime.sim.streams import StreamSink, StreamSource, finish, random_pauses, seeded_rng, start_clock_and_reset


@cocotb.test()
async def command_streams(dut):
    p = params()
    cfg = AccelConfig(**p["cfg"])
    seq = Sequencer(ComputeCore(cfg))
    rng = seeded_rng(p)
    await start_clock_and_reset(dut)
    for index, desc in enumerate(p["descriptors"]):
        zero_point = (37 * index + 11) & 0xFF
        expected = core_commands(cfg, desc, zero_point)
        dut.descriptor.value = tiling.pack(desc)
        dut.zero_point.value = zero_point
        await ClockCycles(dut.clk, 1)
        pause = p.get("pause", 0.0)
        source = StreamSource(dut, "steps", step_layout, pause=random_pauses(rng, pause) if pause else None)
        sinks = {name: StreamSink(dut, name, seq.layouts[name],
                                  pause=random_pauses(rng, pause) if pause else None)
                 for name in COMMAND_STREAMS}
        tasks = [source.start(step_beats(desc))]
        tasks += [sinks[name].start(len(expected[name])) for name in COMMAND_STREAMS]
        await finish(tasks, dut.clk, 400 * len(expected["out_cmd"]) + 400)
        for name in COMMAND_STREAMS:
            assert len(sinks[name].beats) == len(expected[name])
            for i, (got, want) in enumerate(zip(sinks[name].beats, expected[name])):
                assert got == want, f"descriptor {index}, {name} command {i}: {got} != {want}"
        for _ in range(8):
            await RisingEdge(dut.clk)
        assert int(dut.busy.value) == 0, "sequencer still busy after its last step"
        for name in COMMAND_STREAMS:
            assert int(getattr(dut, f"{name}__valid").value) == 0, f"extra {name} command"

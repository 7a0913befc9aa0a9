"""cocotb testbench of hw.control.steps.StepWalker: both of its step streams equal
host.golden.tiling.steps, under random backpressure on each."""

import cocotb
from amaranth import unsigned
from cocotb.triggers import ClockCycles, ReadOnly

from host.golden.tiling import pack
from hw.contract import descriptor_layout
from hw.control.steps import step_layout
from host.runtime.sim.layers import step_beats
from host.runtime.sim.runner import params
from host.runtime.sim.streams import StreamSink, StreamSource, finish, random_pauses, seeded_rng, start_clock_and_reset

STREAMS = ("tiler_steps", "seq_steps")


@cocotb.test()
async def step_streams(dut):
    p = params()
    rng = seeded_rng(p)
    await start_clock_and_reset(dut)
    for index, d in enumerate(p["descriptors"]):
        expected = step_beats(d)
        # one stream stalls far more than the other, in turn, so either runs ahead
        pauses = (p["pause"], p["pause"] / 4) if index % 2 else (p["pause"] / 4, p["pause"])
        source = StreamSource(dut, "desc", unsigned(descriptor_layout().size))
        sinks = [StreamSink(dut, name, step_layout, pause=random_pauses(rng, pause) if pause else None)
                 for name, pause in zip(STREAMS, pauses)]
        await finish([source.start([pack(d)])] + [sink.start(len(expected)) for sink in sinks],
                     dut.clk, 20 * len(expected) + 200)
        await ClockCycles(dut.clk, 4)
        await ReadOnly()
        for name, sink in zip(STREAMS, sinks):
            assert int(getattr(dut, f"{name}__valid").value) == 0, f"descriptor {index}: extra {name}"
            for n, (got, want) in enumerate(zip(sink.beats, expected)):
                assert got == want, f"descriptor {index} {name} step {n}: got {got}, expected {want}"
        assert int(dut.busy.value) == 0, f"descriptor {index}: still busy"
        await ClockCycles(dut.clk, 1)

"""cocotb testbench of hw.datapath.dpe.DPE against the golden dot product."""

import cocotb
import numpy as np

from hw.datapath.dpe import dpe_input_layout, RESULT_SHAPE
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, finish, random_pauses, seeded_rng,
                          start_clock_and_reset)


def vectors(rng, count):
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    acts = nrng.integers(0, 256, size=(count, 9))
    weights = nrng.integers(-128, 128, size=(count, 9))
    extremes = [(255, -128), (255, 127), (0, -128), (0, 127), (255, 0)]
    for i, (a, w) in enumerate(extremes):       # all-extreme windows
        acts[i], weights[i] = a, w
    return acts, weights


@cocotb.test()
async def dot_products(dut):
    p = params()
    rng = seeded_rng(p)
    acts, weights = vectors(rng, p.get("count", 400))
    expected = (acts * weights).sum(axis=1).tolist()
    await start_clock_and_reset(dut)
    pause = p.get("pause", 0.0)
    source = StreamSource(dut, "i", dpe_input_layout, pause=random_pauses(rng, pause) if pause else None)
    sink = StreamSink(dut, "o", RESULT_SHAPE, pause=random_pauses(rng, pause) if pause else None)
    beats = [{"activations": a, "weights": w} for a, w in zip(acts.tolist(), weights.tolist())]
    tasks = [source.start(beats), sink.start(len(beats))]
    await finish(tasks, dut.clk, 20 * len(beats) + 100)
    assert sink.beats == expected, "DPE dot products differ from the golden model"
    if not pause:
        # fully pipelined: one result per cycle once the pipeline is full
        assert sink.cycles[-1] - sink.cycles[0] == len(beats) - 1

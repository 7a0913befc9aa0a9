"""cocotb testbench of hw.datapath.residual_add.ResidualAdd against host.golden.quant.add_fixed:
random beats and parameters (add and add+ReLU, shifts 13..31), random pauses on every
stream, the pass-through when disabled, one beat per cycle, the latency."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from hw.datapath.repacker import byte_stream_layout
from hw.datapath.residual_add import ResidualAdd, add_params_layout
from host.golden.quant import add_fixed, add_parameters
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, TransferLog, finish, pack, random_pauses,
                                      seeded_rng, start_clock_and_reset)


def beats_of(nrng, lanes, count):
    """``count`` beats: random bytes, a random ``count`` and ``last`` now and then."""
    out = []
    for _ in range(count):
        valid = int(nrng.integers(1, lanes + 1))
        out.append({"data": nrng.integers(0, 256, lanes).tolist(), "count": valid,
                    "last": int(nrng.integers(0, 4) == 0)})
    return out


def random_params(nrng):
    scales = [float(np.float32(10 ** nrng.uniform(-2.5, -0.5))) for _ in range(3)]
    ma, mb, shift = add_parameters(*scales)
    while shift > 31:                       # QNNPACK's undefined shifts are not fused
        scales[2] /= 4
        ma, mb, shift = add_parameters(*scales)
    za, zb, zo = (int(v) for v in nrng.integers(0, 255, 3))
    return {"enable": 1, "ma": ma, "mb": mb, "shift": shift, "za": za, "zb": zb, "zo": zo,
            "lo": zo if nrng.integers(0, 2) else 0}


@cocotb.test()
async def random_sums(dut):
    p = params()
    layout = byte_stream_layout(p["lanes"])
    rng, nrng = seeded_rng(p), np.random.default_rng(p["seed"])
    await start_clock_and_reset(dut)
    for case in range(p["cases"]):
        prm = random_params(nrng) if case % 4 else {**random_params(nrng), "enable": 0}
        dut.params.value = pack(add_params_layout(), prm)
        await ClockCycles(dut.clk, 2)
        a, b = beats_of(nrng, p["lanes"], 40), beats_of(nrng, p["lanes"], 40)
        pause = p["pause"]

        def pauses():
            return random_pauses(rng, pause) if pause else None
        sink = StreamSink(dut, "o", layout, pause=pauses())
        tasks = [StreamSource(dut, "i", layout, pause=pauses()).start(a), sink.start(len(a))]
        if prm["enable"]:
            tasks.append(StreamSource(dut, "residual", layout, pause=pauses()).start(b))
        await finish(tasks, dut.clk, 50 * len(a) + 100)
        for index, (got, x, r) in enumerate(zip(sink.beats, a, b)):
            assert (got["count"], got["last"]) == (x["count"], x["last"]), f"case {case} beat {index}"
            want = (add_fixed(np.array(x["data"], np.uint8), np.array(r["data"], np.uint8),
                              **{k: prm[k] for k in ("ma", "mb", "shift", "za", "zb", "zo", "lo")})
                    if prm["enable"] else np.array(x["data"], np.uint8))
            assert got["data"] == want.tolist(), f"case {case} beat {index}: {prm}"
        if not pause:
            assert sink.cycles[-1] - sink.cycles[0] == len(a) - 1, "below one beat per cycle"


@cocotb.test()
async def latency(dut):
    """ResidualAdd.latency: from a beat pair's transfer to the sum's."""
    p = params()
    add = ResidualAdd(lanes=p["lanes"])
    nrng = np.random.default_rng(1)
    await start_clock_and_reset(dut)
    dut.params.value = pack(add_params_layout(), random_params(nrng))
    log = TransferLog(dut, i="i", o="o")
    layout = byte_stream_layout(p["lanes"])
    sink = StreamSink(dut, "o", layout)
    task = sink.start(1)
    beat = beats_of(nrng, p["lanes"], 1)
    await finish([StreamSource(dut, "residual", layout).start(beat),
                  StreamSource(dut, "i", layout).start(beat), task], dut.clk, 100)
    measured = log.first("o") - log.first("i")
    assert measured == add.latency, f"latency {measured} != {add.latency}"

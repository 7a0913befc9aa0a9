"""cocotb testbench of hw.datapath.dpe_array.DPEArray: dot products and weight switching."""

import cocotb
import numpy as np

from hw.datapath.dpe_array import DPEArray
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, finish, random_pauses, seeded_rng,
                          start_clock_and_reset)


def workload(nrng, kp, yp, sets, beats_per_set, lanes=1):
    """Weight sets and the window beats (``lanes`` windows per column) run under each; the
    first beat of a set swaps."""
    weights = nrng.integers(-128, 128, size=(sets, kp, 9))
    weights[0, 0] = -128                                   # extremes
    weights[-1, -1] = 127
    windows = nrng.integers(0, 256, size=(sets, beats_per_set, lanes, yp, 9))
    windows[0, 0] = 255
    windows[-1, -1] = 0
    return weights, windows


@cocotb.test()
async def weight_switching(dut):
    p = params()
    kp, yp, lanes, depthwise = p["kp"], p["yp"], p.get("lanes", 1), p.get("depthwise", 0)
    rng = seeded_rng(p)
    nrng = np.random.default_rng(p.get("seed", 1))
    layouts = DPEArray(kp=kp, yp=yp, tag_width=8, lanes=lanes)
    weights, windows = workload(nrng, kp, yp, p["sets"], p["beats_per_set"], lanes)
    # sums[s, b, k, j] = windows[s, b, lane(k), j] . weights[s, k]: lane 0, or in depthwise
    # mode row k's own lane k (rows past the lanes take lane 0)
    row_lane = [k if depthwise and k < lanes else 0 for k in range(kp)]
    expected = np.einsum("sbkjt,skt->sbkj", windows[:, :, row_lane], weights)

    dut.depthwise.value = depthwise
    await start_clock_and_reset(dut)
    pause = p.get("pause", 0.0)
    pauses = (lambda: random_pauses(rng, pause)) if pause else (lambda: None)
    weight_source = StreamSource(dut, "weights", layouts.weights_layout, pause=pauses())
    window_source = StreamSource(dut, "windows", layouts.windows_layout, pause=pauses())
    sink = StreamSink(dut, "sums", layouts.sums_layout, pause=pauses())
    beats = []
    for s in range(p["sets"]):
        for b in range(p["beats_per_set"]):
            beats.append({"windows": windows[s, b].tolist(), "swap": int(b == 0),
                          "tag": (s * 31 + b) & 0xFF})
    total = len(beats)
    tasks = [weight_source.start(weights.tolist()), window_source.start(beats), sink.start(total)]
    await finish(tasks, dut.clk, 40 * total + 200)

    for index, beat in enumerate(sink.beats):
        s, b = divmod(index, p["beats_per_set"])
        assert beat["tag"] == (s * 31 + b) & 0xFF, f"beat {index}: tag out of order"
        got = np.array(beat["sums"])
        assert np.array_equal(got, expected[s, b]), \
            f"beat {index} (weight set {s}): sums {got.tolist()} != {expected[s, b].tolist()}"
    if not pause:
        # weights loaded into the shadow ahead of time: no bubble at any switch
        assert sink.cycles[-1] - sink.cycles[0] == total - 1, "bubble in the output stream"

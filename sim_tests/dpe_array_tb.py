"""cocotb testbench of hw.datapath.dpe_array.DPEArray (packed or not): dot products, weight
switching and latency."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from hw.datapath.dpe_array import DPEArray
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, TransferLog, finish, random_pauses,
                                     seeded_rng, start_clock_and_reset)


def workload(nrng, kp, yp, sets, beats_per_set, lanes=1):
    """Weight sets and the window beats (``lanes`` windows per column) run under each; the
    first beat of a set swaps. Extremes: all-255 and all-0 beats, kernels of -128, of 127
    and of both; beats whose even and odd columns (a packed pair's low and high window)
    are 255 and 0, and 0 and 255."""
    weights = nrng.integers(-128, 128, size=(sets, kp, 9))
    weights[0, 0] = -128
    weights[-1, -1] = 127
    if kp > 1:
        weights[0, 1] = np.where(np.arange(9) % 2, 127, -128)
    windows = nrng.integers(0, 256, size=(sets, beats_per_set, lanes, yp, 9))
    beats = windows.reshape(-1, lanes, yp, 9)              # a view: beat order
    beats[0] = 255
    beats[-1] = 0
    if len(beats) > 3:
        beats[1, :, 0::2], beats[1, :, 1::2] = 255, 0
        beats[2, :, 0::2], beats[2, :, 1::2] = 0, 255
    return weights, windows


@cocotb.test()
async def weight_switching(dut):
    p = params()
    kp, yp, lanes, depthwise = p["kp"], p["yp"], p.get("lanes", 1), p.get("depthwise", 0)
    rng = seeded_rng(p)
    nrng = np.random.default_rng(p.get("seed", 1))
    layouts = DPEArray(kp=kp, yp=yp, tag_width=8, lanes=lanes, dsp_packing=p.get("dsp_packing", False))
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


@cocotb.test()
async def latency(dut):
    """DPEArray.latency: from a window beat (its weights loaded long before) to its sums."""
    p = params()
    kp, yp, lanes = p["kp"], p["yp"], p.get("lanes", 1)
    array = DPEArray(kp=kp, yp=yp, tag_width=8, lanes=lanes, dsp_packing=p.get("dsp_packing", False))
    dut.depthwise.value = 0
    await start_clock_and_reset(dut)
    log = TransferLog(dut, windows="windows", sums="sums")
    sink = StreamSink(dut, "sums", array.sums_layout)
    task = sink.start(1)
    await StreamSource(dut, "weights", array.weights_layout).send([[[1] * 9] * kp])
    await ClockCycles(dut.clk, 5)
    beat = {"windows": [[[1] * 9] * yp] * lanes, "swap": 1, "tag": 7}
    await StreamSource(dut, "windows", array.windows_layout).send([beat])
    await finish([task], dut.clk, 50)
    log.stop()
    assert sink.beats[0]["sums"] == [[9] * yp] * kp and sink.beats[0]["tag"] == 7
    assert log.latency("windows", "sums") == array.latency, \
        f"latency {log.latency('windows', 'sums')} != {array.latency}"

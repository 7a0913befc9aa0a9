"""cocotb testbench of hw.datapath.stationary_buffer.StationaryBuffer: 3x3 and pointwise (1x1)
weight tiles in, weight sets out."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from hw.datapath.stationary_buffer import StationaryBuffer
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, TransferLog, finish, random_pauses,
                              seeded_rng, start_clock_and_reset)


def tile_3x3(nrng, kp, depth):
    """(K, C, 3, 3) slices, kernel-major, one 9-byte beat each (bytes past 9 are junk)."""
    while True:
        kernels, channels = int(nrng.integers(1, 3 * kp + 2)), int(nrng.integers(1, 9))
        if -(-kernels // kp) * channels <= depth:
            break
    groups = -(-kernels // kp)
    w = nrng.integers(-128, 128, size=(kernels, channels, 9))
    load = {"kernels": kernels, "channels": channels, "kernel_groups": groups, "pointwise": 0}
    writes = [{"data": (w[k, c] & 0xFF).tolist() + nrng.integers(0, 256, size=9 * (kp - 1)).tolist(),
               "count": 9, "last": 1} for k in range(kernels) for c in range(channels)]
    expected = [{lane: w[g * kp + lane, c].tolist() for lane in range(kp) if g * kp + lane < kernels}
                for g in range(groups) for c in range(channels)]
    return load, writes, {"kernel_groups": groups, "channels": channels}, expected


def tile_1x1(nrng, kp, depth):
    """(blocks, K, 9) weights, block-major: one beat of KP x 9 weights per (block, kernel
    group), every lane of it stored (lanes past K carry the beat's bytes)."""
    while True:
        kernels, blocks = int(nrng.integers(1, 3 * kp + 2)), int(nrng.integers(1, 9))
        if -(-kernels // kp) * blocks <= depth:
            break
    groups = -(-kernels // kp)
    w = nrng.integers(-128, 128, size=(blocks, groups, kp, 9))
    load = {"kernels": kernels, "channels": blocks, "kernel_groups": groups, "pointwise": 1}
    writes = [{"data": (w[b, g] & 0xFF).reshape(-1).tolist(), "count": 9 * kp, "last": int(g == groups - 1)}
              for b in range(blocks) for g in range(groups)]
    expected = [{lane: w[b, g, lane].tolist() for lane in range(kp)}
                for g in range(groups) for b in range(blocks)]
    return load, writes, {"kernel_groups": groups, "channels": blocks}, expected


@cocotb.test()
async def weight_tiles(dut):
    """Random 3x3 and 1x1 (pointwise) tiles, in turn or at random, replayed in the array's
    order, with random pauses on every stream."""
    p = params()
    kp, depth = p["kp"], p["depth"]
    st = StationaryBuffer(kp=kp, depth=depth)
    rng = seeded_rng(p)
    nrng = np.random.default_rng(p.get("seed", 1))
    loads, writes, replays, expected = [], [], [], []
    for _ in range(p["tiles"]):
        make = tile_1x1 if nrng.random() < 0.5 else tile_3x3
        load, beats, replay, sets = make(nrng, kp, depth)
        loads.append(load)
        writes += beats
        replays.append(replay)
        expected += sets

    await start_clock_and_reset(dut)
    pause = p.get("pause", 0.0)
    pauses = (lambda: random_pauses(rng, pause)) if pause else (lambda: None)
    sink = StreamSink(dut, "weights", st.weights_layout, pause=pauses())
    tasks = [StreamSource(dut, "load", st.load_layout, pause=pauses()).start(loads),
             StreamSource(dut, "write", st.write_layout, pause=pauses()).start(writes),
             StreamSource(dut, "replay", st.replay_layout, pause=pauses()).start(replays),
             sink.start(len(expected))]
    await finish(tasks, dut.clk, 20 * (len(expected) + len(writes)) + 200)
    await ClockCycles(dut.clk, 4)
    assert int(dut.weights__valid.value) == 0, "weight sets past the last replay"
    for index, (got, want) in enumerate(zip(sink.beats, expected)):
        for lane, taps in want.items():
            assert got[lane] == taps, f"set {index}, kernel lane {lane}: {got[lane]} != {taps}"


@cocotb.test()
async def latency(dut):
    """StationaryBuffer.latency: from a replay command to its first weight set, the half
    loaded."""
    p = params()
    st = StationaryBuffer(kp=p["kp"], depth=p["depth"])
    await start_clock_and_reset(dut)
    log = TransferLog(dut, replay="replay", weights="weights")
    sink = StreamSink(dut, "weights", st.weights_layout)
    task = sink.start(1)
    await StreamSource(dut, "load", st.load_layout).send(
        [{"kernels": st.kp, "channels": 1, "kernel_groups": 1, "pointwise": 0}])
    await StreamSource(dut, "write", st.write_layout).send(
        [{"data": [k + 1] * 9, "count": 9, "last": 1} for k in range(st.kp)])
    await ClockCycles(dut.clk, 5)
    await StreamSource(dut, "replay", st.replay_layout).send([{"kernel_groups": 1, "channels": 1}])
    await finish([task], dut.clk, 100)
    assert log.latency("replay", "weights") == st.latency, \
        f"latency {log.latency('replay', 'weights')} != {st.latency}"

"""cocotb testbench of hw.datapath.stationary_buffer.StationaryBuffer: unit-major weight
tiles in (3x3 channels, 1x1 channel blocks, a depthwise tile), weight sets out."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from hw.datapath.stationary_buffer import StationaryBuffer
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, TransferLog, finish, random_pauses,
                              seeded_rng, start_clock_and_reset)


def weight_tile(nrng, kp, depth):
    """Unit-major (units, K, 9) weights (3x3: (C, K, 9); 1x1: (ceil(C / 9), K, 9);
    depthwise: one unit): each unit one row of K x 9 bytes, cut into beats of a kernel
    group's KP x 9 weights (the last group's beat short when KP does not divide K), every
    lane of a beat stored (lanes past K carry what the beat carries)."""
    while True:
        kernels, units = int(nrng.integers(1, 3 * kp + 2)), int(nrng.integers(1, 9))
        if -(-kernels // kp) * units <= depth:
            break
    groups = -(-kernels // kp)
    w = nrng.integers(-128, 128, size=(units, groups * kp, 9))
    load = {"kernels": kernels, "channels": units, "kernel_groups": groups}
    writes = []
    for u in range(units):
        for g in range(groups):
            lanes = min(kp, kernels - g * kp)
            data = (w[u, g * kp:g * kp + lanes] & 0xFF).reshape(-1).tolist()
            writes.append({"data": data + [0] * (9 * (kp - lanes)), "count": 9 * lanes,
                           "last": int(g == groups - 1)})
    expected = [{lane: w[u, g * kp + lane].tolist() for lane in range(min(kp, kernels - g * kp))}
                for g in range(groups) for u in range(units)]
    return load, writes, {"kernel_groups": groups, "channels": units}, expected


@cocotb.test()
async def weight_tiles(dut):
    """Random tiles of 1 .. 3 KP + 1 kernels (the last kernel group full or not), replayed
    in the array's order, with random pauses on every stream."""
    p = params()
    kp, depth = p["kp"], p["depth"]
    st = StationaryBuffer(kp=kp, depth=depth)
    rng = seeded_rng(p)
    nrng = np.random.default_rng(p.get("seed", 1))
    loads, writes, replays, expected = [], [], [], []
    for _ in range(p["tiles"]):
        load, beats, replay, sets = weight_tile(nrng, kp, depth)
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
        [{"kernels": st.kp, "channels": 1, "kernel_groups": 1}])
    await StreamSource(dut, "write", st.write_layout).send(
        [{"data": [k // 9 + 1 for k in range(9 * st.kp)], "count": 9 * st.kp, "last": 1}])
    await ClockCycles(dut.clk, 5)
    await StreamSource(dut, "replay", st.replay_layout).send([{"kernel_groups": 1, "channels": 1}])
    await finish([task], dut.clk, 100)
    assert log.latency("replay", "weights") == st.latency, \
        f"latency {log.latency('replay', 'weights')} != {st.latency}"

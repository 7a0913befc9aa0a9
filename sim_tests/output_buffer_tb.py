"""cocotb testbench of hw.datapath.output_buffer.OutputBuffer against host.golden.output_model."""

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from host.golden.output_model import (accumulate_passes, beat_matches, drain_beats, drain_tile, groups_for,
                               sums_beats)
from hw.datapath.output_buffer import OutputBuffer
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, finish, random_pauses, seeded_rng,
                          start_clock_and_reset)

SUM_MAX = 9 * 255 * 128            # |DPE result| bound: 293760


def make_tile(nrng, kp, yp, depth, *, kernels=None, out_rows=None, out_cols=None,
              channels=None, extreme=None, fill=None):
    """A random output tile: geometry, passes of sums, per-kernel params."""
    while True:
        k = kernels or int(nrng.integers(1, 3 * kp + 2))
        xo = out_rows or int(nrng.integers(1, 4))
        yo = out_cols or int(nrng.integers(1, 3 * yp + 2))
        kg, g = groups_for(k, kp), groups_for(yo, yp)
        if kg * xo * g <= depth:
            break
    chans = channels or [int(c) for c in nrng.integers(1, 4, size=int(nrng.integers(1, 4)))]
    extreme = bool(nrng.random() < 0.25) if extreme is None else extreme
    passes = []
    for c in chans:
        shape = (c, kg * kp, xo, g * yp)
        if fill is not None:
            sums = np.full(shape, fill, dtype=np.int64)
        elif extreme:
            sums = nrng.choice([-SUM_MAX, SUM_MAX], size=shape).astype(np.int64)
        else:
            sums = nrng.integers(-SUM_MAX, SUM_MAX + 1, size=shape, dtype=np.int64)
        passes.append(sums)
    if nrng.random() < 0.3:
        bias = nrng.integers(-(1 << 31), 1 << 31, size=k, dtype=np.int64)
    else:
        bias = nrng.integers(-(1 << 20), 1 << 20, size=k, dtype=np.int64)
    multiplier = np.exp2(nrng.uniform(-24, -6, size=k)).astype(np.float32)
    zp = nrng.integers(0, 256, size=k)
    lo = nrng.integers(0, 256, size=k)
    hi = nrng.integers(0, 256, size=k)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    wide = nrng.random(k) < 0.5
    lo[wide], hi[wide] = 0, 255
    return dict(kernels=k, out_rows=xo, out_cols=yo, kernel_groups=kg, groups=g,
                passes=passes, bias=bias, multiplier=multiplier, zp=zp, lo=lo, hi=hi)


def tile_stimulus(tile, kp, yp, table, drain_words=1):
    commands, beats = [], []
    n = len(tile["passes"])
    for index, sums in enumerate(tile["passes"]):
        commands.append({"kernel_groups": tile["kernel_groups"], "channels": sums.shape[0],
                         "out_rows": tile["out_rows"], "groups": tile["groups"],
                         "init": int(index == 0), "drain": int(index == n - 1),
                         "kernels": tile["kernels"], "out_cols": tile["out_cols"]})
        beats += [{"sums": b, "tag": 0} for b in sums_beats(sums, kp, yp)]
    prm = [{"bias": int(b), "multiplier": int(m.view(np.uint32)), "zero_point": int(z),
            "lo": int(l), "hi": int(h)}
           for b, m, z, l, h in zip(tile["bias"], tile["multiplier"], tile["zp"], tile["lo"],
                                    tile["hi"])]
    acc = accumulate_passes(tile["passes"], [i == 0 for i in range(n)])
    u8 = drain_tile(acc, tile["kernels"], tile["out_cols"], tile["bias"], tile["multiplier"],
                    tile["zp"], tile["lo"], tile["hi"], table)
    return commands, beats, prm, drain_beats(u8, tile["out_cols"], yp, drain_words)


def scenario_tiles(p, nrng, kp, yp, depth):
    kind = p.get("scenario", "random")
    if kind == "random":
        return [make_tile(nrng, kp, yp, depth) for _ in range(p.get("tiles", 8))]
    if kind == "overlap":
        # T_K not a multiple of KP, T_YO not a multiple of YP; accumulation of a tile takes
        # longer than the drain of the previous one, so nothing should ever wait.
        return [make_tile(nrng, kp, yp, depth, kernels=kp + 2, out_rows=2, out_cols=yp + 1,
                          channels=[3, 2, 3]) for _ in range(p.get("tiles", 5))]
    if kind == "same_address":
        # one word per kernel group: every beat hits the word of the beat before it
        tiles = [make_tile(nrng, kp, yp, depth, kernels=kp, out_rows=1, out_cols=yp,
                           channels=[40, 1, 25]),
                 # single pass, single word (long enough for tile 0's drain to free its half)
                 make_tile(nrng, kp, yp, depth, kernels=1, out_rows=1, out_cols=1, channels=[12]),
                 make_tile(nrng, kp, yp, depth, kernels=2 * kp - 1, out_rows=1, out_cols=yp - 1 or 1,
                           channels=[30], extreme=True)]
        # int32 wrap-around: 7400 * 293760 > 2**31, positive and negative
        for fill in (SUM_MAX, -SUM_MAX):
            tiles.append(make_tile(nrng, kp, yp, depth, kernels=kp, out_rows=1, out_cols=yp,
                                   channels=[3700, 3700], fill=fill))
        return tiles
    raise ValueError(kind)


@cocotb.test()
async def tiles(dut):
    p = params()
    kp, yp, depth = p["kp"], p["yp"], p["depth"]
    drain_words = p.get("drain_words", 1)
    ob = OutputBuffer(kp=kp, yp=yp, depth=depth, max_dim=p["max_dim"], drain_words=drain_words)
    rng = seeded_rng(p)
    nrng = np.random.default_rng(p.get("seed", 1))
    table = nrng.integers(0, 256, size=256).astype(np.uint8) if p.get("table") else None
    tile_list = scenario_tiles(p, nrng, kp, yp, depth)

    commands, beats, prm, expected, tile_of_out, tile_of_sum = [], [], [], [], [], []
    for index, tile in enumerate(tile_list):
        c, b, q, e = tile_stimulus(tile, kp, yp, table, drain_words)
        commands += c
        beats += b
        prm += q
        expected += e
        tile_of_out += [index] * len(e)
        tile_of_sum += [index] * len(b)

    await start_clock_and_reset(dut)
    if table is not None:
        await StreamSource(dut, "table", ob.table_layout).send(
            [{"addr": a, "data": int(d)} for a, d in enumerate(table)])

    pause = p.get("pause", 0.0)
    pauses = (lambda: random_pauses(rng, pause)) if pause else (lambda: None)
    sums_cycles = []

    async def monitor_sums():
        cycle = 0
        while True:
            await ReadOnly()
            if int(dut.sums__valid.value) and int(dut.sums__ready.value):
                sums_cycles.append(cycle)
            await RisingEdge(dut.clk)
            cycle += 1

    sink = StreamSink(dut, "out", ob.out_layout, pause=pauses())
    monitor = cocotb.start_soon(monitor_sums())
    tasks = [sink.start(len(expected)),
             StreamSource(dut, "cmd", ob.cmd_layout, pause=pauses()).start(commands),
             StreamSource(dut, "sums", ob.sums_layout, pause=pauses()).start(beats),
             StreamSource(dut, "params", ob.params_layout, pause=pauses()).start(prm)]
    await finish(tasks, dut.clk, 20 * (len(expected) + len(beats)) + 500)
    monitor.cancel()

    for index, (got, want) in enumerate(zip(sink.beats, expected)):
        assert beat_matches(got, want), f"out beat {index} (tile {tile_of_out[index]}): {got} != {want}"
    assert len(sink.beats) == len(expected)
    assert len(sums_cycles) == len(beats)

    if not pause and p.get("scenario") in ("overlap", "same_address"):
        # one sums beat per cycle across passes and tiles: accumulation never waited
        assert sums_cycles[-1] - sums_cycles[0] == len(beats) - 1, \
            f"{sums_cycles[-1] - sums_cycles[0] + 1 - len(beats)} sums bubble cycles"
        for t in range(len(tile_list)):
            outs = [cy for cy, i in zip(sink.cycles, tile_of_out) if i == t]
            # one out beat per cycle within a tile
            assert outs[-1] - outs[0] == len(outs) - 1, f"tile {t}: bubbles in the drain"
            if t + 1 < len(tile_list):
                next_first = min(cy for cy, i in zip(sums_cycles, tile_of_sum) if i == t + 1)
                # the next tile accumulates while this one drains
                assert next_first < outs[-1], \
                    f"tile {t + 1} started accumulating at {next_first}, after tile {t}'s " \
                    f"drain ended at {outs[-1]}"
        first_outs = [cy for cy, i in zip(sink.cycles, tile_of_out) if i == 0]
        last_sums = [cy for cy, i in zip(sums_cycles, tile_of_sum) if i == 0]
        # OutputBuffer.latency: the last sums beat of a drain pass to the tile's first out beat
        assert first_outs[0] - last_sums[-1] == ob.latency, \
            f"drain latency {first_outs[0] - last_sums[-1]} != {ob.latency}"
        if p.get("scenario") == "overlap":
            # double buffering really overlaps: tile t + 1's sums arrive during t's drain
            for t in range(len(tile_list) - 1):
                outs = [cy for cy, i in zip(sink.cycles, tile_of_out) if i == t]
                during = [cy for cy, i in zip(sums_cycles, tile_of_sum)
                          if i == t + 1 and outs[0] <= cy <= outs[-1]]
                assert during, f"no accumulation of tile {t + 1} during tile {t}'s drain"

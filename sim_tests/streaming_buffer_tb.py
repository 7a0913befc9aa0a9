"""cocotb testbench of hw.datapath.streaming_buffer.StreamingBuffer: ping-pong loads and
replays in lane order and in pointwise (all nine lanes) order, against a model of the
docstring's placement and replay rules."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from hw.datapath.streaming_buffer import StreamingBuffer
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, TransferLog, finish, random_pauses,
                                      seeded_rng, start_clock_and_reset)


def placement(words, block_words, block_lanes):
    """(word, lane) of each row word of a load: row word ``n`` goes to lane
    ``(n // bw) % L`` of word ``(n // (L * bw)) * bw + n % bw``."""
    bw, L = block_words, block_lanes
    return [((n // (L * bw)) * bw + n % bw, (n // bw) % L) for n in range(words)]


def replay_addresses(r):
    """Words (pointwise) or (word, lane) pairs (lane order) of one pass of replay ``r``."""
    if r["pointwise"]:
        return [b * r["block_words"] + row * r["row_step"] + w for b in range(r["blocks"])
                for row in range(r["rows"]) for w in range(r["row_words"])]
    return placement(r["words"], r["block_words"], 9)


def buffer(sb):
    return StreamingBuffer(word_bytes=sb["word_bytes"], depth=sb["depth"], max_rows=sb["max_rows"])


def lane_tile(nrng, depth, full=False):
    """A 3x3-style tile: row words in lane order, ``block_words`` 1 (or a few, as loaded)."""
    bw = 1 if full or nrng.random() < 0.6 else int(nrng.integers(1, depth + 1))
    blocks = depth // bw
    words = 9 * blocks * bw if full else int(nrng.integers(0 if nrng.random() < 0.05 else 1,
                                                           9 * blocks * bw + 1))
    load = {"words": words, "block_words": bw, "block_lanes": 9}
    replay = {"words": words, "pointwise": 0, "block_words": bw}
    return load, replay


def pointwise_tile(nrng, depth, full=False):
    """A 1x1- or depthwise-style tile: ``blocks`` blocks of ``L`` lanes of ``block_words``
    row words (the last block possibly partial), replayed row by row with a row step of
    ``row_words`` (stride 1), ``2 * row_words`` (stride 2) or one flat row."""
    L = 9 if full else int(nrng.choice([9, 9, 3, 1, 5]))
    bw = depth if full else int(nrng.integers(1, depth + 1))
    blocks = depth // bw if full else int(nrng.integers(1, depth // bw + 1))
    words = blocks * L * bw if full else int(nrng.integers((blocks - 1) * L * bw + 1, blocks * L * bw + 1))
    kind = "flat" if full else str(nrng.choice(["flat", "rows", "stride2"]))
    if kind == "flat":
        rows, row_words, row_step = 1, bw, 0
    else:
        row_words = int(nrng.integers(1, bw + 1))
        row_step = row_words * (2 if kind == "stride2" else 1)
        rows = int(nrng.integers(1, (bw - row_words) // row_step + 2))
    load = {"words": words, "block_words": bw, "block_lanes": L}
    replay = {"words": words, "pointwise": 1, "blocks": blocks, "rows": rows,
              "row_words": row_words, "row_step": row_step, "block_words": bw}
    return load, replay


def expected_beats(tiles, depth, word_bytes, nrng):
    """Writes and expected ``read`` beats of ``tiles`` ((load, replay) pairs, ``replays``
    set), by the model: per half, the row word each (word, lane) last received (None until
    written). Lane order checks lane 0, pointwise order every lane the model knows."""
    halves = [[[None] * 9 for _ in range(depth)] for _ in range(2)]
    writes, expected = [], []
    for index, (load, replay) in enumerate(tiles):
        half = halves[index % 2]
        for word, lane in placement(load["words"], load["block_words"], load["block_lanes"]):
            assert word < depth
            data = nrng.integers(0, 256, size=word_bytes).tolist()
            writes.append(data)
            half[word][lane] = data
        for _ in range(replay["replays"]):
            for a in replay_addresses(replay):
                if replay["pointwise"]:
                    expected.append(list(half[a]))
                else:
                    word, lane = a
                    expected.append([half[word][lane]] + [None] * 8)
    return writes, expected


def check(beats, expected):
    assert len(beats) == len(expected)
    for index, (got, want) in enumerate(zip(beats, expected)):
        for lane, value in enumerate(want):
            if value is not None:
                assert got[lane] == value, f"beat {index}, lane {lane}: {got[lane]} != {value}"


async def run(dut, sb, tiles, writes, expected, pause, rng):
    pauses = (lambda: random_pauses(rng, pause)) if pause else (lambda: None)
    sink = StreamSink(dut, "read", sb.read_layout, pause=pauses())
    tasks = [StreamSource(dut, "load", sb.load_layout, pause=pauses()).start([t[0] for t in tiles]),
             StreamSource(dut, "write", sb.word_layout, pause=pauses()).start(writes),
             StreamSource(dut, "replay", sb.replay_layout, pause=pauses()).start([t[1] for t in tiles]),
             sink.start(len(expected))]
    await finish(tasks, dut.clk, 20 * (len(expected) + len(writes)) + 400)
    await ClockCycles(dut.clk, 4)
    assert int(dut.read__valid.value) == 0, "read beats past the last replay"
    check(sink.beats, expected)
    return sink


@cocotb.test()
async def tiles(dut):
    """Random tiles in both orders (every placement, partial blocks, row steps of 0, 1 and
    2 rows, empty tiles), random replay counts, random pauses on every stream."""
    p = params()
    sb = buffer(p)
    rng, nrng = seeded_rng(p), np.random.default_rng(p.get("seed", 1))
    tiles = []
    for _ in range(p["tiles"]):
        make = lane_tile if nrng.random() < 0.4 else pointwise_tile
        load, replay = make(nrng, sb.depth)
        tiles.append((load, dict(replay, replays=int(nrng.integers(1, 4)))))
    writes, expected = expected_beats(tiles, sb.depth, sb.word_bytes, nrng)
    await start_clock_and_reset(dut)
    await run(dut, sb, tiles, writes, expected, p.get("pause", 0.0), rng)


@cocotb.test()
async def steady(dut):
    """Full tiles, alternating orders, with enough replays to cover the next load: no gap
    between tiles (one beat per cycle on each side)."""
    p = params()
    sb = buffer(p)
    rng, nrng = seeded_rng(p), np.random.default_rng(p.get("seed", 1) + 1)
    tiles = []
    for index in range(6):
        if index % 2:
            load, replay = pointwise_tile(nrng, sb.depth, full=True)
            replay["replays"] = 10          # 9 row words loaded per word replayed
        else:
            load, replay = lane_tile(nrng, sb.depth, full=True)
            replay["replays"] = 2
        tiles.append((load, replay))
    writes, expected = expected_beats(tiles, sb.depth, sb.word_bytes, nrng)
    await start_clock_and_reset(dut)
    sink = await run(dut, sb, tiles, writes, expected, 0.0, rng)
    gaps = sink.cycles[-1] - sink.cycles[0] + 1 - len(expected)
    assert gaps <= 2 * len(tiles), f"{gaps} idle cycles: loads do not overlap replays"


@cocotb.test()
async def latency(dut):
    """StreamingBuffer.latency: from a replay command to its first word, the half loaded,
    in both orders."""
    p = params()
    sb = buffer(p)
    await start_clock_and_reset(dut)
    word = [[1] * sb.word_bytes, [2] * sb.word_bytes]
    for replay in ({"words": 2, "replays": 1, "block_words": 1},
                   {"words": 2, "replays": 1, "pointwise": 1, "blocks": 1, "rows": 1, "row_words": 1,
                    "block_words": 1}):
        log = TransferLog(dut, replay="replay", read="read")
        sink = StreamSink(dut, "read", sb.read_layout)
        task = sink.start(2 if not replay.get("pointwise") else 1)
        await StreamSource(dut, "load", sb.load_layout).send([{"words": 2, "block_words": 1, "block_lanes": 9}])
        await StreamSource(dut, "write", sb.word_layout).send(word)
        await ClockCycles(dut.clk, 5)
        await StreamSource(dut, "replay", sb.replay_layout).send([replay])
        await finish([task], dut.clk, 100)
        log.stop()
        assert log.latency("replay", "read") == sb.latency, \
            f"latency {log.latency('replay', 'read')} != {sb.latency}"
        assert sink.beats[0][0] == word[0] and (replay.get("pointwise") or sink.beats[1][0] == word[1])
        if replay.get("pointwise"):
            assert sink.beats[0][1] == word[1], "pointwise beat: lane 1"
        await ClockCycles(dut.clk, 4)

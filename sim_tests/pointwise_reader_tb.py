"""cocotb testbench of hw.datapath.pointwise_reader.PointwiseReader: every window beat against
a reference of its docstring's rule, its latency and its throughput."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from hw.datapath.pointwise_reader import PointwiseReader
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, TransferLog, finish, random_pauses,
                                      seeded_rng, start_clock_and_reset)


def reader(p):
    return PointwiseReader(yp=p["yp"], max_words=p["max_words"], max_rows=p["max_rows"],
                           max_groups=p["max_groups"], max_channels=p["max_channels"])


def row_words_range(groups, yp, stride, B):
    """Row words a command may have: every word needed by its beats (at most
    ``ceil(groups * yp * stride / B)``), every beat starting within the row."""
    return -(-((groups - 1) * yp * stride + 1) // B), -(-(groups * yp * stride) // B)


def random_command(nrng, yp, B, kind):
    """``kind``: "flat" (one long row, as a flat step), "short" (rows of one word), "rows"
    (a few rows of a few words), each at stride 1 or 2."""
    stride = int(nrng.choice([1, 2]))
    if kind == "flat":
        channels, out_rows, groups = int(nrng.integers(1, 3)), 1, int(nrng.integers(8, 41))
    elif kind == "short":
        channels, out_rows = int(nrng.integers(1, 4)), int(nrng.integers(1, 5))
        groups = int(nrng.integers(1, B // (yp * stride) + 1))
    else:
        channels, out_rows, groups = (int(v) for v in nrng.integers(1, [4, 5, 9]))
    lo, hi = row_words_range(groups, yp, stride, B)
    return {"channels": channels, "out_rows": out_rows, "groups": groups,
            "row_words": int(nrng.integers(lo, hi + 1)), "stride": stride}


def reference(cmd, rows, yp, B):
    """The beats of ``cmd`` over ``rows`` (channels, out_rows, row_words, 9 lanes, B bytes):
    window ``j`` of beat ``g`` is the pixel at column ``(g * yp + j) * stride``, tap ``t``
    its lane ``t``; None where the column is past the row's words (stale bytes)."""
    beats = []
    for ch in range(cmd["channels"]):
        for r in range(cmd["out_rows"]):
            for g in range(cmd["groups"]):
                windows = []
                for j in range(yp):
                    col = (g * yp + j) * cmd["stride"]
                    windows.append(rows[ch, r, col // B, :, col % B].tolist()
                                   if col < cmd["row_words"] * B else None)
                beats.append({"windows": windows, "first": int(g == 0 and r == 0),
                              "last": int(g == cmd["groups"] - 1 and r == cmd["out_rows"] - 1)})
    return beats


def make_stream(nrng, yp, B, kinds):
    """Commands of the given kinds, their row words and expected beats."""
    commands, words, expected = [], [], []
    for kind in kinds:
        cmd = random_command(nrng, yp, B, kind)
        rows = nrng.integers(0, 256, size=(cmd["channels"], cmd["out_rows"], cmd["row_words"], 9, B))
        commands.append(cmd)
        words += rows.reshape(-1, 9, B).tolist()
        expected += reference(cmd, rows, yp, B)
    return commands, words, expected


def check(beats, expected):
    assert len(beats) == len(expected)
    for index, (got, want) in enumerate(zip(beats, expected)):
        assert (got["first"], got["last"]) == (want["first"], want["last"]), \
            f"beat {index}: first / last {got['first'], got['last']} != {want['first'], want['last']}"
        for j, window in enumerate(want["windows"]):
            if window is not None:
                assert got["windows"][j] == window, f"beat {index}, window {j}: {got['windows'][j]} != {window}"


async def run(dut, pr, commands, words, expected, pause, rng):
    pauses = (lambda: random_pauses(rng, pause)) if pause else (lambda: None)
    sink = StreamSink(dut, "windows", pr.windows_layout, pause=pauses())
    tasks = [StreamSource(dut, "cmd", pr.command_layout, pause=pauses()).start(commands),
             StreamSource(dut, "rows", pr.rows_layout, pause=pauses()).start(words),
             sink.start(len(expected))]
    await finish(tasks, dut.clk, 20 * (len(expected) + len(words)) + 200)
    await ClockCycles(dut.clk, 4)
    assert int(dut.windows__valid.value) == 0, "beats past the last command"
    assert int(dut.cmd__ready.value) == 1, "the last command is not finished"
    check(sink.beats, expected)
    return sink


@cocotb.test()
async def windows(dut):
    """Random commands of every kind back to back, random pauses on every stream."""
    p = params()
    pr = reader(p)
    rng, nrng = seeded_rng(p), np.random.default_rng(p.get("seed", 1))
    kinds = [str(k) for k in nrng.choice(["flat", "short", "rows"], size=p.get("commands", 24))]
    commands, words, expected = make_stream(nrng, pr.yp, pr.word_bytes, kinds)
    await start_clock_and_reset(dut)
    await run(dut, pr, commands, words, expected, p.get("pause", 0.3), rng)


@cocotb.test()
async def throughput(dut):
    """Rows and commands always offered, windows always taken: one beat per cycle from the
    first beat to the last, across rows, channel images and commands."""
    p = params()
    pr = reader(p)
    rng, nrng = seeded_rng(p), np.random.default_rng(p.get("seed", 1) + 1)
    kinds = ["short", "rows", "flat", "short", "rows", "rows", "flat", "short"] * 2
    commands, words, expected = make_stream(nrng, pr.yp, pr.word_bytes, kinds)
    await start_clock_and_reset(dut)
    sink = await run(dut, pr, commands, words, expected, 0.0, rng)
    gaps = sink.cycles[-1] - sink.cycles[0] + 1 - len(expected)
    assert gaps == 0, f"{gaps} bubbles in {len(expected)} beats"


@cocotb.test()
async def latency(dut):
    """PointwiseReader.latency: from the transfer of the last row word a beat needs to the
    beat, for one-word rows and for a beat that needs a row's second word."""
    p = params()
    pr = reader(p)
    yp, B = pr.yp, pr.word_bytes
    nrng = np.random.default_rng(p.get("seed", 1) + 2)
    await start_clock_and_reset(dut)
    groups = B // yp + 1                          # the last beat starts in the second word
    cases = [({"channels": 1, "out_rows": 3, "groups": 1, "row_words": 1, "stride": 1}, 3),
             ({"channels": 1, "out_rows": 1, "groups": groups, "row_words": 2, "stride": 1}, 2)]
    for cmd, n in cases:
        assert row_words_range(cmd["groups"], yp, 1, B)[1] >= cmd["row_words"]
        rows = nrng.integers(0, 256, size=(1, cmd["out_rows"], cmd["row_words"], 9, B))
        log = TransferLog(dut, rows="rows", windows="windows")
        sink = StreamSink(dut, "windows", pr.windows_layout)
        expected = reference(cmd, rows, yp, B)
        task = sink.start(len(expected))
        await StreamSource(dut, "cmd", pr.command_layout).send([cmd])
        source = StreamSource(dut, "rows", pr.rows_layout)
        for word in rows.reshape(-1, 9, B).tolist():
            await ClockCycles(dut.clk, 12)
            await source.send([word])
        await finish([task], dut.clk, 100)
        log.stop()
        check(sink.beats, expected)
        if n == 3:         # one beat per word
            got = [b - a for a, b in zip(log.cycles["rows"], log.cycles["windows"])]
        else:              # the beats after the second word: the first needs it
            got = [min(c for c in log.cycles["windows"] if c > log.cycles["rows"][1]) - log.cycles["rows"][1]]
        assert got == [pr.latency] * len(got), f"latency {got} != {pr.latency}"
        await ClockCycles(dut.clk, 4)

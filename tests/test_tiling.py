"""Sanity of the golden address model host/golden/tiling.py against brute-force coverage."""

import numpy as np
import pytest

from host.golden import tiling
from hw.contract import CHANNEL_BLOCK, PARAM_BYTES, DmaKind, descriptor_layout, weight_size
from host.golden.tiling import ceil_div, commands, descriptor, output_size, pack, transfers
from host.runtime.sim.layers import TILER_BASES, TILER_CASES, tiler_case_descriptor

BASES = TILER_BASES
CASES = TILER_CASES                      # also replayed on the RTL by sim_tests/test_tiler.py
case_descriptor = tiler_case_descriptor


@pytest.mark.parametrize("index", range(len(CASES)))
def test_coverage(index):
    d = case_descriptor(CASES[index])
    C, X, Y, K = d["channels"], d["height"], d["width"], d["kernels"]
    R, s, p = d["kernel_size"], d["stride"], d["padding"]
    XO, YO = output_size(X, R, s, p), output_size(Y, R, s, p)
    pitch, opitch = d["in_pitch"], d["out_pitch"]
    cmds = commands(d)
    assert cmds[-1]["end"] == 1 and sum(c["end"] for c in cmds) == 1

    # split into steps: a step ends with its output group, or with its weight/params group
    written = np.zeros(K * XO * opitch, dtype=int)
    steps, current = [], []
    for c in cmds:
        current.append(c)
        if c["group_last"] and (c["kind"] == DmaKind.OUTPUT or
                                (not c["last_c"] and (c["kind"] == DmaKind.PARAMS or
                                 (c["kind"] == DmaKind.WEIGHT and not c["first_c"])))):
            steps.append(current)
            current = []
    assert not current
    expected_steps = []
    for k0 in range(0, K, d["tile_k"]):
        for x0 in range(0, XO, d["tile_xo"]):
            for y0 in range(0, YO, d["tile_yo"]):
                if d["depthwise"]:          # one step: the channels of the tile's kernels
                    expected_steps.append((k0, x0, y0, k0, min(d["tile_k"], K - k0)))
                for c0 in range(0, C, d["tile_c"]) if not d["depthwise"] else ():
                    expected_steps.append((k0, x0, y0, c0, min(d["tile_c"], C - c0)))
    assert len(steps) == len(expected_steps)

    for step, (k0, x0, y0, c0, tc) in zip(steps, expected_steps):
        tk = min(d["tile_k"], K - k0)
        txo, tyo = min(d["tile_xo"], XO - x0), min(d["tile_yo"], YO - y0)
        # input bytes read in this step == exactly the bytes the tile's windows touch (a
        # 1x1 tile: the stride x stride pixels from each window on, so that a stride-2
        # tile spans whole rows)
        read = np.zeros(C * X * pitch, dtype=int)
        for c in step:
            if c["kind"] == DmaKind.IACT:
                off = c["addr"] - d["input_addr"]
                read[off:off + c["length"]] += 1
        need = np.zeros((C, X, pitch), dtype=int)
        reads = np.zeros_like(need)
        span = s if R == 1 else R
        for xo in range(x0, x0 + txo):
            for yo in range(y0, y0 + tyo):
                for dr in range(span):
                    for dc in range(span):
                        xi, yi = xo * s - p + dr, yo * s - p + dc
                        if 0 <= xi < X and 0 <= yi < Y:
                            reads[c0:c0 + tc, xi, yi] = 1
                            need[c0:c0 + tc, xi, yi] |= dr < R and dc < R
        rows = np.nonzero(reads.any(axis=(0, 2)))[0]
        cols = np.nonzero(reads.any(axis=(0, 1)))[0]
        box = np.zeros_like(need)
        if rows.size:
            box[c0:c0 + tc, rows.min():rows.max() + 1, cols.min():cols.max() + 1] = 1
        assert np.array_equal(read, box.reshape(-1)), "iAct bytes read != the tile's bounding box"
        assert (box >= reads).all() and (reads >= need).all()
        assert read.sum() == tc * (rows.size and (rows.max() - rows.min() + 1)) * \
            (cols.size and (cols.max() - cols.min() + 1))
        # weights: exactly kernels [k0, k0+tk) x channels [c0, c0+tc) of the 3x3 (C, K, 9);
        # a 1x1 layer's (ceil(C / 9), K, 9) whole channel blocks; a depthwise layer's (K, 9)
        if d["depthwise"]:
            wneed = np.zeros((K, R * R), dtype=int)
            wneed[k0:k0 + tk] = 1
        elif R == 1:
            assert c0 % CHANNEL_BLOCK == 0
            wneed = np.zeros((ceil_div(C, CHANNEL_BLOCK), K, CHANNEL_BLOCK), dtype=int)
            wneed[c0 // CHANNEL_BLOCK:ceil_div(c0 + tc, CHANNEL_BLOCK), k0:k0 + tk] = 1
        else:
            wneed = np.zeros((C, K, R * R), dtype=int)
            wneed[c0:c0 + tc, k0:k0 + tk] = 1
        assert wneed.size == weight_size(K, C, R, d["depthwise"])
        wread = np.zeros(wneed.size, dtype=int)
        for c in step:
            if c["kind"] == DmaKind.WEIGHT:
                off = c["addr"] - d["weight_addr"]
                wread[off:off + c["length"]] += 1
        assert np.array_equal(wread, wneed.reshape(-1))
        params = [c for c in step if c["kind"] == DmaKind.PARAMS]
        if c0 == (k0 if d["depthwise"] else 0):
            assert [(c["addr"], c["length"]) for c in params] == \
                [(d["params_addr"] + k0 * PARAM_BYTES, tk * PARAM_BYTES)]
        else:
            assert not params
        outs = [c for c in step if c["kind"] == DmaKind.OUTPUT]
        assert bool(outs) == (d["depthwise"] or c0 + d["tile_c"] >= C)
        for c in outs:
            off = c["addr"] - d["output_addr"]
            written[off:off + c["length"]] += 1
    # every output byte written exactly once, pitch padding never
    owant = np.zeros((K, XO, opitch), dtype=int)
    owant[:, :, :YO] = 1
    assert np.array_equal(written, owant.reshape(-1))


def test_merging():
    d = case_descriptor(CASES[1])        # tile_yo == YO, pitch == width: one command per channel
    iact = [c for c in commands(d) if c["kind"] == DmaKind.IACT and c["first_c"]]
    first_tile = iact[:3]
    # output rows 0..2 with padding 1 need input rows -1..3, clipped to 0..3: 4 rows of 8 bytes
    assert [c["length"] for c in first_tile] == [4 * 8] * 3
    d = case_descriptor(CASES[2])        # whole tile: one command for all channels of the step
    steps = [c for c in commands(d) if c["kind"] == DmaKind.IACT]
    assert [(c["addr"] - d["input_addr"], c["length"]) for c in steps] == [(0, 2 * 42), (84, 2 * 42)]
    outs = [c for c in commands(d) if c["kind"] == DmaKind.OUTPUT]
    assert [(c["addr"], c["length"]) for c in outs] == [(d["output_addr"], 5 * 4 * 5)]   # K x XO x YO, 3x3 no padding
    d = case_descriptor(CASES[3])        # same shape, pitched: per row
    assert sum(c["kind"] == DmaKind.IACT for c in commands(d)) == 4 * 6
    # 3x3 weights, channel-major (C, K, 9): T_K == K merges a step's channels into one run
    w = [c for c in commands(case_descriptor(CASES[2])) if c["kind"] == DmaKind.WEIGHT]
    assert [c["length"] for c in w] == [2 * 5 * 9] * 2
    d = case_descriptor(CASES[7])        # T_K < K: one run of T_K x 9 bytes per channel
    w = [c for c in commands(d) if c["kind"] == DmaKind.WEIGHT]
    assert sorted({c["length"] for c in w}) == [2 * 9, 4 * 9] and len(w) == 7 * len(list(tiling.steps(d)))


def test_pointwise_weight_transfers():
    """A 1x1 step reads its weights as one run of T_K x 9 bytes per channel block, or, when
    T_K covers every kernel, as one run of its blocks."""
    for index in (12, 13, 14, 16):
        d = case_descriptor(CASES[index])
        runs, current = [], []
        for c in commands(d):
            if c["kind"] == DmaKind.WEIGHT:
                current.append(c["length"])
            elif current:
                runs.append(current)
                current = []
        sts = list(tiling.steps(d))
        assert len(runs) == len(sts)
        for st, run in zip(sts, runs):
            assert st.blocks == ceil_div(st.tc, CHANNEL_BLOCK)
            if st.tk == d["kernels"]:
                assert run == [st.blocks * d["kernels"] * CHANNEL_BLOCK], (index, st, run)
            else:
                assert run == [st.tk * CHANNEL_BLOCK] * st.blocks, (index, st, run)
    assert any(st.tk < CASES[12]["kernels"] for st in tiling.steps(case_descriptor(CASES[12])))


def test_flat_tiles():
    """Flat: 1x1, stride 1, full-width tiles of contiguous rows (in_pitch == width,
    out_pitch == YO); a flat tile reads its rows of every channel as one run."""
    flat = [i for i, case in enumerate(CASES) if tiling.flat_tiles(case_descriptor(case))]
    assert flat == [12, 16]
    d = case_descriptor(CASES[16])              # one tile of all rows per kernel tile
    iact = [c for c in commands(d) if c["kind"] == DmaKind.IACT]
    assert [(c["addr"] - d["input_addr"], c["length"]) for c in iact] == \
        [(0, 18 * 6 * 3), (18 * 6 * 3, 6 * 3)] * 2


def test_pack_roundtrip():
    d = case_descriptor(CASES[0])
    value = pack(d)
    layout = descriptor_layout()
    for name, field in layout:
        width = field.shape.width
        assert (value >> field.offset) & ((1 << width) - 1) == d[name], name
    assert int.from_bytes(tiling.pack_bytes(d), "little") == value


@pytest.mark.parametrize("change,match", [
    ({"kernel_size": 2}, "kernel_size"), ({"stride": 3}, "stride"), ({"padding": 3}, "padding"),
    ({"tile_c": 0}, "tile_c"), ({"in_pitch": 4}, "in_pitch"), ({"height": 1, "padding": 0}, "height"),
    ({"kernel_size": 1, "padding": 0, "tile_c": 2}, "tile_c of a 1x1 layer must be a multiple of 9"),
    ({"depthwise": 1}, "depthwise"),
])
def test_validation(change, match):
    args = dict(BASES, **CASES[0])
    args.update(change)
    with pytest.raises(ValueError, match=match):
        descriptor(**args)


def test_transfers_projection():
    d = case_descriptor(CASES[4])
    assert transfers(d) == [(c["kind"], c["addr"], c["length"]) for c in commands(d)]


@pytest.mark.parametrize("channels,tile_c", [(5, 5), (5, 6), (20, 9), (20, 18), (9, 9)])
def test_pointwise_channel_tiles_accepted(channels, tile_c):
    args = dict(BASES, **CASES[0])
    args.update(kernel_size=1, padding=0, channels=channels, tile_c=tile_c)
    assert descriptor(**args)["tile_c"] == tile_c

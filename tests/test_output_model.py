"""The output buffer's golden model: beat order, accumulation, drain layout."""

import numpy as np
import pytest

from host.golden.output_model import accumulate_passes, drain_beats, drain_tile, sums_beats
from host.golden.quant import requantize, wrap_int32


def test_sums_beats_follow_kg_c_xo_g_order():
    kp, yp, c, kg, xo, g = 2, 3, 4, 3, 2, 5
    sums = np.arange(c * kg * kp * xo * g * yp).reshape(c, kg * kp, xo, g * yp)
    beats = sums_beats(sums, kp, yp)
    index = 0
    for k in range(kg):
        for ch in range(c):
            for x in range(xo):
                for gg in range(g):
                    want = sums[ch, k * kp:(k + 1) * kp, x, gg * yp:(gg + 1) * yp].tolist()
                    assert beats[index] == want
                    index += 1
    assert index == len(beats)


def test_sums_beats_refuse_unpadded_shapes():
    with pytest.raises(ValueError, match="padded"):
        sums_beats(np.zeros((1, 3, 1, 4)), 2, 4)


def test_accumulate_wraps_and_init_overwrites():
    rng = np.random.default_rng(1)
    passes = [rng.integers(-293760, 293761, size=(c, 4, 2, 6)) for c in (3, 1, 2)]
    want = wrap_int32(sum(p.sum(axis=0) for p in passes))
    assert np.array_equal(accumulate_passes(passes, [True, False, False]), want)
    # a later init pass discards what came before it
    assert np.array_equal(accumulate_passes(passes, [True, True, False]),
                          wrap_int32(passes[1].sum(axis=0) + passes[2].sum(axis=0)))
    big = np.full((8000, 1, 1, 1), 293760)
    assert accumulate_passes([big], [True])[0, 0, 0] == wrap_int32(8000 * 293760)
    with pytest.raises(ValueError):
        accumulate_passes(passes, [False, False, False])


def test_drain_requantizes_per_kernel_and_marks_rows():
    rng = np.random.default_rng(2)
    kernels, xo, yp, out_cols = 5, 2, 4, 6
    acc = rng.integers(-(1 << 24), 1 << 24, size=(6, xo, 8))
    bias = rng.integers(-(1 << 31), 1 << 31, size=kernels)
    mult = np.exp2(rng.uniform(-20, -8, size=kernels)).astype(np.float32)
    zp, lo, hi = rng.integers(0, 256, size=kernels), np.zeros(kernels, int), np.full(kernels, 255)
    u8 = drain_tile(acc, kernels, out_cols, bias, mult, zp, lo, hi)
    for k in range(kernels):
        want = requantize(wrap_int32(acc[k] + bias[k]), mult[k], zp[k], lo[k], hi[k])
        assert np.array_equal(u8[k], want)
    beats = drain_beats(u8, out_cols, yp)
    assert len(beats) == kernels * xo * 2
    assert [b["count"] for b in beats[:2]] == [4, 2]
    assert [b["last"] for b in beats[:2]] == [0, 1]
    assert beats[3]["data"] == u8[0, 1, 4:8].tolist()

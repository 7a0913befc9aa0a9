"""Golden model of the output buffer: accumulation of a tile's passes and its drain.

A pass is one channel tile of an output tile: the DPE array's sums for channels
``c`` of the pass, as an int array ``(C, kernel_groups * KP, out_rows, groups * YP)``
(kernels and columns padded to whole groups, as the array computes them).
"""

import numpy as np

from host.golden.quant import requantize, wrap_int32
from host.golden.tile_model import groups_for

__all__ = ["groups_for", "sums_beats", "accumulate_passes", "drain_tile", "drain_beats", "beat_matches"]


def sums_beats(sums, kp, yp):
    """The ``sums`` beats of one pass, in the order kg, c, xo, g: a list of KP x YP lists."""
    sums = np.asarray(sums, dtype=np.int64)
    c, kpad, xo, cols = sums.shape
    if kpad % kp or cols % yp:
        raise ValueError(f"pass sums shape {sums.shape} is not padded to KP={kp}, YP={yp}")
    kg, g = kpad // kp, cols // yp
    # (c, kg, kp, xo, g, yp) -> (kg, c, xo, g, kp, yp)
    beats = sums.reshape(c, kg, kp, xo, g, yp).transpose(1, 0, 3, 4, 2, 5)
    return beats.reshape(-1, kp, yp).tolist()


def accumulate_passes(passes, inits, previous=None):
    """int32 contents of a half after ``passes`` (each (C, KPAD, XO, GYP)) in order.

    ``inits[i]`` marks a pass whose channel 0 overwrites; ``previous`` is the half's
    contents before the first pass (needed only if the first pass is not an init pass).
    Additions wrap to int32, as the hardware's adders do.
    """
    acc = None if previous is None else np.asarray(previous, dtype=np.int64)
    for sums, init in zip(passes, inits):
        sums = np.asarray(sums, dtype=np.int64)
        for c in range(sums.shape[0]):
            if c == 0 and init:
                acc = sums[0].copy()
            else:
                if acc is None:
                    raise ValueError("the first pass must be an init pass without `previous`")
                acc = acc + sums[c]
            acc = wrap_int32(acc).astype(np.int64)
    return wrap_int32(acc)


def drain_tile(acc, kernels, out_cols, bias, multiplier, zero_point, lo, hi, table=None):
    """Requantize a tile's accumulators (KPAD, XO, GYP) with per-kernel params.

    Returns u8 (kernels, XO, GYP): the tile in NCHW order, columns past ``out_cols``
    being the requantized padding columns the hardware also emits.
    """
    acc = np.asarray(acc, dtype=np.int64)[:kernels]
    bias = np.asarray(bias, dtype=np.int64)[:kernels]
    with_bias = wrap_int32(acc + bias[:, None, None])
    return requantize(with_bias[None], np.asarray(multiplier, dtype=np.float32)[:kernels],
                      np.asarray(zero_point)[:kernels], np.asarray(lo)[:kernels],
                      np.asarray(hi)[:kernels], table)[0]


def drain_beats(tile_u8, out_cols, yp, drain_words=1):
    """The ``out`` beats of a drained tile (kernels, XO, GYP): {data, count, last}, with
    ``drain_words`` words of a row per beat. Lanes past the row's words (``drain_words``
    > 1) hold whatever the buffer holds there: ``None``, not compared."""
    k, xo, cols = tile_u8.shape
    groups = cols // yp
    lanes = drain_words * yp
    beats = []
    for kk in range(k):
        for x in range(xo):
            for g in range(0, groups, drain_words):
                row = tile_u8[kk, x, g * yp:(g + drain_words) * yp].tolist()
                beats.append({"data": row + [None] * (lanes - len(row)),
                              "count": min(lanes, out_cols - g * yp),
                              "last": int(g + drain_words >= groups)})
    return beats


def beat_matches(got, want):
    """``got`` equals the expected beat ``want`` where ``want`` is not ``None``."""
    return got.keys() == want.keys() and all(
        [g for g, w in zip(got[n], want[n]) if w is not None] == [w for w in want[n] if w is not None]
        if isinstance(want[n], list) else got[n] == want[n] for n in want)

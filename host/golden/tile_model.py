"""Golden models of the on-chip buffers: what each block must emit for a tile."""

import numpy as np

__all__ = ["line_buffer_windows", "row_words", "groups_for"]


def groups_for(out_cols, yp):
    return -(-out_cols // yp)


def line_buffer_windows(image, *, out_rows, out_cols, pad_top, pad_left, stride, kernel, yp,
                        zero_point):
    """Windows the line buffer emits for one pass over ``image`` (C, rows_in, cols_in) u8.

    Returns u8 (C, out_rows, groups, yp, 9): tap ``3 * dr + dc`` of window ``j`` in group
    ``g`` is stored row ``xo * stride + dr - top`` and column
    ``(g * yp + j) * stride + dc - left`` (``top, left = pad_top, pad_left`` for 3x3
    kernels and ``pad + 1`` for 1x1, whose other taps carry ``zero_point``); positions
    outside the image carry ``zero_point``. Groups run past ``out_cols`` to a whole YP.
    """
    image = np.asarray(image, dtype=np.uint8)
    c, rows_in, cols_in = image.shape
    top = pad_top + (kernel == 1)
    left = pad_left + (kernel == 1)
    groups = groups_for(out_cols, yp)
    need_rows = (out_rows - 1) * stride + 3
    need_cols = (groups * yp - 1) * stride + 3
    canvas = np.full((c, max(need_rows, top + rows_in), max(need_cols, left + cols_in)),
                     zero_point, dtype=np.uint8)
    canvas[:, top:top + rows_in, left:left + cols_in] = image
    out = np.empty((c, out_rows, groups, yp, 9), dtype=np.uint8)
    for dr in range(3):
        for dc in range(3):
            rows = canvas[:, dr:dr + stride * (out_rows - 1) + 1:stride]
            taps = rows[:, :, dc:dc + stride * (groups * yp - 1) + 1:stride]
            out[..., 3 * dr + dc] = taps.reshape(c, out_rows, groups, yp)
    if kernel == 1:
        centre = out[..., 4].copy()
        out[...] = zero_point
        out[..., 4] = centre
    return out


def row_words(image, word_bytes):
    """The line buffer's input: every row of every channel, zero-filled to whole words.

    Returns u8 (C * rows_in * words_per_row, word_bytes)."""
    image = np.asarray(image, dtype=np.uint8)
    c, rows_in, cols_in = image.shape
    words = -(-cols_in // word_bytes)
    padded = np.zeros((c, rows_in, words * word_bytes), dtype=np.uint8)
    padded[:, :, :cols_in] = image
    return padded.reshape(-1, word_bytes)

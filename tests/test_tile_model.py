"""The buffer golden models agree with the golden convolution."""

import numpy as np
import pytest

from host.golden.quant import conv_accumulate
from host.golden.tile_model import line_buffer_windows, row_words


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 0), (3, 1, 1), (3, 2, 0), (3, 2, 1),
                                                   (1, 1, 0), (1, 2, 0)])
@pytest.mark.parametrize("yp", [1, 3, 4])
def test_windows_times_weights_equal_convolution(kernel, stride, padding, yp):
    rng = np.random.default_rng(kernel * 100 + stride * 10 + padding + yp)
    c, k, h, w = 3, 2, 9, 11
    x = rng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
    weight = rng.integers(-128, 128, size=(k, c, kernel, kernel)).astype(np.int8)
    zero_point = int(rng.integers(0, 256))
    expected = conv_accumulate(x, weight, stride, padding, zero_point)[0]     # (K, XO, YO)
    out_rows, out_cols = expected.shape[1:]
    win = line_buffer_windows(x[0], out_rows=out_rows, out_cols=out_cols, pad_top=padding,
                              pad_left=padding, stride=stride, kernel=kernel, yp=yp,
                              zero_point=zero_point)
    taps = np.zeros((k, c, 9), dtype=np.int64)
    if kernel == 3:
        taps[:] = weight.reshape(k, c, 9)
    else:
        taps[:, :, 4] = weight[:, :, 0, 0]
    sums = np.einsum("cxgjt,kct->kxgj", win.astype(np.int64), taps)
    sums = sums.reshape(k, out_rows, -1)[:, :, :out_cols]
    assert np.array_equal(sums, expected)


def test_row_words_pad_rows_to_whole_words():
    image = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    words = row_words(image, 4)
    assert words.shape == (2 * 3 * 2, 4)
    assert words[0].tolist() == [0, 1, 2, 3] and words[1].tolist() == [4, 0, 0, 0]

"""Convolutions with kernels up to 9x9 as one 3x3 convolution over a rearranged input.

An R x R convolution (R <= 9, square, stride 1 or 2, padding 0..R-1) is exact as a 3x3
convolution with padding 0 and the same stride:

* the weights, padded with zeros to 9x9, split into 3x3 pieces ``(a, b)``:
  ``piece(a, b) = w[:, :, 3a:3a+3, 3b:3b+3]``;
* the input ``x`` (C, H, W) is padded with the input zero point ``z_x`` (``p`` on the
  top/left, as much as needed on the bottom/right), and channel block ``(a, b)`` of the new
  input is that padded input shifted by ``(3a, 3b)``:
  ``X'[(a, b), c, i, j] = xpad[c, i + 3a, j + 3b]``, cropped to ``s * (X_O - 1) + 3`` rows
  (columns alike), so output ``(x, y)``'s window starts at ``(s*x, s*y)`` in every block;
* the 3x3 weights are ``W'[k, (a, b), c] = piece(a, b)[k, c]``, in the same channel order.

Every padded position holds ``z_x``, so the accumulator ``sum(x * w)`` is the original
conv's, and the folded bias ``round(bias / (s_x * s_w)) - z_x * sum(w[k])`` is unchanged
(the padded weights are zero). Multiplier, zero points, clamp and table carry over.

Only the pieces that hold weights are kept: ``n = ceil(R / 3)`` per axis (``pieces=3``
keeps all nine), so a 5x5 conv becomes a 3x3 conv over ``4 C`` channels and a 7x7 one over
``9 C``. The cost is DRAM traffic and buffer space: the accelerator reads ``n**2`` shifted
copies of the (cropped, padded) input -- about ``9 x`` the input for ResNet's 7x7 stride-2
stem -- and does ``9 n**2 / R**2`` times the MACs (81/49 for 7x7).
"""

import numpy as np

from .quant import QuantConv, QuantError, output_size

__all__ = ["LargeConv", "decompose", "large_conv_from_module", "MAX_KERNEL", "SUPPORTED_STRIDES"]

MAX_KERNEL = 9
SUPPORTED_STRIDES = (1, 2)


class LargeConv(QuantConv):
    """A quint8 R x R convolution (R <= 9) in the accelerator's terms, fields as in
    :class:`host.quant.QuantConv`. Calling it is the direct golden model (no decomposition)."""

    KERNELS = tuple(range(1, MAX_KERNEL + 1))
    KERNEL_RULE = f"kernels must be at most {MAX_KERNEL}x{MAX_KERNEL}"


def large_conv_from_module(module, input_scale, input_zero_point, activation=None):
    """A :class:`LargeConv` from a ``torch.ao.nn.quantized`` Conv2d / ConvReLU2d of any
    square kernel up to 9x9 (same rules and arithmetic as ``QuantConv.from_torch``)."""
    from .torch_frontend import quant_conv_from_module
    return quant_conv_from_module(LargeConv, module, input_scale, input_zero_point, activation)


def decompose(conv, pieces=None):
    """``(conv3, input_transform)`` with ``conv3(input_transform(x)) == conv(x)`` bit for bit.

    ``conv``: a :class:`LargeConv` (or a 1x1 / 3x3 :class:`QuantConv`, decomposed alike).
    ``pieces``: 3x3 pieces per axis, default ``ceil(R / 3)`` (the pieces holding weights);
    3 gives the full 9x9 split. ``conv3`` is a 3x3 :class:`QuantConv`, padding 0, with
    ``pieces**2 * C`` input channels; ``input_transform`` maps u8 (N, C, H, W) to
    (N, pieces**2 * C, H', W').
    """
    r = conv.kernel_size
    n = -(-r // 3) if pieces is None else int(pieces)
    if not -(-r // 3) <= n <= 3:
        raise QuantError(f"a {r}x{r} kernel needs {-(-r // 3)} to 3 pieces per axis, got {n}")
    k, c = conv.out_channels, conv.in_channels
    wpad = np.zeros((k, c, 3 * n, 3 * n), dtype=np.int8)
    wpad[:, :, :r, :r] = conv.weight
    # W'[k, (a, b), c, u, v] = wpad[k, c, 3a + u, 3b + v]
    w3 = wpad.reshape(k, c, n, 3, n, 3).transpose(0, 2, 4, 1, 3, 5).reshape(k, n * n * c, 3, 3)
    stride, padding, z_x = conv.stride, conv.padding, conv.input_zero_point
    # the folded bias: identical to conv's (the padded weights are zero); recomputed so the
    # identity is checked rather than assumed
    bias_q = conv.bias_q.astype(np.int64) + z_x * (
        conv.weight.astype(np.int64).reshape(k, -1).sum(axis=1) - w3.astype(np.int64).reshape(k, -1).sum(axis=1))
    conv3 = QuantConv(weight=w3, bias_q=bias_q, multiplier=conv.multiplier,
                      input_zero_point=z_x, output_zero_point=conv.output_zero_point,
                      stride=stride, padding=0, lo=conv.lo, hi=conv.hi, table=conv.table,
                      input_scale=conv.input_scale, output_scale=conv.output_scale)
    if hasattr(conv, "table_output_zero_point"):
        conv3.table_output_zero_point = conv.table_output_zero_point

    def input_transform(x_u8):
        x_u8 = np.asarray(x_u8)
        if x_u8.dtype != np.uint8 or x_u8.ndim != 4 or x_u8.shape[1] != c:
            raise QuantError(f"input must be u8 (N, {c}, H, W), got {x_u8.dtype} {x_u8.shape}")
        batch, _, h, w = x_u8.shape
        xo = output_size(h, r, stride, padding)
        yo = output_size(w, r, stride, padding)
        rows, cols = stride * (xo - 1) + 3, stride * (yo - 1) + 3     # X' size
        need_h, need_w = rows + 3 * (n - 1), cols + 3 * (n - 1)      # padded input used
        xpad = np.full((batch, c, max(need_h, h + padding), max(need_w, w + padding)), z_x, dtype=np.uint8)
        xpad[:, :, padding:padding + h, padding:padding + w] = x_u8
        out = np.empty((batch, n, n, c, rows, cols), dtype=np.uint8)
        for a in range(n):
            for b in range(n):
                out[:, a, b] = xpad[:, :, 3 * a:3 * a + rows, 3 * b:3 * b + cols]
        return out.reshape(batch, n * n * c, rows, cols)

    input_transform.kernel_size = r
    input_transform.pieces = n
    return conv3, input_transform

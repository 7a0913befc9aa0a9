"""Convolutions with kernels up to 9x9 as one 3x3 convolution over a rearranged input.

An R x S convolution (R, S <= 9, square or not, as Inception-v3's 1x7 and 7x1; stride 1
or 2, the same in both axes; padding ``(p_r, p_s)`` up to ``(R - 1, S - 1)``) is exact as a
3x3 convolution with padding 0 and the same stride:

* the weights, padded with zeros to ``3 n_r x 3 n_s``, split into 3x3 pieces ``(a, b)``:
  ``piece(a, b) = w[:, :, 3a:3a+3, 3b:3b+3]``;
* the input ``x`` (C, H, W) is padded with the input zero point ``z_x`` (``p_r`` rows on
  the top, ``p_s`` columns on the left, as much as needed on the bottom/right), and channel block ``(a, b)`` of the new
  input is that padded input shifted by ``(3a, 3b)``:
  ``X'[(a, b), c, i, j] = xpad[c, i + 3a, j + 3b]``, cropped to ``s * (X_O - 1) + 3`` rows
  (columns alike), so output ``(x, y)``'s window starts at ``(s*x, s*y)`` in every block;
* the 3x3 weights are ``W'[k, (a, b), c] = piece(a, b)[k, c]``, in the same channel order.

Every padded position holds ``z_x``, so the accumulator ``sum(x * w)`` is the original
conv's, and the folded bias ``round(bias / (s_x * s_w)) - z_x * sum(w[k])`` is unchanged
(the padded weights are zero). Multiplier, zero points, clamp and table carry over.

Only the pieces that hold weights are kept: ``n_r = ceil(R / 3)`` by ``n_s = ceil(S / 3)``
(``pieces=3`` keeps all nine), so a 5x5 conv becomes a 3x3 conv over ``4 C`` channels, a
7x7 one over ``9 C`` and a 1x7 one over ``3 C``; a 3x3 conv with unequal padding is one
piece, only its input padded by the host. The cost is DRAM traffic and buffer space: the accelerator reads ``n**2`` shifted
copies of the (cropped, padded) input -- about ``9 x`` the input for ResNet's 7x7 stride-2
stem -- and does ``9 n**2 / R**2`` times the MACs (81/49 for 7x7).
"""

import numpy as np

from host.golden.quant import MAX_KERNEL, SUPPORTED_STRIDES, LargeConv, QuantConv, QuantError, output_size, pair
from host.runtime.host_ops import shifted_copies

__all__ = ["LargeConv", "decompose", "large_conv_from_module", "MAX_KERNEL", "SUPPORTED_STRIDES"]

def large_conv_from_module(module, input_scale, input_zero_point, activation=None):
    """A :class:`LargeConv` from a ``torch.ao.nn.quantized`` Conv2d / ConvReLU2d with any
    kernel up to 9x9, square or not (same rules and arithmetic as ``conv_from_torch``)."""
    from host.compiler.torch_frontend import quant_conv_from_module
    return quant_conv_from_module(LargeConv, module, input_scale, input_zero_point, activation)


def decompose(conv, pieces=None):
    """``(conv3, input_transform)`` with ``conv3(input_transform(x)) == conv(x)`` bit for bit.

    ``conv``: a :class:`LargeConv` (or a 1x1 / 3x3 :class:`QuantConv`, decomposed alike).
    ``pieces``: 3x3 pieces per axis, default ``ceil(R / 3)`` by ``ceil(S / 3)`` (the pieces
    holding weights); 3 gives the full 9x9 split. ``conv3`` is a 3x3 :class:`QuantConv`,
    padding 0, with ``n_r * n_s * C`` input channels; ``input_transform`` maps u8
    (N, C, H, W) to (N, n_r * n_s * C, H', W'); its ``pieces`` is ``(n_r, n_s)``.
    """
    r, s = conv.kernel_shape
    need = (-(-r // 3), -(-s // 3))
    if pieces is None:
        nr, ns = need
    else:
        nr = ns = int(pieces)
        if not max(need) <= nr <= 3:
            raise QuantError(f"a {r}x{s} kernel needs {max(need)} to 3 pieces per axis, got {nr}")
    k, c = conv.out_channels, conv.in_channels
    wpad = np.zeros((k, c, 3 * nr, 3 * ns), dtype=np.int8)
    wpad[:, :, :r, :s] = conv.weight
    # W'[k, (a, b), c, u, v] = wpad[k, c, 3a + u, 3b + v]
    w3 = wpad.reshape(k, c, nr, 3, ns, 3).transpose(0, 2, 4, 1, 3, 5).reshape(k, nr * ns * c, 3, 3)
    stride, (ph, pw), z_x = conv.stride, pair(conv.padding), conv.input_zero_point
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

    params = {"kernel": (r, s), "stride": stride, "padding": (ph, pw), "pieces": (nr, ns),
              "zero_point": z_x}

    def input_transform(x_u8):
        x_u8 = np.asarray(x_u8)
        if x_u8.dtype != np.uint8 or x_u8.ndim != 4 or x_u8.shape[1] != c:
            raise QuantError(f"input must be u8 (N, {c}, H, W), got {x_u8.dtype} {x_u8.shape}")
        output_size(x_u8.shape[2], r, stride, ph)
        output_size(x_u8.shape[3], s, stride, pw)
        return shifted_copies(x_u8, **params)

    input_transform.kernel_size = (r, s)
    input_transform.pieces = (nr, ns)
    input_transform.params = params         # host.runtime.host_ops.shifted_copies
    return conv3, input_transform

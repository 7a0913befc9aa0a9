"""Golden integer model of a quint8 convolution, bit-exact with PyTorch (qnnpack).

This module is the arithmetic specification the RTL must match:

* the array accumulates raw products ``acc = sum(x_u8 * w_s8)`` in int32, with padded
  positions holding the input zero point ``z_x``;
* the host folds the zero-point term into the bias, quantizing it as PyTorch does:
  ``bias_q = rne(f32(bias * f32(1 / f32(s_x * s_w[k])))) - z_x * sum(w[k])`` (the product
  ``s_x * s_w[k]`` in double);
* requantization per output channel ``k``: ``a = f32(acc + bias_q)``,
  ``p = f32(a * M[k])`` with ``M[k] = f32(f32(s_w[k] * s_x) * f32(1 / s_o))``, every
  operand float32, exactly as PyTorch's qnnpack conv and linear compute it
  (``generate_requantization_scales``, ATen ``quantized/cpu/QnnpackUtils.h``),
  ``q = clamp(rne(p) + z_o, lo, hi)``; every rounding is round-half-to-even;
* an optional 256-entry u8 -> u8 table realises any elementwise activation.

Nothing here imports torch: :func:`host.compiler.torch_frontend.conv_from_torch` builds a
:class:`QuantConv` from a PyTorch module.
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["QuantConv", "LargeConv", "QuantError", "MAX_KERNEL", "add_parameters", "add_fixed", "requantize", "multiplier_fields", "float32_bits", "conv_accumulate", "wrap_int32",
           "pad_input", "pair", "output_size", "INT32_MIN", "INT32_MAX"]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

SUPPORTED_KERNELS = (1, 3)
SUPPORTED_STRIDES = (1, 2)
MAX_KERNEL = 9              # the largest kernel a decomposition (host.compiler.decompose) handles


class QuantError(ValueError):
    """A layer or quantization scheme the accelerator does not support."""


def wrap_int32(values):
    """Two's-complement wrap of integers to int32, as 32-bit hardware adders do."""
    values = np.asarray(values, dtype=np.int64)
    return ((values - INT32_MIN) % (1 << 32) + INT32_MIN).astype(np.int32)


def float32_bits(value):
    """The IEEE 754 bits of ``value`` rounded to float32, as a descriptor's float field holds them."""
    return int(np.float32(value).view(np.uint32))


def multiplier_fields(multiplier):
    """Split a positive normal float32 multiplier into (mantissa with hidden bit, exponent).

    The value is ``mantissa * 2**(exponent - 23)`` with ``mantissa`` in ``[2**23, 2**24)``.
    """
    bits = float32_bits(multiplier)
    biased = (bits >> 23) & 0xFF
    if bits >> 31 or biased == 0 or biased == 0xFF:
        raise QuantError(f"requantization multiplier must be a positive normal float32, "
                         f"got {float(multiplier)!r}")
    return (bits & 0x7FFFFF) | (1 << 23), biased - 127


def requantize(acc, multiplier, zero_point, lo, hi, table=None):
    """Requantize int32 accumulators (bias already added) to u8.

    ``acc`` has the output channel on axis 1 (N, K, ...) or is 1-D per channel when
    ``multiplier`` etc. are scalars. ``multiplier`` is float32 per channel.
    Results with ``|p| >= 2**31`` saturate by sign before the zero point is added.
    """
    acc = np.asarray(acc, dtype=np.int32)
    shape = (1, -1) + (1,) * (acc.ndim - 2) if acc.ndim >= 2 else (-1,)

    def per_channel(v, dtype):
        v = np.asarray(v, dtype=dtype)
        return v.reshape(shape) if v.ndim else v

    m = per_channel(multiplier, np.float32)
    a = acc.astype(np.float32)
    p = (a * m).astype(np.float32)
    r = np.rint(p.astype(np.float64))
    r = np.clip(r, INT32_MIN, INT32_MAX).astype(np.int64)
    q = r + per_channel(zero_point, np.int64)
    q = np.clip(q, per_channel(lo, np.int64), per_channel(hi, np.int64)).astype(np.uint8)
    if table is not None:
        q = np.asarray(table, dtype=np.uint8)[q]
    return q


def add_parameters(a_scale, b_scale, out_scale):
    """``(ma, mb, shift)`` of QNNPACK's fixed-point add for inputs quantized with scales
    ``a_scale``, ``b_scale`` and an output scale ``out_scale`` (QNNPACK's
    ``pytorch_qnnp_compute_add_quantization_params``): ``ra = f32(f32(sa) / f32(so))``,
    ``rb`` likewise, each in ``[2**-14, 2**8)``; ``shift = 21 - exponent(max(ra, rb))``;
    ``ma = lrintf(f32(ra * 2**shift))``, ``mb`` likewise (the larger in ``[2**21, 2**22)``).
    ``shift`` is 13 .. 35; above 31 QNNPACK's C shifts are undefined (see
    ``host.golden.ops.add``), so callers that need the defined arithmetic check it."""
    f32 = np.float32
    so = f32(out_scale)
    ra, rb = f32(f32(a_scale) / so), f32(f32(b_scale) / so)
    for name, r in (("a_scale / out_scale", ra), ("b_scale / out_scale", rb)):
        if not f32(2.0 ** -14) <= r < f32(256.0):
            raise QuantError(f"{name} = {float(r)!r} is outside QNNPACK's [2**-14, 2**8) range")
    exponent = int(np.array(max(ra, rb), dtype=f32).view(np.uint32) >> 23) - 127
    shift = 21 - exponent
    ma, mb = (int(np.rint(f32(r * f32(2.0 ** shift)))) for r in (ra, rb))
    return ma, mb, shift


def add_fixed(a, b, ma, mb, shift, za, zb, zo, lo=0):
    """QNNPACK's fixed-point add of u8 arrays ``a`` and ``b`` (``q8vadd``), for ``shift``
    up to 31: ``acc = ma * (a - za) + mb * (b - zb)`` (int32), ``y = acc >> shift`` rounded
    half away from zero (``(acc >> shift) + (((acc & mask) - (acc < 0)) > mask >> 1)``,
    ``mask = 2**shift - 1``), ``q = clamp(y + zo, lo, 255)`` (``lo = zo`` for add+ReLU)."""
    if not 0 <= shift <= 31:
        raise QuantError(f"add shift {shift} is outside 0 .. 31")
    acc = ma * (np.asarray(a, dtype=np.int64) - za) + mb * (np.asarray(b, dtype=np.int64) - zb)
    mask = (1 << shift) - 1
    y = (acc >> shift) + (((acc & mask) - (acc < 0)) > (mask >> 1))
    return np.clip(y + zo, lo, 255).astype(np.uint8)


def output_size(size, kernel, stride, padding):
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise QuantError(f"input size {size} with kernel {kernel}, stride {stride} and "
                         f"padding {padding} gives no output")
    return out


def pair(value):
    """``(rows, columns)`` of a square int or a 2-tuple (kernel, stride, padding)."""
    if isinstance(value, (tuple, list)):
        rows, cols = (int(v) for v in value)
        return rows, cols
    return int(value), int(value)


def pad_input(x, padding, zero_point):
    """Pad H and W of an (N, C, H, W) u8 tensor with the input zero point; ``padding`` is
    an int or ``(rows, columns)``."""
    ph, pw = pair(padding)
    if ph == pw == 0:
        return np.asarray(x, dtype=np.uint8)
    return np.pad(np.asarray(x, dtype=np.uint8), ((0, 0), (0, 0), (ph, ph), (pw, pw)),
                  constant_values=zero_point)


def conv_accumulate(x_u8, w_s8, stride, padding, zero_point):
    """Raw int32 sums ``sum(x * w)`` of a convolution, padded positions holding z_x.

    ``x_u8`` is (N, C, H, W), ``w_s8`` is (K, C, R, S). Returns int64 (N, K, X_O, Y_O);
    the values are exact (a float64 matmul is exact below 2**53).
    """
    x = pad_input(x_u8, padding, zero_point)
    n, c, h, w = x.shape
    k, c_w, r, s = w_s8.shape
    if c != c_w:
        raise QuantError(f"input has {c} channels, weights expect {c_w}")
    xo = (h - r) // stride + 1
    yo = (w - s) // stride + 1
    cols = np.empty((n, c, r, s, xo, yo), dtype=np.float64)
    for i in range(r):
        for j in range(s):
            cols[:, :, i, j] = x[:, :, i:i + stride * (xo - 1) + 1:stride,
                                 j:j + stride * (yo - 1) + 1:stride]
    cols = cols.reshape(n, c * r * s, xo * yo)
    wm = w_s8.reshape(k, c * r * s).astype(np.float64)
    acc = np.einsum("kq,nqp->nkp", wm, cols, optimize=True)
    return np.rint(acc).astype(np.int64).reshape(n, k, xo, yo)


@dataclass(eq=False)
class QuantConv:
    """A quint8 convolution in the accelerator's terms.

    ``weight`` is (K, C / groups, R, S) int8 with R = S in (1, 3) (``groups`` splits the
    channels and kernels into that many independent convolutions: kernel ``k`` reads the
    channels of its group; groups = C = K is a depthwise conv); ``bias_q`` int32 per kernel
    (zero-point term folded in); ``multiplier`` float32 per kernel; ``input_zero_point``
    and ``output_zero_point`` u8; ``lo``/``hi`` the clamp; ``table`` 256 u8 entries.
    Calling it maps u8 (N, C, H, W) to u8 (N, K, X_O, Y_O).
    """

    KERNELS = SUPPORTED_KERNELS           # kernel sizes the class accepts
    KERNEL_RULE = "kernels must be 1x1 or 3x3"

    weight: np.ndarray
    bias_q: np.ndarray
    multiplier: np.ndarray
    input_zero_point: int
    output_zero_point: int
    stride: int = 1
    padding: int = 0
    lo: int = 0
    hi: int = 255
    table: np.ndarray = field(default_factory=lambda: np.arange(256, dtype=np.uint8))
    input_scale: float = 1.0
    output_scale: float = 1.0
    groups: int = 1

    def __post_init__(self):
        self.weight = np.asarray(self.weight, dtype=np.int8)
        if self.weight.ndim != 4:
            raise QuantError(f"weight must be (K, C, R, S), got shape {self.weight.shape}")
        k, _, r, s = self.weight.shape
        if not isinstance(self.groups, (int, np.integer)) or self.groups < 1 or k % self.groups:
            raise QuantError(f"groups must be a positive divisor of the {k} kernels, got {self.groups}")
        self.groups = int(self.groups)
        self._check_geometry(r, s)
        self.bias_q = np.asarray(self.bias_q, dtype=np.int64)
        if self.bias_q.shape != (k,) or np.any(self.bias_q < INT32_MIN) or np.any(self.bias_q > INT32_MAX):
            raise QuantError(f"bias_q must be {k} int32 values")
        self.bias_q = self.bias_q.astype(np.int32)
        self.multiplier = np.broadcast_to(np.asarray(self.multiplier, dtype=np.float32), (k,)).copy()
        for m in self.multiplier:
            multiplier_fields(m)
        for name in ("input_zero_point", "output_zero_point", "lo", "hi"):
            v = int(getattr(self, name))
            if not 0 <= v <= 255:
                raise QuantError(f"{name} must be in [0, 255], got {v}")
            setattr(self, name, v)
        if self.lo > self.hi:
            raise QuantError(f"clamp bounds are empty: lo={self.lo} > hi={self.hi}")
        self.table = np.asarray(self.table, dtype=np.uint8)
        if self.table.shape != (256,):
            raise QuantError(f"activation table must have 256 entries, got {self.table.shape}")

    def _check_geometry(self, r, s):
        """Kernel, stride and padding the class accepts: square kernels of ``KERNELS``,
        stride 1 or 2, padding up to kernel - 1 (the array's own limits)."""
        if r != s:
            raise QuantError(f"kernel {r}x{s} is not supported; kernels must be square")
        if r not in self.KERNELS:
            raise QuantError(f"kernel {r}x{s} is not supported; {self.KERNEL_RULE}")
        if self.stride not in SUPPORTED_STRIDES:
            raise QuantError(f"stride {self.stride} is not supported; strides must be 1 or 2")
        if not isinstance(self.padding, (int, np.integer)) or not 0 <= self.padding <= r - 1:
            raise QuantError(f"padding {self.padding} is not supported for a {r}x{r} kernel; "
                             f"it must be an int in [0, {r - 1}]")

    @property
    def kernel_size(self):
        return self.weight.shape[2]

    @property
    def kernel_shape(self):
        """``(R, S)``: kernel rows and columns."""
        return tuple(self.weight.shape[2:])

    @property
    def in_channels(self):
        return self.weight.shape[1] * self.groups

    @property
    def depthwise(self):
        """One input channel per kernel, one kernel per channel."""
        return self.groups > 1 and self.groups == self.in_channels == self.out_channels

    def group(self, index):
        """The ``index``-th group as a QuantConv of its own (groups 1): its kernels, their
        parameters; it reads channels ``index * C / groups ..`` of the input."""
        k = self.out_channels // self.groups
        part = slice(index * k, (index + 1) * k)
        return QuantConv(weight=self.weight[part], bias_q=self.bias_q[part],
                         multiplier=self.multiplier[part], input_zero_point=self.input_zero_point,
                         output_zero_point=self.output_zero_point, stride=self.stride,
                         padding=self.padding, lo=self.lo, hi=self.hi, table=self.table,
                         input_scale=self.input_scale, output_scale=self.output_scale)

    @property
    def out_channels(self):
        return self.weight.shape[0]

    def output_shape(self, height, width):
        (r, s), (ph, pw) = self.kernel_shape, pair(self.padding)
        return (output_size(height, r, self.stride, ph), output_size(width, s, self.stride, pw))

    def accumulate(self, x_u8):
        """int32 accumulators with the folded bias: what the output buffer holds at the end."""
        c = self.weight.shape[1]
        if x_u8.shape[1] != self.in_channels:
            raise QuantError(f"input has {x_u8.shape[1]} channels, the layer expects {self.in_channels}")
        k = self.out_channels // self.groups
        acc = np.concatenate([conv_accumulate(x_u8[:, g * c:(g + 1) * c], self.weight[g * k:(g + 1) * k],
                                              self.stride, self.padding, self.input_zero_point)
                              for g in range(self.groups)], axis=1)
        return wrap_int32(acc + self.bias_q.astype(np.int64)[None, :, None, None])

    def __call__(self, x_u8):
        x_u8 = np.asarray(x_u8)
        if x_u8.dtype != np.uint8 or x_u8.ndim != 4:
            raise QuantError(f"input must be u8 (N, C, H, W), got {x_u8.dtype} {x_u8.shape}")
        self.output_shape(*x_u8.shape[2:])
        return requantize(self.accumulate(x_u8), self.multiplier, self.output_zero_point,
                          self.lo, self.hi, self.table)

    def max_abs_accumulator(self):
        """Bound on |acc + bias_q| over all u8 inputs."""
        w = self.weight.astype(np.int64).reshape(self.out_channels, -1)
        pos = np.where(w > 0, w, 0).sum(axis=1) * 255
        neg = np.where(w < 0, -w, 0).sum(axis=1) * 255
        return np.maximum(pos, neg) + np.abs(self.bias_q.astype(np.int64))


class LargeConv(QuantConv):
    """A quint8 R x S convolution (R, S <= 9, square or not) in the accelerator's terms,
    fields as in :class:`host.golden.quant.QuantConv`; ``padding`` is an int or ``(rows, columns)``,
    each up to the kernel's size in that axis minus one. Calling it is the direct golden
    model (no decomposition)."""

    KERNELS = tuple(range(1, MAX_KERNEL + 1))
    KERNEL_RULE = f"kernels must be at most {MAX_KERNEL}x{MAX_KERNEL}"

    def _check_geometry(self, r, s):
        if r not in self.KERNELS or s not in self.KERNELS:
            raise QuantError(f"kernel {r}x{s} is not supported; {self.KERNEL_RULE}")
        if self.stride not in SUPPORTED_STRIDES:
            raise QuantError(f"stride {self.stride} is not supported; strides must be 1 or 2 "
                             f"(the same in both axes)")
        try:
            ph, pw = pair(self.padding)
        except (TypeError, ValueError):
            raise QuantError(f"padding {self.padding!r} must be an int or (rows, columns)") from None
        if not (0 <= ph <= r - 1 and 0 <= pw <= s - 1):
            raise QuantError(f"padding {self.padding} is not supported for a {r}x{s} kernel; "
                             f"it must be in [0, {r - 1}] x [0, {s - 1}]")
        self.padding = ph if ph == pw else (ph, pw)

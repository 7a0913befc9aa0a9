"""Golden models of the ONNX Runtime CPU kernels a quantized ONNX network runs outside its
convolutions: numpy only, bit-exact with ONNX Runtime 1.31 (CPU execution provider, MLAS) on
x86-64 with AVX2 / AVX-512.

:mod:`host.golden.ops` does the same for PyTorch; the two front ends' arithmetic differs
(ONNX Runtime divides where PyTorch multiplies by a reciprocal, adds the output zero point in
float where PyTorch adds it after rounding, ...), so each has its own models.

Arrays are in ONNX's own types: ``uint8`` or ``int8`` (the zero point's type says which),
float32; layouts NCHW. Notation as in :mod:`host.golden.ops`: ``f32(e)`` rounds ``e`` to
float32, every float operation is one float32 operation unless written ``fma`` (one
rounding), ``rne`` rounds half to even (``cvtps2dq``), ``sat`` saturates to the 8-bit type.
``lo`` / ``hi`` are the type's limits (0 / 255 or -128 / 127).

Sources (``onnxruntime/core``): ``providers/cpu/quantization/quantize_linear.cc`` and
``mlas/lib/quantize.cpp`` / ``intrinsics/avx512/quantize_avx512f.cpp`` (QuantizeLinear,
DequantizeLinear); ``mlas/lib/qladd.cpp`` / ``intrinsics/avx2/qladd_avx2.cpp``
(QLinearAdd); ``contrib_ops/cpu/quantization/qlinear_global_average_pool.cc`` and
``mlas/lib/qlgavgpool.cpp`` (QLinearGlobalAveragePool); ``providers/cpu/nn/pool.cc`` (MaxPool
of 8-bit and float tensors).
"""

import numpy as np

from host.golden.ops import _fma_f32

__all__ = ["quantize_linear", "dequantize_linear", "qlinear_add", "qlinear_global_average_pool",
           "max_pool", "requantize_output", "to_offset_u8", "from_offset_u8", "type_limits"]

F32 = np.float32


def type_limits(dtype):
    """``(lo, hi)`` of an 8-bit ONNX type (numpy ``uint8`` or ``int8``)."""
    info = np.iinfo(np.dtype(dtype))
    if info.bits != 8:
        raise ValueError(f"an 8-bit type is needed, got {np.dtype(dtype)}")
    return int(info.min), int(info.max)


def to_offset_u8(x):
    """An ``int8`` array as the accelerator holds it: ``x + 128`` as ``uint8`` (exact; a
    ``uint8`` array is returned as it is). Zero points move the same way."""
    x = np.asarray(x)
    if x.dtype == np.int8:
        return (x.view(np.uint8) ^ np.uint8(0x80)).astype(np.uint8)
    if x.dtype != np.uint8:
        raise ValueError(f"expected a uint8 or int8 array, got {x.dtype}")
    return x


def from_offset_u8(x, signed):
    """Inverse of :func:`to_offset_u8`: ``x - 128`` as ``int8`` when ``signed``."""
    x = np.asarray(x, dtype=np.uint8)
    return (x ^ np.uint8(0x80)).view(np.int8) if signed else x


def _scalar(v, dtype=F32):
    a = np.asarray(v)
    if a.size != 1:
        raise ValueError(f"a per-tensor (scalar) quantization parameter is needed, got shape {a.shape}")
    return a.reshape(()).astype(dtype)[()]


def _rne(values):
    return np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64)


def _clamp_round(t, zero_point, dtype):
    """MLAS's requantization tail: ``rne(min(max(t, lo - z), hi - z)) + z`` (the bounds are
    float32; ``maxps`` with the bound second turns NaN into ``lo - z``)."""
    lo, hi = type_limits(dtype)
    z = int(zero_point)
    t = np.asarray(t, dtype=F32)
    t = np.where(np.isnan(t), F32(lo - z), t)
    t = np.minimum(np.maximum(t, F32(lo - z)), F32(hi - z))
    return (_rne(t) + z).astype(dtype)


def quantize_linear(x, scale, zero_point):
    """QuantizeLinear, per tensor, to the zero point's type (``MlasQuantizeLinear``, AVX-512F
    kernel): ``q = rne(min(max(f32(x / scale), lo - z), hi - z)) + z``. A true division (not a
    multiplication by the reciprocal); clamped before rounding; NaN gives ``lo``, +-inf the
    limits."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise ValueError(f"x must be float32, got {x.dtype}")
    zp = np.asarray(zero_point)
    dtype = zp.dtype if zp.dtype in (np.uint8, np.int8) else np.uint8
    s = _scalar(scale)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t = (x / s).astype(F32)
    return _clamp_round(t, int(_scalar(zp, np.int64)), dtype)


def dequantize_linear(q, scale, zero_point, axis=1):
    """DequantizeLinear (``DequantizeLinearApply``): ``y = f32(f32(int32(q) - z) * scale)``;
    ``scale`` / ``zero_point`` per tensor, or per channel along ``axis`` (constant weights)."""
    q = np.asarray(q)
    s = np.asarray(scale, dtype=F32)
    z = np.asarray(zero_point if zero_point is not None else 0).astype(np.int32)
    if s.size != 1:
        shape = [1] * q.ndim
        shape[axis % q.ndim] = -1
        s, z = s.reshape(shape), np.broadcast_to(z.reshape(-1), s.size).reshape(shape)
    else:
        s, z = s.reshape(()), z.reshape(())
    return ((q.astype(np.int32) - z).astype(F32) * s).astype(F32)


def requantize_output(acc, scale, zero_point, dtype):
    """``MlasRequantizeOutput`` (QLinearConv, QGemm, QLinearMatMul, the global average pool):
    ``q = rne(min(max(f32(f32(acc) * scale), lo - z), hi - z)) + z`` with ``acc`` int32
    (bias added, wrapping) and ``scale`` float32 per tensor or per column (last axis)."""
    a = np.asarray(acc, dtype=np.int64)
    a = ((a + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)
    t = (a.astype(F32) * np.asarray(scale, dtype=F32)).astype(F32)
    return _clamp_round(t, zero_point, dtype)


def qlinear_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point):
    """com.microsoft QLinearAdd (``MlasQLinearAddKernelAvx2Helper``), ``a`` and ``b`` of one
    shape or either a single element:

    * ``r_a = f32(s_a / s_c)``, ``r_b = f32(s_b / s_c)``;
    * ``F = f32(f32(z_c) - fma(r_a, z_a, f32(r_b * z_b)))`` (the compiler contracts the
      scalar ``z_c - (r_a * z_a + r_b * z_b)`` into one FMA: checked against ONNX Runtime on
      qparams where the unfused form differs), plus ``f32(r_b * b)`` (or ``r_a * a``) when that
      input is a single element;
    * per element ``t = fma(a, r_a, fma(b, r_b, F))``: the raw values, not zero-point
      shifted; the output zero point is in ``F``;
    * ``q = sat(rne(t))`` (``cvtps2dq``, then ``packs_epi32`` / ``packus_epi16``).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.dtype not in (np.uint8, np.int8):
        raise ValueError(f"inputs must both be uint8 or int8, got {a.dtype} and {b.dtype}")
    dtype = a.dtype
    sa, sb, sc = _scalar(a_scale), _scalar(b_scale), _scalar(c_scale)
    za, zb, zc = (int(_scalar(v, np.int64)) for v in (a_zero_point, b_zero_point, c_zero_point))
    ra, rb = F32(sa / sc), F32(sb / sc)
    fixed = F32(F32(zc) - _fma_f32(ra, F32(za), F32(rb * F32(zb))))
    if b.size == 1 and a.size != 1:
        fixed = F32(fixed + F32(F32(b.reshape(-1)[0]) * rb))
        t = _fma_f32(a.astype(F32), ra, fixed)
    elif a.size == 1 and b.size != 1:
        fixed = F32(fixed + F32(F32(a.reshape(-1)[0]) * ra))
        t = _fma_f32(b.astype(F32), rb, fixed)
    else:
        if a.shape != b.shape:
            raise ValueError(f"QLinearAdd model: shapes {a.shape} and {b.shape} (broadcasting "
                             f"other than a single element is not modelled)")
        t = _fma_f32(a.astype(F32), ra, _fma_f32(b.astype(F32), rb, fixed))
    t = np.asarray(t, dtype=F32).astype(np.float64)
    r = np.where(np.isnan(t) | (np.abs(t) >= 2.0 ** 31), float(np.iinfo(np.int32).min), np.rint(t))
    lo, hi = type_limits(dtype)
    return np.clip(r, lo, hi).astype(dtype)


def qlinear_global_average_pool(x, x_scale, x_zero_point, y_scale, y_zero_point):
    """com.microsoft QLinearGlobalAveragePool, NCHW (``MlasQLinearGlobalAveragePoolNchw``):
    per image and channel ``acc = sum(x) - z_x * (H W)`` (int32),
    ``scale = f32(s_x / f32(s_y * f32(H W)))``, then :func:`requantize_output` with ``z_y``.
    The output is (N, C, 1, 1)."""
    x = np.asarray(x)
    if x.dtype not in (np.uint8, np.int8) or x.ndim < 3:
        raise ValueError(f"x must be a uint8 / int8 (N, C, ...) array, got {x.dtype} {x.shape}")
    image = int(np.prod(x.shape[2:], dtype=np.int64))
    sx, sy = _scalar(x_scale), _scalar(y_scale)
    scale = F32(sx / F32(sy * F32(image)))
    acc = x.reshape(x.shape[0], x.shape[1], -1).astype(np.int64).sum(axis=2) \
        - int(_scalar(x_zero_point, np.int64)) * image
    y = requantize_output(acc, scale, int(_scalar(y_zero_point, np.int64)), x.dtype)
    return y.reshape(x.shape[:2] + (1,) * (x.ndim - 2))


def _pool_size(size, kernel, stride, pad_begin, pad_end, dilation, ceil_mode):
    effective = dilation * (kernel - 1) + 1
    span = size + pad_begin + pad_end - effective
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1        # the last window must start inside the input or its begin padding
    return out


def max_pool(x, kernel_shape, strides=None, pads=None, dilations=None, ceil_mode=False):
    """MaxPool (2-D, NCHW) on an 8-bit or float tensor: the maximum over each window's
    in-bounds positions (padding takes no part: ONNX pads with -inf). Output size as ONNX
    computes it (``ceil_mode`` rounds up, and a window starting in the end padding is
    dropped). Exact in any type."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {x.shape}")
    kh, kw = kernel_shape
    sh, sw = strides or (1, 1)
    dh, dw = dilations or (1, 1)
    pt, pl, pb, pr = pads or (0, 0, 0, 0)
    oh = _pool_size(x.shape[2], kh, sh, pt, pb, dh, ceil_mode)
    ow = _pool_size(x.shape[3], kw, sw, pl, pr, dw, ceil_mode)
    if np.issubdtype(x.dtype, np.floating):
        fill = -np.inf
    else:
        fill = np.iinfo(x.dtype).min
    need_h = (oh - 1) * sh + dh * (kh - 1) + 1
    need_w = (ow - 1) * sw + dw * (kw - 1) + 1
    xp = np.full(x.shape[:2] + (max(need_h, pt + x.shape[2]), max(need_w, pl + x.shape[3])), fill, dtype=x.dtype)
    xp[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]] = x
    y = None
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            y = win.copy() if y is None else np.maximum(y, win)
    return y

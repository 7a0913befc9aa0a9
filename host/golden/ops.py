"""Golden models of the quint8 operators a quantized CNN runs outside its convolutions.

Bit-exact with PyTorch 2.13 on x86-64 (AVX2 or AVX-512, ``torch.backends.quantized.engine =
"qnnpack"``). Arrays are u8 in logical NCHW order (``t.int_repr().numpy()``); qparams are
passed explicitly. Where PyTorch's result depends on the input's memory format the function
takes ``channels_last``: whether the tensor's ``suggest_memory_format()`` is channels_last,
``suggests_channels_last(t.shape, t.stride())`` (qnnpack's conv outputs are, 1x1 images
included). A 4-D tensor with C == 1 or H * W == 1 is channels_last-contiguous whatever its
strides, and PyTorch's kernels then take their channels_last paths; the models do too.

Notation: ``f32(e)`` rounds ``e`` to float32, every float operation below is one float32
operation (no FMA unless written ``fma``), ``rne`` rounds half to even, scales are used as
``f32(scale)`` (ATen passes ``q_scale()`` to its kernels as float).

Paths (sources: ``aten/src/ATen/native/quantized/cpu``, QNNPACK under ``.../cpu/qnnpack``,
FBGEMM ``QuantUtils.h``/``QuantUtilsAvx2.cc``), and how the memory format matters:

* quantize_per_tensor: ``quantize_tensor_per_tensor_affine_cpu`` -> ``fbgemm::Quantize``
  (legacy, AVX2 + FMA); dequantize: ``fbgemm::Dequantize``. Elementwise.
* add / add_relu: ``BinaryOps.cpp qnnpack_add`` -> QNNPACK ``add.c`` + ``q8vadd`` (fixed
  point). Elementwise, except in a scale range where PyTorch's shift is undefined behaviour.
* max_pool2d: QNNPACK u8 max pool, or ``Pooling.cpp q_maxpool_2d`` with ceil_mode.
* avg_pool2d: ``AveragePool2d.cpp qnnpack_avg_pool2d`` -> QNNPACK ``average-pooling.c`` +
  ``q8avgpool`` unless ceil_mode; with ceil_mode ``avg_pool2d_out_frame`` (NCHW) or
  ``QuantizedOpKernels.cpp _qavg_pool_nhwc_kernel`` (channels_last, different rounding).
* adaptive_avg_pool2d: ``AdaptiveAveragePooling.cpp``: the QNNPACK avg pool when the output
  size divides the input's, else ``adaptive_avg_pool_single_out_frame`` (NCHW) or
  ``_qadaptive_avg_pool_kernel`` (channels_last, different rounding).
* cat: ``TensorShape.cpp quantized_cat_impl``: ``qcat_nhwc_kernel`` for dim 1 and all inputs
  channels_last, else dequantize / float cat / quantize_per_tensor (different rounding).
* relu: QNNPACK clamp ``[zp, 255]``, elementwise. hardtanh / relu6 / clamp:
  ``qclamp.cpp qnnpack_clamp``, which returns a channels_last input's NHWC buffer read as NCHW.
* hardswish, sigmoid: QNNPACK ``hardswish.c`` / ``sigmoid.c`` 256-entry tables, elementwise.
* ceil_mode pools and non-QNNPACK adaptive pools of an NCHW (N, C, 1, 1) input return their
  NHWC result read as NCHW (``_as_pytorch_writes``).

``leaky_relu`` and ``elu`` are not modelled: ATen computes them with ``cpu_kernel_vec``, whose
result depends on where an element falls (vector body or scalar tail of TensorIterator's
chunks), and elu on SLEEF's ``expf``.
"""

import numpy as np

from host.golden.quant import add_fixed, add_parameters, pair

__all__ = ["quantize", "dequantize", "add", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
           "cat", "torch_cat", "relu", "hardtanh", "relu6", "hardswish", "sigmoid",
           "suggests_channels_last"]

F32 = np.float32
INT32_MIN = -(1 << 31)
INT32_FLOAT_MAX = F32(2147483520.0)   # largest float32 below 2**31: FBGEMM/ATen clip to it

# ATen's channels_last kernels split the channels between a vector body and a scalar tail
# whose arithmetic differs; the body covers the first ``C // lanes * lanes`` channels. The
# lanes depend on the build each kernel dispatches to on the host: the average pool's
# AVX-512 one (16 floats) where the CPU has AVX-512, else AVX2 (8); adaptive pool's and
# cat's AVX2 one (8 floats) in either case. (An ARM host differs again; the models follow
# PyTorch on x86-64.)
def _cpu_has_avx512():
    """Whether this x86 host has AVX-512F (ATen then dispatches some kernels to their
    AVX-512 build); from ``/proc/cpuinfo``, False where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


AVG_POOL_NHWC_LANES = 16 if _cpu_has_avx512() else 8
ADAPTIVE_POOL_NHWC_LANES = 8
CAT_NHWC_LANES = 8


# ---------------------------------------------------------------------------------------------
# validation and float32 arithmetic helpers

def _u8(x, name="x", ndim=None):
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ValueError(f"{name} must be a u8 array, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D (N, C, H, W), got shape {x.shape}")
    if ndim is None and x.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension")
    return x


def _scale(scale, name="scale"):
    """``f32(scale)``, which must be a positive normal float32 (QNNPACK's own check)."""
    try:
        s = F32(scale)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {scale!r}") from None
    if not (np.isfinite(s) and s >= np.finfo(F32).tiny):
        raise ValueError(f"{name} must be a positive normal float32, got {scale!r}")
    return s


def _zero_point(zero_point, name="zero_point"):
    if isinstance(zero_point, bool) or not isinstance(zero_point, (int, np.integer)) \
            or not 0 <= zero_point <= 255:
        raise ValueError(f"{name} must be an int in [0, 255], got {zero_point!r}")
    return int(zero_point)


def _is_channels_last(x, channels_last):
    """Whether PyTorch's kernels see the 4-D tensor as channels_last-contiguous: when it is
    channels_last, and also when it is NCHW with C == 1 or H * W == 1."""
    if not isinstance(channels_last, (bool, np.bool_)):
        raise ValueError(f"channels_last must be a bool, got {channels_last!r}")
    if x.ndim != 4:
        if channels_last:
            raise ValueError(f"channels_last needs a 4-D input, got shape {x.shape}")
        return False
    return bool(channels_last) or x.shape[1] == 1 or x.shape[2] * x.shape[3] == 1


def suggests_channels_last(shape, strides):
    """The ``channels_last`` argument for a tensor of this shape and these strides
    (``t.shape``, ``t.stride()``): whether ``t.suggest_memory_format()`` is channels_last
    (c10 ``is_channels_last_strides_2d_s4``). It tells apart the (N, C, 1, 1) tensors qnnpack's
    conv returns, strides ``(C, 1, C, C)``, from NCHW ones, ``(C, 1, 1, 1)``, although both
    are ``is_contiguous()``."""
    if len(shape) != 4 or len(strides) != 4:
        return False
    if strides[1] == 0:
        return False
    smallest = 0
    for d in (1, 3, 2, 0):
        if shape[d] == 0 or strides[d] < smallest:
            return False
        if d == 0 and smallest == strides[1]:
            return False
        smallest = strides[d] * (shape[d] if shape[d] > 1 else 1)
    return True


def _rne(values):
    """Round float32 values half to even, as ``cvtps2dq``/``nearbyint``/``lrintf`` do."""
    return np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64)


def _fma_f32(a, b, c):
    """``fma(a, b, c)`` on float32 operands, rounded once to float32 (an x86 FMA)."""
    a, b, c = (np.asarray(v, dtype=F32).astype(np.float64) for v in (a, b, c))
    with np.errstate(invalid="ignore", over="ignore"):
        p = a * b                                  # exact: 24 x 24 bits
        s = p + c
        t = s - p
        err = (p - (s - t)) + (c - t)              # s + err == p + c exactly (TwoSum)
        r = s.astype(F32)
        d = s - r.astype(np.float64)
        other = np.nextafter(r, np.where(d > 0, F32(np.inf), F32(-np.inf)).astype(F32))
        tie = (d != 0) & ((r.astype(np.float64) + other.astype(np.float64)) / 2 == s) & (err != 0)
        # s is halfway between two floats and was rounded to even: the exact sum is not halfway
        r = np.where(tie & (err > 0), np.maximum(r, other), np.where(tie & (err < 0), np.minimum(r, other), r))
    return r.astype(F32)


def _cvtps_epi32(t):
    """``_mm*_cvtps_epi32`` after FBGEMM's ``min(t, INT32_FLOAT_MAX)`` (NaN -> the bound):
    rne, with values below -2**31 giving INT32_MIN."""
    t = np.asarray(t, dtype=F32)
    t = np.where(np.isnan(t), INT32_FLOAT_MAX, np.minimum(t, INT32_FLOAT_MAX))
    t64 = t.astype(np.float64)
    return np.where(t64 < INT32_MIN, INT32_MIN, np.rint(np.where(np.isfinite(t64), t64, 0)))\
        .astype(np.int64)


def _wrap_int32(v):
    return (v - INT32_MIN) % (1 << 32) + INT32_MIN


def _quantize_vector(x, inv_scale, zero_point):
    """FBGEMM/ATen vector quantization (non-legacy): ``clamp(cvt(f32(x * inv)) + zp, 0, 255)``,
    the zero point added in int32 (wrapping)."""
    t = (np.asarray(x, dtype=F32) * F32(inv_scale)).astype(F32)
    return np.clip(_wrap_int32(_cvtps_epi32(t) + zero_point), 0, 255).astype(np.uint8)


def _quantize_val(x, scale, zero_point):
    """ATen ``quantize_val`` (scalar ``fbgemm::Quantize<uint8_t>``, legacy, no FMA):
    ``inv = f32(1 / f32(scale))``, ``clamp(rne(f32(f32(x * inv) + zp)), 0, 255)``."""
    inv = F32(1) / F32(scale)
    t = ((np.asarray(x, dtype=F32) * inv).astype(F32) + F32(zero_point)).astype(F32)
    return np.clip(_rne(t), 0, 255).astype(np.uint8)


def _quantize_fbgemm(x, scale, zero_point):
    """``fbgemm::Quantize<uint8_t>`` on arrays (legacy, AVX2 + FMA; ``quantize_per_tensor``,
    ATen ``quantize_vec``): ``clamp(cvt(min(fma(x, f32(1 / f32(scale)), zp), 2147483520)), 0, 255)``."""
    t = _fma_f32(x, F32(1) / F32(scale), F32(zero_point))
    return np.clip(_cvtps_epi32(t), 0, 255).astype(np.uint8)


def _pool_params(kernel_size, stride, padding, dilation=1):
    """``(kh, kw), (sh, sw), (ph, pw), (dh, dw)``; PyTorch needs padding <= half the effective kernel."""
    try:
        (kh, kw), (ph, pw), (dh, dw) = pair(kernel_size), pair(padding), pair(dilation)
        sh, sw = (kh, kw) if stride is None or stride == () or stride == [] else pair(stride)
    except (TypeError, ValueError):
        raise ValueError(f"kernel_size {kernel_size!r}, stride {stride!r}, padding {padding!r} and "
                         f"dilation {dilation!r} must be ints or pairs of ints") from None
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"kernel {kernel_size}, stride {stride} and dilation {dilation} must be "
                         f"positive and padding {padding} non-negative")
    for p, k, d in ((ph, kh, dh), (pw, kw, dw)):
        if p > ((k - 1) * d + 1) // 2:
            raise ValueError(f"padding {p} exceeds half the effective kernel {(k - 1) * d + 1} "
                             f"(PyTorch rejects it)")
    return (kh, kw), (sh, sw), (ph, pw), (dh, dw)


def _pooled_size(size, kernel, stride, pad, dilation, ceil_mode, allow_empty=False):
    """ATen ``pooling_output_shape``."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    if out < 1 - allow_empty:
        raise ValueError(f"input size {size} with kernel {kernel}, stride {stride}, padding {pad} "
                         f"gives no output")
    return out


def _windows(x, kernel, stride, pad, out_hw, dilation=(1, 1), fill=0):
    """Yield the (N, C, OH, OW) slices of ``x`` under each kernel offset; positions outside the
    input read ``fill``, or the nearest edge pixel when ``fill == "edge"``."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, pad, dilation, out_hw
    h, w = x.shape[2:]
    below = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - ph - h)
    right = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - pw - w)
    widths = ((0, 0), (0, 0), (ph, below), (pw, right))
    padded = np.pad(x, widths, mode="edge") if isinstance(fill, str) else \
        np.pad(x, widths, constant_values=fill)
    for i in range(kh):
        for j in range(kw):
            yield padded[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]


def _window_sums(x, zero_point, kernel, stride, pad, out_hw):
    """``acc = sum (x - zp)`` over the in-bounds part of each window, and its element count."""
    acc = sum(_windows(x.astype(np.int64) - zero_point, kernel, stride, pad, out_hw))
    inside = np.ones((1, 1) + x.shape[2:], dtype=np.int64)
    count = sum(_windows(inside, kernel, stride, pad, out_hw))
    return acc, count


def _pool_extent(size, out, kernel, stride, pad):
    """ATen's ``hend - hstart`` per output row before clipping to the input:
    ``min(start + k, size + pad) - start`` with ``start = o * s - pad``."""
    start = np.arange(out) * stride - pad
    return np.minimum(start + kernel, size + pad) - start


def _as_pytorch_writes(y, x, channels_last):
    """ATen's channels_last pooling kernels take every input that is channels_last-contiguous,
    which includes an NCHW-contiguous (N, C, 1, 1) one, write the output in NHWC order, but
    allocate it in ``x.suggest_memory_format()``: NCHW for that input. PyTorch then returns
    the NHWC buffer read as NCHW; so does this."""
    if channels_last or x.shape[2] * x.shape[3] != 1 or y.shape[1] == 1 or y.shape[2] * y.shape[3] == 1:
        return y
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1)).reshape(y.shape)


def _lanes_mask(channels, body):
    """Channels ATen's vector body handles: the first ``channels // body * body``."""
    return np.arange(channels) < channels // body * body


# ---------------------------------------------------------------------------------------------
# quantize / dequantize

def quantize(x, scale, zero_point):
    """``torch.quantize_per_tensor(x, scale, zero_point, torch.quint8)`` (eager ``Quantize``,
    FX ``quantize_per_tensor``): FBGEMM's legacy AVX2 path (``QuantizeAvx2<uint8_t, true>``)
    ``inv = f32(1 / f32(scale))``, ``t = fma(x, inv, f32(zp))`` (one rounding),
    ``t = min(t, 2147483520)`` (NaN -> 2147483520), ``q = clamp(rne(t), 0, 255)``; so NaN and
    +inf give 255, -inf gives 0. ``x`` must be float32 (PyTorch rejects other dtypes)."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise ValueError(f"x must be a float32 array, got {x.dtype}")
    return _quantize_fbgemm(x, _scale(scale), _zero_point(zero_point))


def dequantize(q, scale, zero_point):
    """``Tensor.dequantize()`` (``DeQuantize``): ``fbgemm::Dequantize``, ``f32(scale) * f32(q - zp)``."""
    q = _u8(q, "q")
    return (_scale(scale) * (q.astype(np.int32) - _zero_point(zero_point)).astype(F32)).astype(F32)


# ---------------------------------------------------------------------------------------------
# add

QNNPACK_ADD_BLOCK = 4096   # operator-run.c: q8vadd runs on 4096-element blocks of the buffer


def add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, out_scale, out_zero_point, relu=False,
        channels_last=False):
    """``torch.ops.quantized.add`` / ``add_relu`` (``QFunctional.add``/``add_relu``, FX's
    converted ``operator.add``) with the qnnpack engine on equal shapes: QNNPACK's fixed-point
    add (``add.c``, ``pytorch_qnnp_compute_add_quantization_params``, ``q8vadd/sse2.c``):

    * ``ra = f32(f32(sa) / f32(so))``, ``rb`` likewise; each must lie in ``[2**-14, 2**8)``;
    * ``shift = 21 - exponent(max(ra, rb))`` (13..35), ``ma = lrintf(f32(ra * 2**shift))``,
      ``mb`` likewise (the larger in ``[2**21, 2**22)``);
    * ``acc = ma * (a - za) + mb * (b - zb)`` (fits int32);
      ``y = (acc >> shift) + (((acc & mask) - (acc < 0)) > mask >> 1)`` with
      ``mask = 2**shift - 1``: a shift rounding half away from zero;
    * ``q = clamp(y + zo, lo, 255)`` with ``lo = zo`` for add_relu (ATen's ``activationLimits``),
      else 0; add_relu with ``zo == 255`` fails in PyTorch (empty range) and raises here.

    ``max(ra, rb) < 2**-10`` gives ``shift > 31``, undefined behaviour that PyTorch's x86 build
    turns into: ``mask = 2**(shift - 32) - 1``, ``acc >> shift`` = the sign (SSE2 ``psrad``) in
    the vector kernel, ``acc >> (shift - 32)`` in the scalar one, which runs on a last
    4096-element block shorter than 8 elements, counted in ``a``'s memory order
    (``channels_last`` is ``a``'s format). Otherwise the result does not depend on either
    input's memory format (``b`` is copied into ``a``'s). Broadcasting (shapes differ) takes
    another ATen kernel and is rejected."""
    a, b = _u8(a, "a"), _u8(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (PyTorch's qnnpack add does not "
                         f"broadcast), got {a.shape} and {b.shape}")
    nhwc = _is_channels_last(a, channels_last)
    sa, sb, so = _scale(a_scale, "a_scale"), _scale(b_scale, "b_scale"), _scale(out_scale, "out_scale")
    za, zb = _zero_point(a_zero_point, "a_zero_point"), _zero_point(b_zero_point, "b_zero_point")
    zo = _zero_point(out_zero_point, "out_zero_point")
    lo = zo if relu else 0
    if lo >= 255:
        raise ValueError("add_relu with output zero point 255 has an empty output range "
                         "(QNNPACK refuses it)")
    ma, mb, shift = add_parameters(sa, sb, so)
    if shift <= 31:
        return add_fixed(a, b, ma, mb, shift, za, zb, zo, lo)
    acc = ma * (a.astype(np.int64) - za) + mb * (b.astype(np.int64) - zb)
    mask = (1 << (shift & 31)) - 1                   # x86 masks the shift count of 1 << shift
    rounding = ((acc & mask) - (acc < 0)) > (mask >> 1)
    y = (acc >> min(shift, 31)) + rounding           # psrad: counts above 31 give the sign
    if shift > 31 and 0 < a.size % QNNPACK_ADD_BLOCK < 8:
        order = np.arange(a.size).reshape(a.transpose(0, 2, 3, 1).shape if nhwc else a.shape)
        position = order.transpose(0, 3, 1, 2) if nhwc else order
        scalar = position >= a.size - a.size % QNNPACK_ADD_BLOCK
        y = np.where(scalar, (acc >> (shift & 31)) + rounding, y)
    return np.clip(y + zo, lo, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# pooling

def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, channels_last=False):
    """Quantized ``F.max_pool2d`` / ``nn.MaxPool2d`` (output qparams are the input's; output
    size ATen's ``pooling_output_shape``).

    * ``ceil_mode=False``: QNNPACK's u8 max pool (``pytorch_qnnp_create_max_pooling2d_nhwc_u8``,
      refuses a 1x1 kernel): window position ``o * s + i * d - p`` is clamped into
      ``[0, H - 1]`` (``pytorch_qnnp_indirection_init_maxpool2d``), so a padded position reads
      the edge pixel; ``y = max`` over the clamped positions. Without dilation this is the max
      over the window's in-bounds positions; with dilation it can differ (PyTorch's result).
    * ``ceil_mode=True``: ATen ``q_maxpool_2d``: ``y = max`` over the in-bounds positions.

    Memory format: matters only for an NCHW (N, C, 1, 1) input (``channels_last=False``) with
    ceil_mode and a larger output, which PyTorch scrambles (``_as_pytorch_writes``).
    """
    x = _u8(x, ndim=4)
    kernel, strides, pad, dil = _pool_params(kernel_size, stride, padding, dilation)
    if not ceil_mode and kernel == (1, 1):
        raise ValueError("PyTorch's qnnpack max pool refuses a 1x1 kernel")
    if ceil_mode and any(p > k // 2 for p, k in zip(pad, kernel)):
        raise ValueError("with ceil_mode PyTorch needs padding <= kernel_size // 2")
    out_hw = tuple(_pooled_size(s, k, st, p, d, ceil_mode)
                   for s, k, st, p, d in zip(x.shape[2:], kernel, strides, pad, dil))
    _is_channels_last(x, channels_last)
    if not ceil_mode:
        return np.maximum.reduce(list(_windows(x, kernel, strides, pad, out_hw, dil, fill="edge")))
    windows = _windows(x.astype(np.int16), kernel, strides, pad, out_hw, dil, fill=-1)
    y = np.maximum(np.maximum.reduce(list(windows)), 0).astype(np.uint8)
    return _as_pytorch_writes(y, x, channels_last)


def _qnnpack_avg_pool(x, s, zp, kernel, strides, pad):
    """QNNPACK ``average-pooling.c`` + ``q8avgpool``: padding reads the zero point (so
    count_include_pad and divisor_override are ignored), ``acc = sum (x - zp)``,
    ``m = f32(f32(s) / f32(f32(s) * f32(kh * kw)))``, ``q = clamp(rne(f32(f32(acc) * m)) + zp)``."""
    if kernel[0] * kernel[1] == 1:
        raise ValueError("PyTorch's qnnpack average pool refuses a 1x1 kernel")
    out_hw = tuple(_pooled_size(n, k, st, p, 1, False) for n, k, st, p in zip(x.shape[2:], kernel, strides, pad))
    acc, _ = _window_sums(x, zp, kernel, strides, pad, out_hw)
    m = s / (s * F32(kernel[0] * kernel[1]))
    return np.clip(_rne((acc.astype(F32) * m).astype(F32)) + zp, 0, 255).astype(np.uint8)


def avg_pool2d(x, scale, zero_point, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, channels_last=False):
    """Quantized ``nn.AvgPool2d`` / ``F.avg_pool2d`` (output qparams = input's).

    * ``ceil_mode=False``: QNNPACK (``qnnpack_avg_pool2d``): ``acc = sum (x - zp)`` over the
      window's in-bounds positions, ``m = f32(f32(s) / f32(f32(s) * f32(kh * kw)))``,
      ``q = clamp(rne(f32(f32(acc) * m)) + zp, 0, 255)``; PyTorch ignores count_include_pad
      and divisor_override on this path (always divides by kh * kw), and so does this model.
    * ``ceil_mode=True``, NCHW (``avg_pool2d_out_frame``): ``d`` = divisor_override, else the
      window's extent clipped to the padded input (count_include_pad) or its in-bounds count;
      ``m = f32(1.0 / d)`` (double), ``q = clamp(rne(f32(f32(acc * m) + zp)), 0, 255)``.
    * ``ceil_mode=True``, channels_last (``_qavg_pool_nhwc_kernel``, AVX-512 build):
      ``m = f32(1 / f32(d))``; channels below ``C // 16 * 16`` (``QuantizeAvx512``):
      ``q = clamp(rne(f32(acc * m)) + zp)``; the others (``quantize_val``):
      ``inv = f32(1 / f32(1 / m))``, ``q = clamp(rne(f32(f32(acc * inv) + zp)))``. An
      NCHW-contiguous (N, C, 1, 1) input takes this path too (see ``_as_pytorch_writes``).
    * ``ceil_mode=True`` with an empty output size: PyTorch returns an empty tensor, so does this.
    """
    x = _u8(x, ndim=4)
    s, zp = _scale(scale), _zero_point(zero_point)
    nhwc = _is_channels_last(x, channels_last)
    kernel, strides, pad, _ = _pool_params(kernel_size, stride, padding)
    if divisor_override is not None and (isinstance(divisor_override, bool) or
                                         not isinstance(divisor_override, (int, np.integer)) or divisor_override <= 0):
        raise ValueError(f"divisor_override must be a positive int, got {divisor_override!r}")
    if not ceil_mode:
        return _qnnpack_avg_pool(x, s, zp, kernel, strides, pad)
    out_hw = tuple(_pooled_size(n, k, st, p, 1, True, allow_empty=True)
                   for n, k, st, p in zip(x.shape[2:], kernel, strides, pad))
    if 0 in out_hw:
        return np.empty(x.shape[:2] + out_hw, dtype=np.uint8)
    acc, count = _window_sums(x, zp, kernel, strides, pad, out_hw)
    if divisor_override is not None:
        divisor = np.full_like(count, int(divisor_override))
    elif count_include_pad:
        ext = [_pool_extent(n, o, k, st, p) for n, o, k, st, p in zip(x.shape[2:], out_hw, kernel, strides, pad)]
        divisor = np.broadcast_to((ext[0][:, None] * ext[1][None, :])[None, None], count.shape)
    else:
        divisor = count
    if not nhwc:
        m = (1.0 / divisor.astype(np.float64)).astype(F32)
        t = ((acc.astype(F32) * m).astype(F32) + F32(zp)).astype(F32)
        return np.clip(_rne(t), 0, 255).astype(np.uint8)
    m = (F32(1) / divisor.astype(F32)).astype(F32)
    vector = _quantize_vector(acc.astype(F32), m, zp)
    scalar = _quantize_val(acc.astype(F32), F32(1) / m, zp)
    body = _lanes_mask(x.shape[1], AVG_POOL_NHWC_LANES)[None, :, None, None]
    return _as_pytorch_writes(np.where(body, vector, scalar), x, channels_last)


def _adaptive_bounds(size, out):
    """ATen ``start_index``/``end_index``: ``floor(f32(o * in) / out)``, ``ceil(f32((o + 1) * in) / out)``."""
    o = np.arange(out)
    start = np.floor((o * size).astype(F32) / F32(out)).astype(np.int64)
    end = np.ceil(((o + 1) * size).astype(F32) / F32(out)).astype(np.int64)
    return start, end


def adaptive_avg_pool2d(x, scale, zero_point, output_size, channels_last=False):
    """Quantized ``nn.AdaptiveAvgPool2d`` (output qparams = input's).

    ``output_size``: an int or ``(oh, ow)``, None keeping the input's size.

    * QNNPACK when ``(H, W) != (oh, ow)`` and ``oh | H``, ``ow | W`` (``enable_qnnpack_for_ada_avgpool``;
      includes the 1x1 global pool): the avg pool above with kernel = stride = ``(H/oh, W/ow)``.
    * else NCHW (``adaptive_avg_pool_single_out_frame``): window ``[floor(f32(o*H)/oh),
      ceil(f32((o+1)*H)/oh))``, ``r = f32(f32(1 / kh) / kw)``, ``q = rne(f32(f32(sum x) * r))``
      (raw u8 sum, no zero point: input and output qparams are equal).
    * else channels_last (``_qadaptive_avg_pool_kernel``, AVX2 build): ``acc = sum (x - zp)``,
      ``m = f32(1 / f32(kh * kw))``, ``inv = f32(1 / f32(1 / m))``; channels below ``C // 8 * 8``
      (``quantize_vec``, FBGEMM legacy): ``q = clamp(rne(fma(acc, inv, zp)))``; the others
      (``quantize_val``): ``q = clamp(rne(f32(f32(acc * inv) + zp)))``. An NCHW (N, C, 1, 1)
      input takes this path too and its output, if larger than 1x1, is scrambled
      (``_as_pytorch_writes``).
    """
    x = _u8(x, ndim=4)
    s, zp = _scale(scale), _zero_point(zero_point)
    nhwc = _is_channels_last(x, channels_last)
    h, w = x.shape[2:]
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    try:
        oh, ow = (n if o is None else int(o) for o, n in zip(sizes, (h, w), strict=True))
    except (TypeError, ValueError):
        raise ValueError(f"output_size must be an int or a pair of ints / None, got {output_size!r}") from None
    if oh < 1 or ow < 1:
        raise ValueError(f"output_size must be positive, got {output_size!r}")
    if (h, w) != (oh, ow) and h % oh == 0 and w % ow == 0:
        kernel = (h // oh, w // ow)
        return _qnnpack_avg_pool(x, s, zp, kernel, kernel, (0, 0))
    (hs, he), (ws, we) = _adaptive_bounds(h, oh), _adaptive_bounds(w, ow)
    body = _lanes_mask(x.shape[1], ADAPTIVE_POOL_NHWC_LANES)[None, :]
    out = np.empty(x.shape[:2] + (oh, ow), dtype=np.uint8)
    for i in range(oh):
        for j in range(ow):
            kh, kw = int(he[i] - hs[i]), int(we[j] - ws[j])
            raw = x[:, :, hs[i]:he[i], ws[j]:we[j]].astype(np.int64).sum(axis=(2, 3))
            if not nhwc:
                r = F32(F32(F32(1) / F32(kh)) / F32(kw))
                out[:, :, i, j] = _rne((raw.astype(F32) * r).astype(F32)).astype(np.uint8)
            else:
                m = F32(F32(1) / F32(kh * kw))
                acc = (raw - zp * kh * kw).astype(F32)
                out[:, :, i, j] = np.where(body, _quantize_fbgemm(acc, F32(1) / m, zp),
                                           _quantize_val(acc, F32(1) / m, zp))
    return _as_pytorch_writes(out, x, channels_last)


# ---------------------------------------------------------------------------------------------
# cat

def _cat_inputs(arrays, qparams_list, channels_last):
    arrays = [_u8(a, f"arrays[{i}]") for i, a in enumerate(arrays)]
    if not arrays:
        raise ValueError("cat needs at least one array")
    if len(qparams_list) != len(arrays):
        raise ValueError(f"{len(arrays)} arrays but {len(qparams_list)} (scale, zero_point) pairs")
    qparams = [(_scale(s, f"scale of arrays[{i}]"), float(s), _zero_point(z, f"zero point of arrays[{i}]"))
               for i, (s, z) in enumerate(qparams_list)]
    flags = [channels_last] * len(arrays) if isinstance(channels_last, (bool, np.bool_)) else list(channels_last)
    if len(flags) != len(arrays):
        raise ValueError("channels_last must be a bool or one bool per array")
    nhwc = [_is_channels_last(a, f) for a, f in zip(arrays, flags)]
    return arrays, qparams, nhwc


def _cat_impl(arrays, qparams, nhwc, dim, out_scale, out_zero_point):
    """ATen ``quantized_cat_impl`` (``dim`` as given)."""
    ndim = arrays[0].ndim
    if any(a.ndim != ndim for a in arrays) or not -ndim <= dim < ndim:
        raise ValueError(f"arrays must have the same rank and dim must index it, got dim {dim} "
                         f"and shapes {[a.shape for a in arrays]}")
    axis = dim % ndim
    if any(a.shape[:axis] + a.shape[axis + 1:] != arrays[0].shape[:axis] + arrays[0].shape[axis + 1:]
           for a in arrays):
        raise ValueError(f"shapes {[a.shape for a in arrays]} differ outside dim {dim}")
    so, zo = _scale(out_scale, "out_scale"), _zero_point(out_zero_point, "out_zero_point")
    if dim == 1 and ndim == 4 and all(nhwc):
        return np.concatenate([_cat_nhwc_part(a, s, s64, z, float(out_scale), so, zo)
                               for a, (s, s64, z) in zip(arrays, qparams)], axis=1)
    values = np.concatenate([dequantize(a, s, z) for a, (s, _, z) in zip(arrays, qparams)], axis=axis)
    return quantize(values, out_scale, zo)


def _cat_nhwc_part(q, s, s64, z, out_scale64, so, zo):
    """``qcat_nhwc_kernel`` on one input: a copy when its (double) scale and zero point equal the
    output's; else, AVX2 build, channels below ``C // 8 * 8`` (Vectorized<quint8>
    ``dequantize`` / ``quantize``): ``x = fma(s, q, f32(s * -z))``,
    ``clamp(rne(f32(x * f32(1.0 / so))) + zo)`` (reciprocal in double); the other channels
    (``dequantize_val`` / ``quantize_val``): ``x = f32(s * f32(q - z))``,
    ``clamp(rne(f32(f32(x * f32(1 / so)) + zo)))``."""
    if s64 == out_scale64 and z == zo:
        return q.copy()
    body = _lanes_mask(q.shape[1], CAT_NHWC_LANES)[None, :, None, None]
    vector_x = _fma_f32(s, q.astype(F32), s * F32(-z))
    vector = _quantize_vector(vector_x, F32(1.0 / out_scale64), zo)
    scalar = _quantize_val(dequantize(q, s, z), so, zo)
    return np.where(body, vector, scalar)


def cat(arrays, qparams_list, dim, out_scale, out_zero_point, channels_last=False):
    """``torch.ops.quantized.cat`` (eager ``QFunctional.cat``) into ``(out_scale, out_zero_point)``.

    ``qparams_list`` holds one ``(scale, zero_point)`` per array; ``channels_last`` is a bool or
    one bool per array. ``dim`` is used as given (PyTorch does not wrap it here):

    * ``dim == 1`` and every input 4-D channels_last: ``qcat_nhwc_kernel`` (see
      ``_cat_nhwc_part``: inputs sharing the output qparams are copied, others requantized
      with an arithmetic that depends on the channel index);
    * otherwise: ``quantize(concatenate(dequantize(a_i)), out_scale, out_zero_point)``.
    """
    arrays, qparams, nhwc = _cat_inputs(arrays, qparams_list, channels_last)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise ValueError(f"dim must be an int, got {dim!r}")
    return _cat_impl(arrays, qparams, nhwc, int(dim), out_scale, out_zero_point)


def torch_cat(arrays, qparams_list, dim, channels_last=False):
    """``torch.cat`` on quantized tensors (what FX leaves for a ``torch.cat`` between quantized
    tensors; its observers normally give the inputs equal qparams), ``cat_quantized_cpu``:
    ``dim`` is wrapped, then :func:`cat` into the first input's qparams. PyTorch 2.13 only
    warns when the inputs' qparams differ, and requantizes the others into the first's.
    Returns ``(y, scale, zero_point)``."""
    arrays, qparams, nhwc = _cat_inputs(arrays, qparams_list, channels_last)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -arrays[0].ndim <= dim < arrays[0].ndim:
        raise ValueError(f"dim must be an int indexing a {arrays[0].ndim}-D array, got {dim!r}")
    scale, zero_point = qparams_list[0]
    y = _cat_impl(arrays, qparams, nhwc, int(dim) % arrays[0].ndim, scale, zero_point)
    return y, scale, int(zero_point)


# ---------------------------------------------------------------------------------------------
# elementwise activations

def relu(x, zero_point):
    """Quantized ``torch.relu`` / ``nn.ReLU`` / ``F.relu`` (``qnnpack_relu``, QNNPACK clamp):
    ``max(x, zp)``. The output keeps the input's memory format: no dependence."""
    return np.maximum(_u8(x), _zero_point(zero_point)).astype(np.uint8)


def hardtanh(x, scale, zero_point, min_val=-1.0, max_val=1.0, channels_last=False):
    """Quantized ``nn.Hardtanh`` / ``F.hardtanh`` / ``torch.clamp`` (``qnnpack_clamp``):
    bounds ``lo = quantize_val(min_val)``, ``hi = quantize_val(max_val)`` with ``quantize_val(v) =
    clamp(rne(f32(f32(f32(v) * f32(1 / f32(scale))) + zp)), 0, 255)`` (two roundings, no FMA);
    ``y = min(max(x, lo), hi)``.

    PyTorch 2.13 bug, reproduced: the output is allocated NCHW-contiguous but filled in the
    input's memory order, so a channels_last 4-D input (C > 1, H * W > 1) gives
    ``clamp(x.transpose(0, 2, 3, 1)).reshape(x.shape)``: the NHWC buffer read as NCHW."""
    x = _u8(x)
    s, zp = _scale(scale), _zero_point(zero_point)
    try:
        min_val, max_val = float(min_val), float(max_val)
    except (TypeError, ValueError):
        raise ValueError(f"min_val and max_val must be numbers, got {min_val!r}, {max_val!r}") from None
    if min_val > max_val:
        raise ValueError(f"min_val {min_val} cannot be greater than max_val {max_val}")
    lo, hi = (int(_quantize_val(F32(v), s, zp)) for v in (min_val, max_val))
    if _is_channels_last(x, channels_last) and x.shape[1] > 1 and x.shape[2] * x.shape[3] > 1:
        x = x.transpose(0, 2, 3, 1).reshape(x.shape)
    return np.clip(x, lo, hi).astype(np.uint8)


def relu6(x, scale, zero_point, channels_last=False):
    """Quantized ``nn.ReLU6`` / ``F.relu6`` / eager ``nnq.ReLU6`` (``quantized::relu6``): all
    reach ``qnnpack_clamp``, i.e. :func:`hardtanh` with bounds 0 and 6, bug included."""
    return hardtanh(x, scale, zero_point, 0.0, 6.0, channels_last)


def _table(x, table):
    return np.asarray(table, dtype=np.uint8)[_u8(x)]


def hardswish(x, scale, zero_point, out_scale, out_zero_point):
    """Quantized ``nn.Hardswish`` (``nnq.Hardswish``, ``qnnpack_hardswish``): QNNPACK's table
    (``hardswish.c``): ``v = f32(s * f32(i - zp))``, ``u = clamp(f32(v + 3), 0, 6)``,
    ``h = f32(f32(v * u) / 6)``, ``t = clamp(f32(f32(f32(1 / so) * h) + zo), 0, 255)``,
    ``table[i] = lrintf(t)`` (rne). Elementwise: no memory-format dependence."""
    s, zp = _scale(scale), _zero_point(zero_point)
    so, zo = _scale(out_scale, "out_scale"), _zero_point(out_zero_point, "out_zero_point")
    v = (s * (np.arange(256) - zp).astype(F32)).astype(F32)
    u = np.clip((v + F32(3)).astype(F32), F32(0), F32(6))
    h = ((v * u).astype(F32) / F32(6)).astype(F32)
    t = ((F32(1) / so) * h).astype(F32) + F32(zo)
    return _table(x, _rne(np.clip(t.astype(F32), F32(0), F32(255))))


def sigmoid(x, scale, zero_point):
    """Quantized ``torch.sigmoid`` / ``nn.Sigmoid`` (``qnnpack_sigmoid``); the output's qparams
    are always ``(1/256, 0)``. QNNPACK's table (``sigmoid.c``): ``v = f32(s * f32(i - zp))``,
    ``t = clamp(f32(256 / f32(1 + expf(-v))), 0, 255)``, ``table[i] = lrintf(t)``; ``expf`` is
    taken as the correctly rounded float32 exponential (glibc's is, to 0.502 ulp)."""
    s, zp = _scale(scale), _zero_point(zero_point)
    v = (s * (np.arange(256) - zp).astype(F32)).astype(F32)
    with np.errstate(over="ignore"):
        e = np.exp(-v.astype(np.float64)).astype(F32)
    t = (F32(256) / (F32(1) + e).astype(F32)).astype(F32)
    return _table(x, _rne(np.clip(t, F32(0), F32(255))))

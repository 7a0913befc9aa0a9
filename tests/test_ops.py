"""Golden models of PyTorch's quantized non-conv operators (host.golden.ops) against PyTorch
2.13, engine qnnpack, bit for bit: every expected value is PyTorch's own ``int_repr()``."""

import itertools

import numpy as np
import pytest
import torch
import torch.ao.nn.quantized as nnq
import torch.nn as nn
import torch.nn.functional as F

from host.golden import ops

pytestmark = [pytest.mark.filterwarnings("ignore:.*quantized tensor creation functions:UserWarning"),
              pytest.mark.filterwarnings("ignore:All inputs of this cat operator must share:UserWarning")]

ZERO_POINTS = (0, 1, 127, 128, 254, 255)
FORMATS = (False, True)                      # channels_last
F32 = np.float32


@pytest.fixture(autouse=True)
def qnnpack():
    """Engine qnnpack; one thread (the modelled arithmetic does not depend on how ATen splits
    the work, and thread start-up dominates these small tensors)."""
    previous = torch.backends.quantized.engine, torch.get_num_threads()
    torch.backends.quantized.engine = "qnnpack"
    torch.set_num_threads(1)
    yield
    torch.backends.quantized.engine = previous[0]
    torch.set_num_threads(previous[1])


def qtensor(x, scale, zero_point, channels_last=False):
    """A quint8 tensor holding ``x``; channels_last ones are allocated channels_last, so that a
    (N, C, 1, 1) one gets qnnpack's conv output strides (C, 1, C, C)."""
    t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(np.ascontiguousarray(x)), scale, zero_point)
    if channels_last:
        t = torch._empty_affine_quantized(t.shape, scale=scale, zero_point=zero_point, dtype=torch.quint8,
                                          memory_format=torch.channels_last).copy_(t)
        assert ops.suggests_channels_last(t.shape, t.stride())
    return t


def u8(t):
    return t.int_repr().numpy()


def assert_same(got, want):
    assert got.dtype == np.uint8 and got.shape == want.shape, (got.dtype, got.shape, want.shape)
    wrong = np.argwhere(got != want)
    assert not len(wrong), f"{len(wrong)} of {got.size} differ, first at {wrong[0].tolist()}: " \
                           f"model {got[tuple(wrong[0])]}, PyTorch {want[tuple(wrong[0])]}"


def grid():
    """Every (a, b) pair of u8 values: two (1, 256, 16, 16) arrays."""
    a, b = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    return (a.astype(np.uint8).reshape(1, 256, 16, 16), b.astype(np.uint8).reshape(1, 256, 16, 16))


def random_scale(rng, low=-7.0, high=1.0):
    return float(np.exp(rng.uniform(low, high)))


# ---------------------------------------------------------------------------------------------
# quantize / dequantize

@pytest.mark.parametrize("zero_point", ZERO_POINTS)
def test_quantize(zero_point):
    rng = np.random.default_rng(zero_point)
    for scale in (1.0, 0.5, 1 / 3, 0.1, 2.0 ** -20, 100.0, *(random_scale(rng) for _ in range(6))):
        k = np.arange(-300, 300)
        ties = ((k + 0.5) * F32(scale)).astype(F32)       # halfway cases, and their neighbours
        special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 3e38, -3e38, 2147483520.0, 2.2e9, -2.2e9,
                            1e-45, 255 * scale, -255 * scale], dtype=F32)
        x = np.concatenate([ties, rng.normal(0, 100 * scale, 500).astype(F32), special])
        x = np.concatenate([x, np.nextafter(x, F32(np.inf)), np.nextafter(x, F32(-np.inf))]).astype(F32)
        want = u8(torch.quantize_per_tensor(torch.from_numpy(x), scale, zero_point, torch.quint8))
        assert_same(ops.quantize(x, scale, zero_point), want)
        x = x[:x.size // 3 * 3].reshape(3, -1)
        assert_same(ops.quantize(x, scale, zero_point),
                    u8(nnq.Quantize(scale, zero_point, torch.quint8)(torch.from_numpy(x))))


@pytest.mark.parametrize("zero_point", ZERO_POINTS)
def test_dequantize(zero_point):
    rng = np.random.default_rng(zero_point)
    q = np.arange(256, dtype=np.uint8).reshape(4, 4, 4, 4)
    for scale in (1.0, 1 / 3, 1e-30, 1e30, *(random_scale(rng, -20, 10) for _ in range(8))):
        for channels_last in FORMATS:
            t = qtensor(q, scale, zero_point, channels_last)
            got = ops.dequantize(q, scale, zero_point)
            assert got.dtype == np.float32
            assert_same(got.view(np.uint32).astype(np.uint8), t.dequantize().numpy().view(np.uint32).astype(np.uint8))
            assert np.array_equal(got.view(np.uint32), nnq.DeQuantize()(t).numpy().view(np.uint32))


# ---------------------------------------------------------------------------------------------
# add

def torch_add(a, sa, za, b, sb, zb, so, zo, relu, formats=(False, False)):
    op = torch.ops.quantized.add_relu if relu else torch.ops.quantized.add
    return u8(op(qtensor(a, sa, za, formats[0]), qtensor(b, sb, zb, formats[1]), so, zo))


@pytest.mark.parametrize("za,zb", list(itertools.product(ZERO_POINTS, ZERO_POINTS)))
def test_add_zero_points(za, zb):
    """Every u8 pair, for every pair of extreme zero points; outputs saturate at both ends."""
    rng = np.random.default_rng(za * 256 + zb)
    a, b = grid()
    for zo, relu in itertools.product((0, 128, 255), (False, True)):
        if relu and zo == 255:
            continue
        sa, sb = random_scale(rng), random_scale(rng)
        so = max(sa, sb) * float(np.exp(rng.uniform(-2, 1)))
        qnn = nnq.QFunctional()
        qnn.scale, qnn.zero_point = so, zo
        ta, tb = qtensor(a, sa, za), qtensor(b, sb, zb)
        want = u8(qnn.add_relu(ta, tb) if relu else qnn.add(ta, tb))
        assert_same(ops.add(a, sa, za, b, sb, zb, so, zo, relu), want)


def boundary_ratios():
    """Scale ratios at and around every power of two QNNPACK's shift depends on."""
    ratios = []
    for e in range(-14, 8):
        p = F32(2.0 ** e)
        ratios += [p, np.nextafter(p, F32(np.inf)), F32(p * 1.5), F32(p * 1.9999999)]
        if e > -14:
            ratios.append(np.nextafter(p, F32(0)))
    return [float(r) for r in ratios] + [float(np.nextafter(F32(256), F32(0)))]


@pytest.mark.parametrize("relu", (False, True))
def test_add_scale_ratios(relu):
    """Ratios a_scale / out_scale across [2**-14, 2**8), with b's ratio far smaller or equal;
    inputs: every pair of 0, 5, 10, ..., 255, 1, 254."""
    values = np.concatenate([np.arange(0, 256, 5), [1, 254]]).astype(np.uint8)
    a, b = (v.reshape(1, len(values), -1, 1) for v in np.meshgrid(values, values, indexing="ij"))
    rng = np.random.default_rng(relu)
    so = 0.05
    for ra in boundary_ratios():
        for rb in (ra, max(ra / 1000, 2.0 ** -13), float(rng.uniform(2.0 ** -14, 256))):
            za, zb, zo = (int(v) for v in rng.choice(ZERO_POINTS, 3))
            zo = min(zo, 254) if relu else zo
            sa, sb = float(F32(ra) * F32(so)), float(F32(rb) * F32(so))
            try:
                want = torch_add(a, sa, za, b, sb, zb, so, zo, relu)
            except RuntimeError:                  # the ratio computed in float32 left the range
                with pytest.raises(ValueError):
                    ops.add(a, sa, za, b, sb, zb, so, zo, relu)
                continue
            assert_same(ops.add(a, sa, za, b, sb, zb, so, zo, relu), want)


def test_add_unsupported_like_pytorch():
    a = np.zeros((1, 2, 3, 3), np.uint8)
    for sa, so, zo, relu in ((2.0 ** -15, 1.0, 0, False), (256.0, 1.0, 0, False), (1.0, 1.0, 255, True)):
        with pytest.raises(RuntimeError):
            torch_add(a, sa, 0, a, 1.0, 0, so, zo, relu)
        with pytest.raises(ValueError):
            ops.add(a, sa, 0, a, 1.0, 0, so, zo, relu)
    with pytest.raises(ValueError, match="same shape"):
        ops.add(a, 1.0, 0, a[:, :1], 1.0, 0, 1.0, 0)
    with pytest.raises(ValueError, match="u8"):
        ops.add(a.astype(np.int8), 1.0, 0, a, 1.0, 0, 1.0, 0)


@pytest.mark.parametrize("shape", [(1, 5, 1, 1), (1, 4099, 1, 1), (1, 3, 1, 1367), (2, 3, 37, 37)])
def test_add_shift_above_31(shape):
    """max(ra, rb) < 2**-10 makes QNNPACK's shift exceed 31: undefined behaviour, reproduced,
    including the scalar kernel on a short last block, located in a's memory order."""
    rng = np.random.default_rng(shape[-1])
    so = 0.05
    for (ra, rb), formats in itertools.product([(2.0 ** -14, 2.0 ** -14), (2.0 ** -11, 2.0 ** -13),
                                                (2.0 ** -10.5, 2.0 ** -12)], itertools.product(FORMATS, FORMATS)):
        a, b = (rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(2))
        za, zb, zo = (int(v) for v in rng.integers(0, 255, 3))
        sa, sb = float(F32(ra) * F32(so)), float(F32(rb) * F32(so))
        for relu in (False, True):
            want = torch_add(a, sa, za, b, sb, zb, so, zo, relu, formats)
            assert_same(ops.add(a, sa, za, b, sb, zb, so, zo, relu, channels_last=formats[0]), want)


@pytest.mark.parametrize("shape", [(1, 1, 1, 3), (2, 3, 1, 1), (1, 4097, 1, 1), (3, 5, 7, 9), (2, 16, 8, 8)])
def test_add_memory_formats(shape):
    """Inputs in every pair of memory formats, sizes on both sides of QNNPACK's 8-element
    vector width and 4096-element blocks."""
    rng = np.random.default_rng(sum(shape))
    a, b = (rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(2))
    for formats, relu in itertools.product(itertools.product(FORMATS, FORMATS), (False, True)):
        sa, sb, so = random_scale(rng), random_scale(rng), random_scale(rng, -3, 0)
        za, zb, zo = (int(v) for v in rng.integers(0, 255, 3))
        assert_same(ops.add(a, sa, za, b, sb, zb, so, zo, relu, channels_last=formats[0]),
                    torch_add(a, sa, za, b, sb, zb, so, zo, relu, formats))


# ---------------------------------------------------------------------------------------------
# memory format

@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (2, 5, 1, 1), (2, 1, 3, 3), (1, 1, 1, 1), (3, 4, 1, 6)])
def test_suggests_channels_last(shape):
    """Against the format quantized add allocates its output in (``suggest_memory_format()``)."""
    nchw = torch.empty(shape).stride()
    nhwc = torch.empty(shape, memory_format=torch.channels_last).stride()
    base = qtensor(np.zeros(4 * int(np.prod(shape)), np.uint8), 0.1, 0)
    for strides in {nchw, nhwc, torch.empty(shape).transpose(2, 3).stride()}:
        out = torch.ops.quantized.add(base.as_strided(shape, strides), base.as_strided(shape, strides), 0.1, 0)
        if nchw != nhwc:
            assert ops.suggests_channels_last(shape, strides) == (out.stride() == nhwc), strides


# ---------------------------------------------------------------------------------------------
# pooling

MAX_POOLS = [  # kernel, stride, padding, dilation, ceil_mode
    (3, 2, 1, 1, False),   # ResNet stem
    (3, 1, 1, 1, False),   # GoogLeNet / Inception branch
    (3, 2, 0, 1, True),    # GoogLeNet
    (2, 2, 0, 1, False),
    (2, 2, 0, 1, True),
    (3, 2, 1, 1, True),
    (2, 1, 1, 1, True),
    ((3, 2), (2, 1), (1, 0), 1, False),
    (3, 1, 2, 2, False),   # dilation: QNNPACK reads the edge pixel for padded positions
    (3, 2, 1, 2, True),
]


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode", MAX_POOLS)
def test_max_pool2d(kernel, stride, padding, dilation, ceil_mode):
    rng = np.random.default_rng(7)
    for shape, channels_last in itertools.product([(1, 3, 7, 7), (2, 5, 8, 11), (1, 20, 9, 6)], FORMATS):
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        q = qtensor(x, 0.1, int(rng.integers(0, 256)), channels_last)
        want = u8(F.max_pool2d(q, kernel, stride, padding, dilation, ceil_mode))
        assert_same(ops.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, channels_last), want)
        module = nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
        assert_same(ops.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, channels_last), u8(module(q)))


def test_max_pool2d_one_pixel_images():
    """An NCHW-contiguous (N, C, 1, 1) input is also channels_last-contiguous: with ceil_mode
    PyTorch runs its NHWC kernel into an NCHW output and scrambles it; the model follows."""
    x = np.arange(2 * 5, dtype=np.uint8).reshape(2, 5, 1, 1) * 20
    for channels_last in FORMATS:
        q = qtensor(x, 0.1, 3, channels_last)
        assert_same(ops.max_pool2d(x, 2, 1, 1, 1, True, channels_last), u8(F.max_pool2d(q, 2, 1, 1, ceil_mode=True)))
        assert_same(ops.max_pool2d(x, 2, 1, 1, 1, False, channels_last), u8(F.max_pool2d(q, 2, 1, 1)))


def test_max_pool2d_rejects_like_pytorch():
    x = np.zeros((1, 2, 5, 5), np.uint8)
    for args in ((1, 1, 0, 1, False), (2, 1, 2, 1, False), (3, 1, 2, 1, True)):
        with pytest.raises(RuntimeError):
            F.max_pool2d(qtensor(x, 0.1, 0), *args[:4], ceil_mode=args[4])
        with pytest.raises(ValueError):
            ops.max_pool2d(x, *args)
    with pytest.raises(ValueError, match="4-D"):
        ops.max_pool2d(x[0], 2)


AVG_POOLS = [  # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    (2, 2, 0, False, True, None),
    (3, 1, 1, False, True, None),
    (3, 2, 1, False, False, None),   # PyTorch's qnnpack path ignores count_include_pad ...
    (3, 2, 1, False, True, 5),       # ... and divisor_override
    ((2, 3), (1, 2), (1, 1), False, True, None),
    (5, 3, 2, False, True, None),
    (2, 2, 0, True, True, None),
    (3, 2, 1, True, True, None),
    (3, 2, 1, True, False, None),
    (3, 2, 1, True, True, 7),
    (2, 3, 1, True, False, None),
    (1, 1, 0, True, True, None),
]


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,count_include_pad,divisor", AVG_POOLS)
def test_avg_pool2d(kernel, stride, padding, ceil_mode, count_include_pad, divisor):
    """Channel counts around the 16-channel vector body of ATen's NHWC kernel; tie-prone
    windows (few distinct values)."""
    rng = np.random.default_rng(11)
    shapes = [(1, 3, 7, 7), (2, 15, 6, 9), (1, 17, 5, 5), (1, 33, 8, 7)]
    for (shape, channels_last), zero_point in itertools.product(itertools.product(shapes, FORMATS), (0, 1, 128, 255)):
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        if zero_point == 1:
            x = (x % 4 * 85).astype(np.uint8)
        scale = random_scale(rng)
        q = qtensor(x, scale, zero_point, channels_last)
        want = u8(F.avg_pool2d(q, kernel, stride, padding, ceil_mode, count_include_pad, divisor))
        got = ops.avg_pool2d(x, scale, zero_point, kernel, stride, padding, ceil_mode, count_include_pad,
                             divisor, channels_last)
        assert_same(got, want)
        module = nn.AvgPool2d(kernel, stride, padding, ceil_mode, count_include_pad, divisor)
        assert_same(got, u8(module(q)))


def test_avg_pool2d_corner_cases():
    """(N, C, 1, 1) inputs (PyTorch scrambles the NCHW one with ceil_mode), empty ceil_mode
    outputs, and the 1x1 kernel QNNPACK refuses."""
    rng = np.random.default_rng(12)
    x = rng.integers(0, 256, (2, 19, 1, 1), dtype=np.uint8)
    for channels_last, divisor in itertools.product(FORMATS, (None, 3)):
        q = qtensor(x, 0.03, 7, channels_last)
        want = u8(F.avg_pool2d(q, 2, 1, 1, ceil_mode=True, divisor_override=divisor))
        assert_same(ops.avg_pool2d(x, 0.03, 7, 2, 1, 1, True, True, divisor, channels_last), want)
    x = rng.integers(0, 256, (1, 4, 1, 6), dtype=np.uint8)
    want = u8(F.avg_pool2d(qtensor(x, 0.1, 3, True), 4, 1, 1, ceil_mode=True, count_include_pad=False))
    assert want.size == 0
    assert ops.avg_pool2d(x, 0.1, 3, 4, 1, 1, True, False, channels_last=True).shape == want.shape
    with pytest.raises(RuntimeError):
        F.avg_pool2d(qtensor(x, 0.1, 3), 1)
    with pytest.raises(ValueError):
        ops.avg_pool2d(x, 0.1, 3, 1)


@pytest.mark.parametrize("in_hw,out_hw", [
    ((7, 7), (1, 1)), ((1, 1), (1, 1)), ((4, 6), (2, 3)), ((8, 8), (4, 4)),   # QNNPACK
    ((7, 8), (3, 5)), ((5, 5), (5, 5)), ((9, 4), (4, 3)), ((11, 1), (2, 1)),  # ATen
    ((2, 3), (4, 5)), ((1, 1), (2, 3)),                                       # upsampling
])
def test_adaptive_avg_pool2d(in_hw, out_hw):
    """Channel counts around the 8-channel vector body of ATen's NHWC kernel."""
    rng = np.random.default_rng(sum(in_hw) * 10 + sum(out_hw))
    for channels, channels_last, zero_point in itertools.product((3, 8, 13, 31), FORMATS, (0, 127, 255)):
        x = rng.integers(0, 256, (2, channels) + in_hw, dtype=np.uint8)
        scale = random_scale(rng)
        q = qtensor(x, scale, zero_point, channels_last)
        want = u8(F.adaptive_avg_pool2d(q, out_hw))
        got = ops.adaptive_avg_pool2d(x, scale, zero_point, out_hw, channels_last)
        assert_same(got, want)
        assert_same(got, u8(nn.AdaptiveAvgPool2d(out_hw)(q)))


def test_adaptive_avg_pool2d_ties():
    """Windows of 6 elements whose mean lies just off a half: FBGEMM's fused multiply-add in
    the vector body and quantize_val's two roundings in the tail round them differently."""
    x = np.zeros((1, 23, 3, 4), np.uint8)
    for zero_point, total in ((221, 477), (224, 489), (212, 417)):
        values = np.full(6, total // 6)
        values[:total % 6] += 1
        x[:, :, :, :2] = values.reshape(3, 2)
        for channels_last in FORMATS:
            want = u8(F.adaptive_avg_pool2d(qtensor(x, 0.01, zero_point, channels_last), (1, 3)))
            assert_same(ops.adaptive_avg_pool2d(x, 0.01, zero_point, (1, 3), channels_last), want)


# ---------------------------------------------------------------------------------------------
# cat

def cat_case(rng, channels, same_qparams):
    n, h, w = 2, 3, 4
    arrays = [rng.integers(0, 256, (n, c, h, w), dtype=np.uint8) for c in channels]
    qparams = [(0.05, 100) if same_qparams else (random_scale(rng), int(rng.choice(ZERO_POINTS))) for _ in channels]
    return arrays, qparams


@pytest.mark.parametrize("dim", (1, -3, 0, 2))
def test_cat(dim):
    """quantized::cat (QFunctional.cat): NHWC fast path (dim 1, all channels_last) with copies
    and requantization around the 8-channel vector body, mixed formats, other dims."""
    rng = np.random.default_rng(dim + 5)
    channel_sets = [(3, 5), (8, 16), (7, 9, 31), (17, 40, 1)] if dim in (1, -3) else [(4, 4, 4)]
    for channels, same, formats in itertools.product(channel_sets, (True, False), ("nchw", "cl", "mixed")):
        arrays, qparams = cat_case(rng, channels, same)
        flags = [formats == "cl" or (formats == "mixed" and i % 2 == 0) for i in range(len(arrays))]
        for out_scale, out_zp in ((0.05, 100), (random_scale(rng), int(rng.choice(ZERO_POINTS)))):
            tensors = [qtensor(a, s, z, f) for a, (s, z), f in zip(arrays, qparams, flags)]
            want = u8(torch.ops.quantized.cat(tensors, dim, out_scale, out_zp))
            assert_same(ops.cat(arrays, qparams, dim, out_scale, out_zp, flags), want)
            functional = nnq.QFunctional()
            functional.scale, functional.zero_point = out_scale, out_zp
            assert_same(ops.cat(arrays, qparams, dim, out_scale, out_zp, flags), u8(functional.cat(tensors, dim)))


def test_cat_requantization_ties():
    """x * inv_scale exactly halfway: the vector body adds the zero point after rounding, the
    scalar tail before; PyTorch's answer changes at channel C // 8 * 8."""
    for channels in (7, 8, 9, 15, 17, 33):
        x = np.ones((1, channels, 1, 2), np.uint8)
        want = u8(torch.ops.quantized.cat([qtensor(x, 1.0, 0, True)], 1, 2.0, 1))
        assert_same(ops.cat([x], [(1.0, 0)], 1, 2.0, 1, True), want)


@pytest.mark.parametrize("dim", (1, -3, 0))
def test_torch_cat(dim):
    """torch.cat on quantized tensors (what FX keeps): into the first input's qparams, others
    requantized without complaint."""
    rng = np.random.default_rng(dim + 50)
    channel_sets = [(3, 5), (8, 9, 17)] if dim in (1, -3) else [(4, 4), (9, 9, 9)]
    for channels, same, channels_last in itertools.product(channel_sets, (True, False), FORMATS):
        arrays, qparams = cat_case(rng, channels, same)
        want = torch.cat([qtensor(a, s, z, channels_last) for a, (s, z) in zip(arrays, qparams)], dim)
        got, scale, zero_point = ops.torch_cat(arrays, qparams, dim, channels_last)
        assert (scale, zero_point) == (want.q_scale(), want.q_zero_point())
        assert_same(got, u8(want))


def test_cat_rejects_bad_input():
    a = np.zeros((1, 2, 3, 3), np.uint8)
    with pytest.raises(ValueError):
        ops.cat([a, a[:, :, :2]], [(0.1, 0)] * 2, 1, 0.1, 0)
    with pytest.raises(ValueError):
        ops.cat([a], [(0.1, 0), (0.1, 0)], 1, 0.1, 0)
    with pytest.raises(ValueError):
        ops.cat([a], [(0.1, 300)], 1, 0.1, 0)
    with pytest.raises(ValueError):
        ops.torch_cat([a], [(0.1, 0)], 4)


# ---------------------------------------------------------------------------------------------
# elementwise

def activation_input():
    """All 256 values in a (2, 8, 4, 4) array, so a channels_last buffer differs from NCHW."""
    return np.random.default_rng(3).permutation(np.tile(np.arange(256), 2)).astype(np.uint8).reshape(2, 8, 4, 8)


@pytest.mark.parametrize("zero_point", ZERO_POINTS)
@pytest.mark.parametrize("channels_last", FORMATS)
def test_relu_family(zero_point, channels_last):
    """relu (elementwise in both formats); relu6 / hardtanh / clamp, whose channels_last
    result is the NHWC buffer read as NCHW in PyTorch 2.13."""
    x = activation_input()
    rng = np.random.default_rng(zero_point)
    for scale in (0.02, 6 / 255, 1.0, random_scale(rng), random_scale(rng)):
        q = qtensor(x, scale, zero_point, channels_last)
        for want in (torch.relu(q), F.relu(q), nn.ReLU()(q)):
            assert_same(ops.relu(x, zero_point), u8(want))
        relu6 = ops.relu6(x, scale, zero_point, channels_last)
        for want in (nn.ReLU6()(q), F.relu6(q), nnq.ReLU6()(q)):
            assert_same(relu6, u8(want))
        for lo, hi in ((-1.0, 1.0), (0.0, 0.0), (-0.37, 2.9), tuple(sorted(rng.normal(0, 3, 2)))):
            got = ops.hardtanh(x, scale, zero_point, lo, hi, channels_last)
            wants = [F.hardtanh(q, lo, hi), torch.clamp(q, lo, hi)] + ([nn.Hardtanh(lo, hi)(q)] if lo < hi else [])
            for want in wants:
                assert_same(got, u8(want))
    if channels_last and zero_point < 128:
        assert not np.array_equal(ops.relu6(x, 0.02, zero_point, True), ops.relu6(x, 0.02, zero_point, False))


def test_hardtanh_bounds_on_ties():
    """Bounds whose scaled value lies a hair off a half: quantize_val rounds the product to
    float32 before adding the zero point, without FMA."""
    x = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    rng = np.random.default_rng(4)
    for _ in range(40):
        scale, zero_point, k = random_scale(rng, -6, 0), int(rng.integers(150, 256)), int(rng.integers(100, 150))
        bound = np.nextafter(F32(-(k + 0.5) / float(F32(1) / F32(scale))), F32(rng.choice([-1, 1]) * np.inf))
        want = u8(F.hardtanh(qtensor(x, scale, zero_point), float(bound), 1000.0))
        assert_same(ops.hardtanh(x, scale, zero_point, float(bound), 1000.0), want)


@pytest.mark.parametrize("zero_point", ZERO_POINTS)
def test_hardswish_and_sigmoid(zero_point):
    x = activation_input()
    rng = np.random.default_rng(zero_point + 1)
    for scale in (1 / 32, 0.1, 3 / 255, *(random_scale(rng, -6, 0.5) for _ in range(8))):
        for channels_last in FORMATS:
            q = qtensor(x, scale, zero_point, channels_last)
            out_scale, out_zp = random_scale(rng, -6, 0), int(rng.choice(ZERO_POINTS))
            assert_same(ops.hardswish(x, scale, zero_point, out_scale, out_zp),
                        u8(nnq.Hardswish(out_scale, out_zp)(q)))
            assert_same(ops.sigmoid(x, scale, zero_point), u8(torch.sigmoid(q)))
            assert_same(ops.sigmoid(x, scale, zero_point), u8(nn.Sigmoid()(q)))


@pytest.mark.parametrize("seed", range(12))
def test_random_shapes(seed):
    """Random shapes, qparams and pool options (fixed seeds), every operator, both formats."""
    rng = np.random.default_rng(1000 + seed)
    n, c, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 40)), int(rng.integers(1, 12)), int(rng.integers(1, 12))
    x = rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)
    scale, zp = random_scale(rng), int(rng.choice(ZERO_POINTS))
    k = int(rng.integers(2, 5))
    st, pad, ceil = int(rng.integers(1, 4)), int(rng.integers(0, k // 2 + 1)), bool(rng.integers(0, 2))
    out_hw = (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
    y = rng.integers(0, 256, x.shape, dtype=np.uint8)
    sy, zy, so, zo = random_scale(rng), int(rng.integers(0, 256)), random_scale(rng, -3, 0), int(rng.integers(0, 255))
    for channels_last in FORMATS:
        q = qtensor(x, scale, zp, channels_last)
        if min(h, w) + 2 * pad >= k:
            assert_same(ops.max_pool2d(x, k, st, pad, 1, ceil, channels_last), u8(F.max_pool2d(q, k, st, pad, ceil_mode=ceil)))
            assert_same(ops.avg_pool2d(x, scale, zp, k, st, pad, ceil, bool(seed % 2), None, channels_last),
                        u8(F.avg_pool2d(q, k, st, pad, ceil, bool(seed % 2))))
        assert_same(ops.adaptive_avg_pool2d(x, scale, zp, out_hw, channels_last), u8(F.adaptive_avg_pool2d(q, out_hw)))
        assert_same(ops.add(x, scale, zp, y, sy, zy, so, zo, bool(seed % 2), channels_last),
                    torch_add(x, scale, zp, y, sy, zy, so, zo, bool(seed % 2), (channels_last, not channels_last)))
        assert_same(ops.cat([x, y], [(scale, zp), (sy, zy)], 1, so, zo, channels_last),
                    u8(torch.ops.quantized.cat([q, qtensor(y, sy, zy, channels_last)], 1, so, zo)))
        assert_same(ops.relu6(x, scale, zp, channels_last), u8(F.relu6(q)))


def test_activations_reject_bad_input():
    x = np.zeros((1, 2, 2, 2), np.uint8)
    for call in (lambda: ops.relu(x.astype(np.int32), 0), lambda: ops.relu(x, 256),
                 lambda: ops.hardtanh(x, 0.1, 0, 1.0, -1.0), lambda: ops.relu6(x, 0.0, 0),
                 lambda: ops.relu6(x[0], 0.1, 0, channels_last=True), lambda: ops.sigmoid(x, float("nan"), 0),
                 lambda: ops.quantize(np.zeros(3), 0.1, 0), lambda: ops.dequantize(x, -1.0, 0)):
        with pytest.raises(ValueError):
            call()

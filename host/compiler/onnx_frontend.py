"""Quantized ONNX networks on the accelerator, bit-exact with ONNX Runtime.

``compile_onnx(model, example_inputs)`` takes a model quantized by
``onnxruntime.quantization.quantize_static`` (QDQ or QOperator format, uint8 or int8
activations, int8 weights per tensor or per channel, weight zero points 0) and returns an
:class:`OnnxProgram`, which has the interface of the torch path's
:class:`host.compiler.program.Program` (``layers``, ``graph()``, ``build(cfg)``,
``run(*inputs)``, ``summary()``, ``stats()``).

**What is compiled is what ONNX Runtime runs.** ONNX Runtime rewrites a QDQ model before it
runs it (``QDQSelectorActionTransformer``: ``DQ -> Conv -> Q`` becomes QLinearConv,
``DQ -> Add -> Q`` QLinearAdd, ``DQ -> Gemm -> Q`` QGemm, ...; ``QDQS8ToU8Transformer`` turns
int8 Q/DQ pairs into uint8 ones on x86; Relu / Clip that the quantization already clamps
are dropped), and which groups it fuses decides its arithmetic: a fused group computes in
integers, an unfused one in float. The front end therefore asks ONNX Runtime for its own
optimized graph (``ORT_ENABLE_EXTENDED``: every fusion, no layout change; the layout passes
of the default level change no arithmetic) and compiles that graph node by node:

* **accelerator layers**: QLinearConv (1x1, 3x3, larger kernels up to 9x9 through
  :func:`host.compiler.decompose.decompose`, depthwise, grouped 1x1 / 3x3), QLinearMatMul
  and QGemm with constant int8 weights (a 1x1 conv on the rows, as the torch path runs
  Linear). A ``DQ -> Relu | Clip -> Q`` chain, a QLinearLeakyRelu / QLinearSigmoid or an
  8-bit Clip that alone consumes a layer's output folds into its clamp bounds or its
  256-entry table;
* **host operators with a numpy model** (:mod:`host.golden.ort_ops`, bit-exact with
  ONNX Runtime's CPU kernels): QuantizeLinear, DequantizeLinear, QLinearAdd,
  QLinearGlobalAveragePool, MaxPool (8-bit or float), Concat, float Add / Sub / Mul / Relu;
  reshapes, flattens, squeezes and identities are views;
* **host operators run by ONNX Runtime itself** (kind ``onnxruntime``: a one-node ONNX
  model, e.g. a convolution ONNX Runtime computes in float because it did not fuse its QDQ
  group, QLinearConcat, QLinearAveragePool): anything without a numpy model.

**Arithmetic.** ONNX Runtime's QLinearConv (``providers/cpu/quantization/qlinearconv.cc``)
computes ``output_scale[k] = X_scale * W_scale[k] / Y_scale`` in float32 (a product, then a
true division: :func:`requantization_multiplier`), accumulates ``sum((x - z_x) * w)`` in
int32 with the int32 bias, and requantizes in MLAS (``MlasRequantizeOutput`` and the
symmetric-conv kernels' ``ConvSymPostProcess``): ``q = rne(min(max(f32(f32(acc) * M),
lo - z_y), hi - z_y)) + z_y``. That is the accelerator's requantizer exactly
(``host.golden.quant``: ``f32(acc)``, ``f32(a * M)``, rne, ``+ z_o``, clamp) once the zero
point term is folded into the bias, ``bias_q = B - z_x * sum(w[k])``. QGemm
(``contrib_ops/cpu/quantization/quant_gemm.cc``) scales with ``f32(f32(alpha * A_scale) *
B_scale[n]) / Y_scale`` and QLinearMatMul (``quantize_linear_matmul.cc``) with
``A_scale * B_scale[n] / Y_scale``, both through the same requantizer. int8 activations run
on the same u8 hardware by the exact offset ``x + 128`` (zero points too): every 8-bit
tensor in the arena is held as uint8, int8 ones offset, and converted back at the host
operators that need the signed values.

A node whose ONNX Runtime arithmetic the requantizer cannot express (a multiplier that is
not a positive normal float32, a folded bias beyond int32) runs on the host in ONNX
Runtime; the reason is in ``summary()``. Unsupported layer attributes (dilation, unequal
strides, auto_pad, unequal begin / end padding, kernels above 9x9, grouped kernels other
than 1x1 / 3x3), weight zero points other than 0, per-channel activations and dynamically
quantized nodes raise :class:`host.golden.quant.QuantError` naming the node;
``cpu_nodes={"name"}`` runs named layers in ONNX Runtime on the host knowingly.

onnx and onnxruntime are needed to compile (``pip install dpegen[onnx]``); an executable
that has ``onnxruntime`` host operators needs onnxruntime to run.
"""

import copy
import os
import tempfile

import numpy as np

from hw.config import AccelConfig

from host.compiler.decompose import decompose
from host.compiler.graph import Graph, Node, Value
from host.compiler.program import BACKENDS, Program, _shapes
from host.golden import ort_ops
from host.golden.quant import SUPPORTED_KERNELS, MAX_KERNEL, LargeConv, QuantConv, QuantError, float32_bits

__all__ = ["compile_onnx", "OnnxProgram", "requantization_multiplier", "ort_run", "load_model"]

MS = "com.microsoft"
DYNAMIC_OPS = ("DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul",
               "MatMulIntegerToFloat", "DynamicQuantizeLSTM", "QAttention")
FLOAT_LAYER_OPS = ("Conv", "FusedConv", "Gemm", "MatMul", "FusedGemm", "ConvTranspose", "FusedMatMul")
TABLE_OPS = ("QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftsign")


# ---------------------------------------------------------------------------------------------
# the ONNX Runtime formula

def requantization_multiplier(input_scale, weight_scales, output_scale, alpha=1.0):
    """``M[k]`` as ONNX Runtime computes it for QLinearConv, QLinearMatMul and QGemm: float32
    ``f32(f32(f32(alpha * s_x) * s_w[k]) / s_y)`` (``X_scale * W_scale[k] / Y_scale`` left to
    right; ``alpha`` is QGemm's, 1 elsewhere, and ``1 * s_x`` is exact). PyTorch's formula
    (``host.compiler.torch_frontend.requantization_multiplier``) multiplies by a rounded
    ``1 / s_y`` instead, which is one ulp off on some scales."""
    s_x = np.float32(np.float32(alpha) * np.float32(input_scale))
    s_w = np.asarray(weight_scales, dtype=np.float32)
    return ((s_x * s_w).astype(np.float32) / np.float32(output_scale)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# onnx / onnxruntime access

def _onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("the ONNX front end needs onnx: pip install 'dpegen[onnx]' "
                          "(onnx and onnxruntime)") from exc
    return onnx


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError("the ONNX front end needs onnxruntime (it compiles the graph ONNX "
                          "Runtime optimizes and runs): pip install 'dpegen[onnx]'") from exc
    return onnxruntime


def load_model(model):
    """An ``onnx.ModelProto`` from a path, serialized bytes or a ModelProto (copied)."""
    onnx = _onnx()
    if isinstance(model, onnx.ModelProto):
        return copy.deepcopy(model)
    if isinstance(model, (bytes, bytearray)):
        return onnx.load_from_string(bytes(model))
    if isinstance(model, (str, os.PathLike)):
        return onnx.load(os.fspath(model))
    raise TypeError(f"model must be a path, bytes or an onnx.ModelProto, got {type(model).__name__}")


def _session(model_bytes, level="all", threads=1, optimized_path=None):
    ort = _ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[level]
    if threads:
        so.intra_op_num_threads = threads
    so.log_severity_level = 3
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def _with_outputs(model, names):
    """``model`` (a copy) with the tensors ``names`` added as graph outputs."""
    onnx = _onnx()
    m = copy.deepcopy(model)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(n))
            have.add(n)
    return m


def ort_run(model, inputs, outputs=None, extra_outputs=(), level="all", threads=0):
    """ONNX Runtime's own results (CPU execution provider, ``level`` "all": the default
    graph optimizations): ``{name: array}`` of the graph outputs, or of ``outputs``, plus
    ``extra_outputs`` (intermediate tensors, added as graph outputs). ``inputs``: arrays in
    graph-input order, or ``{name: array}``."""
    m = load_model(model)
    if extra_outputs:
        m = _with_outputs(m, extra_outputs)
    feed = _feed(m, inputs)
    s = _session(m.SerializeToString(), level, threads)
    names = list(outputs) if outputs is not None else [o.name for o in m.graph.output]
    names += [n for n in extra_outputs if n not in names]
    return dict(zip(names, s.run(names, feed)))


def _graph_inputs(model):
    init = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in init]


def _feed(model, inputs):
    ins = _graph_inputs(model)
    if isinstance(inputs, dict):
        return {k: np.asarray(v) for k, v in inputs.items()}
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
        inputs = (inputs,)
    if len(inputs) != len(ins):
        raise ValueError(f"the model takes {len(ins)} input(s) ({[i.name for i in ins]}), got {len(inputs)}")
    return {i.name: _numpy(x) for i, x in zip(ins, inputs)}


def _numpy(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _np_type(elem_type):
    onnx = _onnx()
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


# ---------------------------------------------------------------------------------------------
# the graph ONNX Runtime runs

def _fix_input_shapes(model, feed):
    """The graph inputs' dimensions set to those of the example inputs (so ONNX Runtime
    folds every shape computation)."""
    m = copy.deepcopy(model)
    for i in m.graph.input:
        if i.name in feed:
            dims = i.type.tensor_type.shape.dim
            shape = feed[i.name].shape
            if len(dims) != len(shape):
                raise ValueError(f"input {i.name!r}: the model has {len(dims)} dimensions, the "
                                 f"example {len(shape)}")
            for d, n in zip(dims, shape):
                if d.HasField("dim_value") and d.dim_value != n:
                    raise ValueError(f"input {i.name!r}: dimension {d.dim_value} in the model, "
                                     f"{n} in the example")
                d.Clear()
                d.dim_value = int(n)
    return m


def _optimized(model):
    """ONNX Runtime's graph after its fusions (``ORT_ENABLE_EXTENDED``), as a ModelProto."""
    onnx = _onnx()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "optimized.onnx")
        _session(model.SerializeToString(), "extended", 1, optimized_path=path)
        return onnx.load(path)


def _attrs(node):
    onnx = _onnx()
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _describe(node):
    return f"node '{node.name}' ({node.op_type})"


def _constants(model):
    """Constant tensors by name: the initializers (Constant nodes and folded nodes join later)."""
    onnx = _onnx()
    return {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}


def _one_node_model(opt, node, const, types, output_types=None, fed=None):
    """A model of ``node`` alone: the inputs that are initializers of ``opt`` as
    initializers, the others as graph inputs typed ``types[name] = (dtype, shape)``; the
    opsets of ``opt``. Constants that ONNX Runtime computes at run time (a weight's
    DequantizeLinear, which its constant folding leaves in place) stay graph inputs, so that
    ONNX Runtime treats the node as it does in the whole graph (e.g. a float Conv with
    computed weights is not prepacked nor laid out NCHWc); their values go to ``fed``."""
    onnx = _onnx()
    helper, nph = onnx.helper, onnx.numpy_helper
    initializers = {i.name for i in opt.graph.initializer}
    inputs, inits, seen = [], [], set()
    for name in node.input:
        if not name or name in seen:
            continue
        seen.add(name)
        if name in const and (name in initializers or fed is None):
            inits.append(nph.from_array(np.asarray(const[name]), name))
        elif name in const:
            value = np.asarray(const[name])
            fed[name] = value
            inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype),
                                                        list(value.shape)))
        else:
            dtype, shape = types[name]
            inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(dtype), list(shape)))
    outputs = []
    for name in node.output:
        if not name:
            continue
        if output_types and name in output_types:
            dtype, shape = output_types[name]
            outputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(dtype), list(shape)))
        else:
            outputs.append(helper.make_empty_tensor_value_info(name))
    graph = helper.make_graph([copy.deepcopy(node)], f"{node.op_type}_alone", inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=list(opt.opset_import))
    m.ir_version = opt.ir_version
    return m


def _fold_constants(opt, const):
    """Evaluate every node whose inputs are all constant (weight DequantizeLinear with the
    numpy model, anything else in ONNX Runtime). Returns the nodes left to run."""
    runtime = []
    for node in opt.graph.node:
        if node.op_type == "Constant":
            onnx = _onnx()
            a = _attrs(node)
            if "value" in a:
                const[node.output[0]] = onnx.numpy_helper.to_array(a["value"])
                continue
        if node.input and all((not n) or n in const for n in node.input) and node.op_type not in ("RandomNormal", "RandomUniform"):
            if node.op_type == "DequantizeLinear" and node.domain in ("", MS):
                a = _attrs(node)
                zp = const[node.input[2]] if len(node.input) > 2 and node.input[2] else None
                const[node.output[0]] = ort_ops.dequantize_linear(const[node.input[0]], const[node.input[1]],
                                                                  zp, a.get("axis", 1))
            else:
                m = _one_node_model(opt, node, const, {})
                outs = _session(m.SerializeToString(), "none").run(None, {})
                for name, v in zip([o for o in node.output if o], outs):
                    const[name] = v
            continue
        runtime.append(node)
    return runtime


def _infer_types(opt, runtime, const, feed):
    """``{tensor: (numpy dtype, shape)}`` of every runtime tensor, by running the optimized
    graph once (optimizations off) with every node output as a graph output."""
    onnx = _onnx()
    m = copy.deepcopy(opt)
    del m.graph.node[:]
    m.graph.node.extend(runtime)
    keep = {n for node in runtime for n in node.input if n}
    del m.graph.initializer[:]
    m.graph.initializer.extend(onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in const.items() if k in keep)
    names = [o for node in runtime for o in node.output if o]
    m = _with_outputs(m, names)
    feed = {k: np.zeros(v.shape, dtype=v.dtype) for k, v in feed.items()}
    outs = _session(m.SerializeToString(), "none").run(names, feed)
    types = {k: (v.dtype, tuple(v.shape)) for k, v in feed.items()}
    types.update({k: (v.dtype, tuple(v.shape)) for k, v in zip(names, outs)})
    return types


# ---------------------------------------------------------------------------------------------
# accelerator layers

class _OnnxLayer:
    """An ONNX layer the accelerator runs: ``conv`` (a QuantConv, or the 3x3 conv of a
    decomposition with its host ``transform``) built from the node's own quantization
    parameters (offset to u8 for int8 tensors)."""

    def __init__(self, name, conv, transform, activation=None):
        self.name = name
        self.conv = conv
        self.transform = transform
        self.activation_name = activation

    def quant_conv(self, scale, zero_point):
        return self.conv

    def plan(self, scale, zero_point):
        """``(QuantConv, input_transform or None)``: the node's own input quantization
        decides (ONNX Runtime uses the consumer's declared ``x_scale`` / ``x_zero_point``)."""
        return self.conv, self.transform


def _offset(zp, signed):
    return int(zp) + 128 if signed else int(zp)


def _per_tensor(const, name, what, node):
    v = np.asarray(const[name])
    if v.size != 1:
        raise QuantError(f"{_describe(node)}: {what} has {v.size} values: per-channel activations "
                         f"are not supported (the accelerator's tensors have one scale and zero point)")
    return v.reshape(-1)[0]


class _Refused(Exception):
    """A layer the accelerator cannot run: ``hard`` ones are errors (unsupported attributes),
    the others run on the host with the reason."""

    def __init__(self, reason, hard):
        super().__init__(reason)
        self.reason, self.hard = reason, hard


def _conv_geometry(node, w_shape, x_shape):
    """``(stride, (pad_rows, pad_cols), groups)`` of a QLinearConv, or raises _Refused."""
    a = _attrs(node)
    k = w_shape[2:]
    if len(k) != 2 or len(x_shape) != 4:
        raise _Refused(f"{len(k)}-D convolution: the accelerator runs 2-D ones", True)
    dil = tuple(a.get("dilations", (1, 1)))
    if dil != (1, 1):
        raise _Refused(f"dilation {dil} is not supported", True)
    strides = tuple(a.get("strides", (1, 1)))
    if strides[0] != strides[1]:
        raise _Refused(f"strides {strides} are not supported: the stride must be the same in both axes", True)
    if strides[0] not in (1, 2):
        raise _Refused(f"stride {strides[0]} is not supported: strides must be 1 or 2", True)
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        pads = tuple(a.get("pads", (0, 0, 0, 0)))
    elif auto == "VALID":
        pads = (0, 0, 0, 0)
    else:
        pads = []
        for size, kk, s in zip(x_shape[2:], k, strides):
            out = -(-size // s)
            total = max((out - 1) * s + kk - size, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
        pads = (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
        if pads[0] != pads[2] or pads[1] != pads[3]:
            raise _Refused(f"auto_pad {auto} gives unequal begin / end padding {pads} here, which "
                           f"the accelerator does not support", True)
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise _Refused(f"padding {list(pads)} (begin != end) is not supported", True)
    r, s = k
    if r > MAX_KERNEL or s > MAX_KERNEL:
        raise _Refused(f"kernel {r}x{s} is not supported; kernels must be at most {MAX_KERNEL}x{MAX_KERNEL}", True)
    if pads[0] > r - 1 or pads[1] > s - 1:
        raise _Refused(f"padding {list(pads)} is not supported for a {r}x{s} kernel", True)
    groups = int(a.get("group", 1))
    return strides[0], (pads[0], pads[1]), groups


def _weights(const, node, w_name, s_name, z_name, k_axis_len):
    """int8 weights, per-kernel float32 scales; refuses non-zero zero points."""
    if w_name not in const:
        raise _Refused("its weights are not constant", True)
    w = np.asarray(const[w_name])
    if w.dtype != np.int8:
        raise _Refused(f"weights of type {w.dtype}: the accelerator runs int8 weights", True)
    zp = np.asarray(const[z_name]) if z_name and z_name in const else np.zeros(1, np.int8)
    if np.any(zp.astype(np.int64) != 0):
        raise _Refused(f"weight zero points {sorted(set(zp.reshape(-1).tolist()))[:4]} are not 0: "
                       f"the accelerator runs symmetric weights (quantize_static with "
                       f"WeightSymmetric=True, the default for int8 weights)", True)
    scales = np.asarray(const[s_name], dtype=np.float32).reshape(-1)
    if scales.size not in (1, k_axis_len):
        raise _Refused(f"weight scales of shape {np.shape(const[s_name])}", True)
    return w, np.broadcast_to(scales, (k_axis_len,)).copy()


def _make_conv(cls, w, bias, x_scale, x_zp, s_w, y_scale, y_zp, signed_x, signed_y, stride,
               padding, groups, alpha=1.0):
    """The accelerator's conv for ONNX Runtime's arithmetic (see the module)."""
    k = w.shape[0]
    m = requantization_multiplier(x_scale, s_w, y_scale, alpha)
    z_x = _offset(x_zp, signed_x)
    b = np.zeros(k, np.int64) if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1)
    bias_q = b - z_x * w.astype(np.int64).reshape(k, -1).sum(axis=1)
    if np.any(bias_q < -(1 << 31)) or np.any(bias_q > (1 << 31) - 1):
        raise _Refused("its folded bias B - z_x * sum(w) leaves int32 (ONNX Runtime subtracts the "
                       "input zero point inside its GEMM instead)", False)
    for v in m:
        bits = float32_bits(v)
        if bits >> 31 or not 0 < (bits >> 23) & 0xFF < 0xFF:
            raise _Refused(f"ONNX Runtime's requantization multiplier {float(v)!r} is not a positive "
                           f"normal float32, which the accelerator's requantizer needs", False)
    try:
        conv = cls(weight=w, bias_q=bias_q, multiplier=m, input_zero_point=z_x,
                   output_zero_point=_offset(y_zp, signed_y), stride=stride, padding=padding,
                   groups=groups, input_scale=float(x_scale), output_scale=float(y_scale))
    except QuantError as exc:
        raise _Refused(str(exc), True) from None
    conv.table_output_zero_point = _offset(y_zp, signed_y)
    return conv


# ---------------------------------------------------------------------------------------------
# the compiler

class _Compiler:
    """Turns ONNX Runtime's optimized graph into a :class:`host.compiler.graph.Graph`."""

    def __init__(self, model, feed, cpu_nodes):
        self.model = model
        self.cpu_nodes = set(cpu_nodes)
        fixed = _fix_input_shapes(model, feed)
        self.opt = _optimized(fixed)
        self.const = _constants(self.opt)
        self.runtime = _fold_constants(self.opt, self.const)
        self._name_nodes()
        self._check()
        self.types = _infer_types(self.opt, self.runtime, self.const, feed)
        self.values, self.nodes = {}, []
        self.signed = {}            # 8-bit tensor -> int8?
        self.layers, self.placements = {}, []
        self.reasons = {}           # graph node name -> why it runs where it runs
        self.recorded = {}          # layer name -> tensor it writes
        self.consumers = {}
        for node in self.runtime:
            for n in node.input:
                if n:
                    self.consumers.setdefault(n, []).append(node)
        self.outputs = [o.name for o in self.opt.graph.output]

    # -- helpers --------------------------------------------------------------------------
    def _name_nodes(self):
        seen = set()
        for i, node in enumerate(self.runtime):
            name = node.name or f"{node.op_type}_{i}"
            while name in seen:
                name = f"{name}#{i}"
            node.name = name
            seen.add(name)
        unknown = self.cpu_nodes - seen
        if unknown:
            raise QuantError(f"cpu_nodes names no node of ONNX Runtime's optimized graph: {sorted(unknown)} "
                             f"(nodes: {sorted(seen)[:8]}...)")

    def _check(self):
        """Refusals that need no shapes (before the graph is run once)."""
        for node in self.runtime:
            if node.op_type in DYNAMIC_OPS and node.name not in self.cpu_nodes:
                raise QuantError(f"{_describe(node)}: dynamically quantized (activations quantized "
                                 f"at run time, float outputs); the accelerator runs statically "
                                 f"quantized layers only: quantize with quantize_static, or pass "
                                 f"cpu_nodes={{'{node.name}'}} to run it in ONNX Runtime on the host")
            if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 1 \
                    and node.input[1] in self.const and np.size(self.const[node.input[1]]) != 1:
                raise QuantError(f"{_describe(node)}: per-channel quantization of an activation "
                                 f"(scale of shape {np.shape(self.const[node.input[1]])}); the "
                                 f"accelerator's tensors have one scale and zero point")

    def dtype(self, name):
        return self.types[name][0]

    def shape(self, name):
        return self.types[name][1]

    def is8(self, name):
        return name in self.types and self.dtype(name) in (np.uint8, np.int8)

    def define(self, name, scale=1.0, zp=0):
        """A Value for runtime tensor ``name``: 8-bit ones in the arena ("u8", int8 offset)."""
        dtype, shape = self.types[name]
        if dtype in (np.uint8, np.int8):
            signed = dtype == np.int8
            self.signed[name] = signed
            v = Value(name, shape, "u8", float(scale), _offset(zp, signed))
        elif dtype == np.float32:
            v = Value(name, shape, "f32")
        else:
            v = Value(name, shape, np.dtype(dtype).name)
        self.values[name] = v
        return v

    def qparams(self, node, s_index, z_index):
        """Native ``(scale, zero point)`` of a node's per-tensor constant qparams."""
        s = float(np.float32(_per_tensor(self.const, node.input[s_index], "a scale", node)))
        z = 0
        if len(node.input) > z_index and node.input[z_index]:
            z = int(_per_tensor(self.const, node.input[z_index], "a zero point", node))
        return s, z

    def host(self, kind, node, inputs, outputs, params, reason):
        self.nodes.append(Node(kind, node.name, list(inputs), list(outputs), params))
        self.reasons[node.name] = reason

    def data_inputs(self, node):
        return [n for n in node.input if n and n not in self.const]

    # -- handlers -------------------------------------------------------------------------
    def compile(self):
        for i in _graph_inputs(self.opt):
            dtype = self.dtype(i.name)
            if dtype in (np.uint8, np.int8):
                raw = Value(i.name, self.shape(i.name), np.dtype(dtype).name)
                self.values[i.name + "#raw"] = raw
                self.signed[i.name] = dtype == np.int8
                self.values[i.name] = Value(i.name, self.shape(i.name), "u8", 1.0, 128 if dtype == np.int8 else 0)
                self.nodes.append(Node("ort_to_arena", f"{i.name}#to_arena", [i.name + "#raw"], [i.name], {}))
                self.reasons[f"{i.name}#to_arena"] = "an 8-bit graph input: copied into the arena (int8 offset)"
            else:
                self.define(i.name)
        inputs = [i.name + "#raw" if i.name + "#raw" in self.values else i.name for i in _graph_inputs(self.opt)]
        skip = set()
        for node in self.runtime:
            if node.name in skip:
                continue
            handler = getattr(self, f"_op_{node.op_type}", None)
            if handler is not None and node.domain in ("", MS, "ai.onnx"):
                done = handler(node, skip)
                if done:
                    continue
            self._onnxruntime(node, f"{node.op_type}: no numpy model: runs in ONNX Runtime on the host")
        for name in self.outputs:
            if name not in self.values:
                raise QuantError(f"graph output {name!r} is a constant; nothing to run")
        return Graph(self.values, self.nodes, inputs, list(self.outputs))

    def _onnxruntime(self, node, reason, layer_place=None):
        """The node as a one-node ONNX model run by ONNX Runtime on the host."""
        for o in node.output:
            if o and o not in self.values:
                self.define(o, *self._guess_qparams(node, o))
        ins = self.data_inputs(node)
        outs = [o for o in node.output if o]
        out_types = {o: self.types[o] for o in outs}
        fed = {}
        m = _one_node_model(self.opt, node, self.const, self.types, out_types, fed)
        params = {"model": m.SerializeToString(), "inputs": ins, "outputs": outs, "fed": fed,
                  "signed_in": [bool(self.signed.get(n, False)) for n in ins],
                  "signed_out": [bool(self.signed.get(n, False)) for n in outs],
                  "types_in": [np.dtype(self.dtype(n)).name for n in ins]}
        self.host("onnxruntime", node, ins, outs, params, reason)
        if layer_place is not None:
            self.placements.append(layer_place)

    def _guess_qparams(self, node, out):
        """Output qparams of a QLinear* node (y_scale, y_zero_point are its last inputs), for
        the Value's record; (1, 0) when unknown."""
        if not self.is8(out):
            return 1.0, 0
        names = list(node.input)
        try:
            if node.op_type in ("QuantizeLinear",):
                return self.qparams(node, 1, 2)
            if node.op_type in ("QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul",
                                "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearLeakyRelu",
                                "QLinearSigmoid", "QLinearConcat", "QGemm", "QLinearSoftmax"):
                idx = {"QLinearConv": (6, 7), "QLinearMatMul": (6, 7), "QLinearAdd": (6, 7),
                       "QLinearMul": (6, 7), "QLinearAveragePool": (3, 4),
                       "QLinearGlobalAveragePool": (3, 4), "QLinearLeakyRelu": (3, 4),
                       "QLinearSigmoid": (3, 4), "QLinearConcat": (0, 1), "QGemm": (7, 8),
                       "QLinearSoftmax": (3, 4)}[node.op_type]
                if idx[0] < len(names) and names[idx[0]] in self.const:
                    return self.qparams(node, *idx)
        except QuantError:
            pass
        first = self.data_inputs(node)
        if first and first[0] in self.values and self.values[first[0]].dtype == "u8":
            v = self.values[first[0]]
            return v.scale, v.zero_point - (128 if self.signed.get(first[0]) else 0)
        return 1.0, 0

    def _op_QuantizeLinear(self, node, skip):
        x, y = node.input[0], node.output[0]
        if self.dtype(x) != np.float32 or not self.is8(y):
            return False
        s, z = self.qparams(node, 1, 2)
        self.define(y, s, z)
        self.host("ort_quantize", node, [x], [y], {"scale": s, "zero_point": z, "signed": self.signed[y]},
                  "numpy model of ONNX Runtime's QuantizeLinear (host.golden.ort_ops)")
        return True

    def _op_DequantizeLinear(self, node, skip):
        x, y = node.input[0], node.output[0]
        if not self.is8(x) or self.dtype(y) != np.float32:
            return False
        s, z = self.qparams(node, 1, 2)
        self.define(y)
        self.host("ort_dequantize", node, [x], [y], {"scale": s, "zero_point": z, "signed": self.signed[x]},
                  "numpy model of ONNX Runtime's DequantizeLinear (host.golden.ort_ops)")
        return True

    def _op_QLinearAdd(self, node, skip):
        a, b, y = node.input[0], node.input[3], node.output[0]
        if a in self.const or b in self.const or not self.is8(y):
            return False
        sa_, sb_ = self.shape(a), self.shape(b)
        if not (sa_ == sb_ or int(np.prod(sa_)) == 1 or int(np.prod(sb_)) == 1) or self.shape(y) != max(sa_, sb_, key=len):
            return False
        (s_a, z_a), (s_b, z_b), (s_c, z_c) = self.qparams(node, 1, 2), self.qparams(node, 4, 5), self.qparams(node, 6, 7)
        self.define(y, s_c, z_c)
        self.host("ort_qlinear_add", node, [a, b], [y],
                  {"a_scale": s_a, "a_zero_point": z_a, "b_scale": s_b, "b_zero_point": z_b,
                   "c_scale": s_c, "c_zero_point": z_c, "signed": self.signed[y]},
                  "numpy model of ONNX Runtime's QLinearAdd (host.golden.ort_ops)")
        return True

    def _op_QLinearGlobalAveragePool(self, node, skip):
        if _attrs(node).get("channels_last", 0):
            return False
        x, y = node.input[0], node.output[0]
        if len(self.shape(x)) != 4:
            return False
        (s_x, z_x), (s_y, z_y) = self.qparams(node, 1, 2), self.qparams(node, 3, 4)
        self.define(y, s_y, z_y)
        self.host("ort_global_average_pool", node, [x], [y],
                  {"x_scale": s_x, "x_zero_point": z_x, "y_scale": s_y, "y_zero_point": z_y,
                   "signed": self.signed[y]},
                  "numpy model of ONNX Runtime's QLinearGlobalAveragePool (host.golden.ort_ops)")
        return True

    def _op_MaxPool(self, node, skip):
        a = _attrs(node)
        x = node.input[0]
        outs = [o for o in node.output if o]
        if len(outs) != 1 or len(self.shape(x)) != 4 or a.get("storage_order", 0):
            return False
        auto = a.get("auto_pad", b"NOTSET")
        if (auto.decode() if isinstance(auto, bytes) else auto) not in ("NOTSET", ""):
            return False
        if not (self.is8(x) or self.dtype(x) == np.float32):
            return False
        k = tuple(a["kernel_shape"])
        params = {"kernel_shape": k, "strides": tuple(a.get("strides", (1, 1))),
                  "pads": tuple(a.get("pads", (0, 0, 0, 0))), "dilations": tuple(a.get("dilations", (1, 1))),
                  "ceil_mode": bool(a.get("ceil_mode", 0))}
        y = outs[0]
        probe = ort_ops.max_pool(np.zeros((1, 1) + tuple(self.shape(x)[2:]), np.uint8), **params)
        if probe.shape[2:] != tuple(self.shape(y)[2:]):
            return False        # a window beyond the input (ONNX Runtime's own output size): in ONNX Runtime
        v = self.values[x]
        self.values[y] = Value(y, self.shape(y), v.dtype, v.scale, v.zero_point)
        if v.dtype == "u8":
            self.signed[y] = self.signed[x]
        self.host("ort_max_pool", node, [x], [y], params,
                  "numpy model of MaxPool (exact: a maximum; int8 kept offset, which preserves order)")
        return True

    def _view(self, node, skip):
        x = node.input[0]
        outs = [o for o in node.output if o]
        if len(outs) != 1 or x in self.const or x not in self.values:
            return False
        v, y = self.values[x], outs[0]
        self.values[y] = Value(y, self.shape(y), v.dtype, v.scale, v.zero_point, alias_of=(x, 0))
        if y in self.types and self.is8(y):
            self.signed[y] = self.signed[x]
        self.nodes.append(Node("alias", node.name, [x], [y]))
        self.reasons[node.name] = "a view of its input's bytes (no work)"
        return True

    _op_Flatten = _op_Reshape = _op_Squeeze = _op_Unsqueeze = _op_Identity = _view

    def _op_Dropout(self, node, skip):
        if len([o for o in node.output if o]) != 1:
            return False
        return self._view(node, skip)

    def _op_Concat(self, node, skip):
        ins = self.data_inputs(node)
        if len(ins) != len([n for n in node.input if n]):
            return False
        y = node.output[0]
        kinds = {self.values[n].dtype for n in ins}
        if len(kinds) != 1:
            return False
        if kinds == {"u8"}:
            qp = {(self.values[n].scale, self.values[n].zero_point, self.signed[n]) for n in ins}
            if len(qp) != 1:
                return False
            s, z, signed = qp.pop()
            self.values[y] = Value(y, self.shape(y), "u8", s, z)
            self.signed[y] = signed
        elif kinds == {"f32"}:
            self.define(y)
        else:
            return False
        axis = _attrs(node)["axis"] % len(self.shape(y))
        self.host("ort_concat", node, ins, [y], {"axis": axis},
                  "numpy model of Concat (a copy)")
        return True

    def _float_binary(self, node, skip):
        ins = list(node.input)
        if any(n in self.const for n in ins) or any(self.dtype(n) != np.float32 for n in ins):
            return False
        y = node.output[0]
        self.define(y)
        self.host("ort_float", node, ins, [y], {"op": node.op_type},
                  f"numpy model of float {node.op_type} (one IEEE float32 operation per element)")
        return True

    _op_Add = _op_Sub = _op_Mul = _float_binary

    def _op_Relu(self, node, skip):
        x, y = node.input[0], node.output[0]
        if self.dtype(x) != np.float32:
            return False
        self.define(y)
        self.host("ort_float", node, [x], [y], {"op": "Relu"}, "numpy model of float Relu (a maximum)")
        return True

    # -- layers -----------------------------------------------------------------------------
    def _layer_place(self, node, kind, c, k, h, w, kernel, stride, padding, groups, macs):
        return {"name": node.name, "type": node.op_type, "calls": 1, "C": c, "K": k, "H": h, "W": w,
                "kernel": kernel, "stride": stride, "padding": padding, "groups": groups, "macs": int(macs),
                "activation": None, "placement": "accelerator", "reason": None, "decomposed": None,
                "unfolded": None, "kind": kind}

    def _host_layer(self, node, place, exc):
        if exc.hard and node.name not in self.cpu_nodes:
            raise QuantError(f"{_describe(node)}: {exc.reason} (pass cpu_nodes={{'{node.name}'}} to run "
                             f"it in ONNX Runtime on the host)")
        reason = "cpu_nodes" if node.name in self.cpu_nodes else exc.reason
        place.update(placement="cpu", reason=reason)
        self._onnxruntime(node, f"runs in ONNX Runtime on the host: {reason}", layer_place=place)

    def _op_QLinearConv(self, node, skip):
        a = _attrs(node)
        if a.get("channels_last", 0):
            return False
        x, y = node.input[0], node.output[0]
        w_shape = np.shape(self.const[node.input[3]]) if node.input[3] in self.const else None
        x_shape = self.shape(x)
        kernel = tuple(w_shape[2:]) if w_shape is not None else ()
        kh, kw = (kernel + (1, 1))[:2]
        groups = int(a.get("group", 1))
        y_shape = self.shape(y)
        c = x_shape[1] if len(x_shape) > 1 else None
        kk = w_shape[0] if w_shape is not None else None
        macs = int(np.prod(y_shape)) * (w_shape[1] if w_shape is not None else 0) * kh * kw
        place = self._layer_place(node, "conv", c, kk, x_shape[2] if len(x_shape) > 2 else 1,
                                  x_shape[3] if len(x_shape) > 3 else 1,
                                  kh if kh == kw else (kh, kw), tuple(a.get("strides", (1, 1)))[0],
                                  tuple(a.get("pads", (0, 0, 0, 0)))[0], groups, macs)
        if node.name in self.cpu_nodes:
            self._host_layer(node, place, _Refused("cpu_nodes", False))
            return True
        try:
            if w_shape is None:
                raise _Refused("its weights are not constant", True)
            stride, (ph, pw), groups = _conv_geometry(node, w_shape, x_shape)
            place.update(stride=stride, padding=ph if ph == pw else (ph, pw))
            if not (self.is8(x) and self.is8(y)):
                raise _Refused("its input and output must be 8-bit tensors", True)
            w, s_w = _weights(self.const, node, node.input[3], node.input[4], node.input[5], w_shape[0])
            (s_x, z_x), (s_y, z_y) = self.qparams(node, 1, 2), self.qparams(node, 6, 7)
            bias = self.const.get(node.input[8]) if len(node.input) > 8 and node.input[8] else None
            if len(node.input) > 8 and node.input[8] and bias is None:
                raise _Refused("its bias is not constant", True)
            square = kh == kw and kh in SUPPORTED_KERNELS and ph == pw
            if groups != 1 and not square:
                raise _Refused(f"grouped convolution (groups={groups}) with a {kh}x{kw} kernel or "
                               f"unequal padding is not supported; grouped kernels must be 1x1 or 3x3", True)
            cls = QuantConv if square else LargeConv
            conv = _make_conv(cls, w, bias, s_x, z_x, s_w, s_y, z_y, self.signed[x], self.dtype(y) == np.int8,
                              stride, ph if ph == pw else (ph, pw), groups)
        except _Refused as exc:
            self._host_layer(node, place, exc)
            return True
        transform = None
        if not square:
            conv, transform = decompose(conv)
            pieces = transform.pieces[0] * transform.pieces[1]
            place["decomposed"] = {"pieces": pieces, "C": pieces * c}
        self._finish_layer(node, conv, transform, place, x, y, skip)
        return True

    def _fc(self, node, skip, a_name, w_mat, s_w, z_w_name, s_x, z_x, s_y, z_y, y, bias, alpha=1.0):
        """An FC layer: ``w_mat`` (N, K) int8."""
        x = a_name
        xs = self.shape(x)
        n, kdim = w_mat.shape
        rows = int(np.prod(xs[:-1]))
        place = self._layer_place(node, "fc", kdim, n, 1, 1, 1, 1, 0, 1, rows * kdim * n)
        if node.name in self.cpu_nodes:
            self._host_layer(node, place, _Refused("cpu_nodes", False))
            return True
        try:
            if z_w_name and np.any(np.asarray(self.const[z_w_name]).astype(np.int64) != 0):
                raise _Refused(f"weight zero points {sorted(set(np.asarray(self.const[z_w_name]).reshape(-1).tolist()))[:4]} "
                               f"are not 0: the accelerator runs symmetric weights", True)
            if w_mat.dtype != np.int8:
                raise _Refused(f"weights of type {w_mat.dtype}: the accelerator runs int8 weights", True)
            if not (self.is8(x) and self.is8(y)):
                raise _Refused("its input and output must be 8-bit tensors", True)
            conv = _make_conv(QuantConv, w_mat.reshape(n, kdim, 1, 1), bias, s_x, z_x, s_w, s_y, z_y,
                              self.signed[x], self.dtype(y) == np.int8, 1, 0, 1, alpha)
        except _Refused as exc:
            self._host_layer(node, place, exc)
            return True
        self._finish_layer(node, conv, None, place, x, y, skip)
        return True

    def _op_QLinearMatMul(self, node, skip):
        a_name, b_name, y = node.input[0], node.input[3], node.output[0]
        if b_name not in self.const or a_name in self.const or np.ndim(self.const[b_name]) != 2:
            return False
        b = np.asarray(self.const[b_name])
        if self.dtype(a_name) not in (np.uint8, np.int8):
            return False
        s_b = np.asarray(self.const[node.input[4]], dtype=np.float32).reshape(-1)
        (s_x, z_x), (s_y, z_y) = self.qparams(node, 1, 2), self.qparams(node, 6, 7)
        w_mat = np.ascontiguousarray(b.T)
        return self._fc(node, skip, a_name, w_mat, np.broadcast_to(s_b, (w_mat.shape[0],)).copy(), node.input[5],
                        s_x, z_x, s_y, z_y, y, None)

    def _op_QGemm(self, node, skip):
        a = _attrs(node)
        names = list(node.input) + [""] * (9 - len(node.input))
        a_name, b_name, c_name, ys_name = names[0], names[3], names[6], names[7]
        y = node.output[0]
        if not ys_name:
            rows = int(np.prod(self.shape(a_name)[:-1]))
            b = np.asarray(self.const.get(b_name, np.zeros((0, 0))))
            place = self._layer_place(node, "fc", self.shape(a_name)[-1], self.shape(y)[-1], 1, 1, 1, 1, 0, 1,
                                      rows * int(np.prod(b.shape)))
            place.update(placement="cpu", reason="float output (a QDQ Gemm without a QuantizeLinear after "
                                                 "it): the accelerator writes 8-bit tensors")
            self._onnxruntime(node, "runs in ONNX Runtime on the host: " + place["reason"], layer_place=place)
            return True
        if b_name not in self.const or a_name in self.const or a.get("transA", 0) or float(a.get("beta", 1.0)) != 1.0:
            return False
        b = np.asarray(self.const[b_name])
        w_mat = np.ascontiguousarray(b if a.get("transB", 0) else b.T)
        bias = None
        if c_name:
            if c_name not in self.const:
                return False
            c = np.asarray(self.const[c_name])
            if c.size == 1:
                bias = np.full(w_mat.shape[0], c.reshape(-1)[0], dtype=np.int64)
            elif c.ndim == 1 or (c.ndim == 2 and c.shape[0] == 1):
                bias = c.reshape(-1)
            else:
                return False
        s_b = np.asarray(self.const[names[4]], dtype=np.float32).reshape(-1)
        (s_x, z_x), (s_y, z_y) = self.qparams(node, 1, 2), self.qparams(node, 7, 8)
        return self._fc(node, skip, a_name, w_mat, np.broadcast_to(s_b, (w_mat.shape[0],)).copy(), names[5],
                        s_x, z_x, s_y, z_y, y, bias, alpha=float(a.get("alpha", 1.0)))

    def _float_layer(self, node, skip):
        ins = self.data_inputs(node)
        if not ins or self.dtype(ins[0]) != np.float32:
            return False
        x, y = ins[0], node.output[0]
        w = self.const.get(node.input[1]) if len(node.input) > 1 else None
        macs = 0
        if w is not None:
            if node.op_type in ("Conv", "FusedConv"):
                macs = int(np.prod(self.shape(y))) * int(np.prod(np.shape(w)[1:]))
            else:
                macs = int(np.prod(self.shape(y))) * int(np.shape(w)[0] if node.op_type != "Gemm" or not _attrs(node).get("transB", 0) else np.shape(w)[1])
        xs = self.shape(x)
        kernel = tuple(np.shape(w)[2:]) if w is not None and np.ndim(w) == 4 else (1, 1)
        place = self._layer_place(node, "conv" if np.ndim(w) == 4 else "fc", xs[1] if len(xs) > 1 else xs[-1],
                                  np.shape(w)[0] if w is not None else None,
                                  xs[2] if len(xs) == 4 else 1, xs[3] if len(xs) == 4 else 1,
                                  kernel[0] if len(set(kernel)) == 1 else kernel,
                                  tuple(_attrs(node).get("strides", (1, 1)))[0],
                                  tuple(_attrs(node).get("pads", (0, 0, 0, 0)))[0] if len(_attrs(node).get("pads", (0,))) else 0,
                                  int(_attrs(node).get("group", 1)), macs)
        reason = ("ONNX Runtime computes it in float32 (its QDQ group was not fused into an integer "
                  "operator, so the accelerator's integer arithmetic would differ)")
        place.update(placement="cpu", reason=reason)
        self._onnxruntime(node, "runs in ONNX Runtime on the host: " + reason, layer_place=place)
        return True

    _op_Conv = _op_FusedConv = _op_Gemm = _op_MatMul = _op_FusedGemm = _op_FusedMatMul = _float_layer

    # -- activation folding --------------------------------------------------------------
    def _single(self, name):
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.outputs:
            return None
        return users[0]

    def _fold(self, y, signed_y, z_y, s_y):
        """``(table (offset u8 -> offset u8), lo, hi, final tensor, final (scale, zp), folded
        nodes, description)`` for an elementwise chain that alone consumes ``y``, or None."""
        user = self._single(y)
        if user is None or user.name in self.cpu_nodes:
            return None
        native = np.arange(256, dtype=np.uint8)
        values = ort_ops.from_offset_u8(native, signed_y)          # native value of each code
        # an 8-bit Clip with constant bounds: clamp
        if user.op_type == "Clip" and user.domain == "" and all(n in self.const for n in user.input[1:] if n):
            lo_n = self.const[user.input[1]] if len(user.input) > 1 and user.input[1] else None
            hi_n = self.const[user.input[2]] if len(user.input) > 2 and user.input[2] else None
            lo = 0 if lo_n is None else int(np.clip(_offset(int(lo_n), signed_y), 0, 256))
            hi = 255 if hi_n is None else int(np.clip(_offset(int(hi_n), signed_y), -1, 255))
            return None if lo > hi else (None, lo, hi, user.output[0], (s_y, z_y), [user], f"{user.name} (Clip)")
        if user.op_type == "Relu" and user.domain == "" and signed_y:
            return (None, 128, 255, user.output[0], (s_y, z_y), [user], f"{user.name} (Relu on int8)")
        if user.op_type == "DequantizeLinear":
            act = self._single(user.output[0])
            if act is None or act.op_type not in ("Relu", "Clip") or act.name in self.cpu_nodes:
                return None
            if act.op_type == "Clip" and not all(n in self.const for n in act.input[1:] if n):
                return None
            q = self._single(act.output[0])
            if q is None or q.op_type != "QuantizeLinear" or not self.is8(q.output[0]):
                return None
            s_dq, z_dq = self.qparams(user, 1, 2)
            s_q, z_q = self.qparams(q, 1, 2)
            f = ort_ops.dequantize_linear(values, s_dq, z_dq)
            if act.op_type == "Relu":
                f = np.maximum(f, np.float32(0))
            else:
                if len(act.input) > 1 and act.input[1]:
                    f = np.maximum(f, np.asarray(self.const[act.input[1]], np.float32))
                if len(act.input) > 2 and act.input[2]:
                    f = np.minimum(f, np.asarray(self.const[act.input[2]], np.float32))
            zq_arr = np.asarray(self.const[q.input[2]]) if len(q.input) > 2 and q.input[2] else np.uint8(0)
            out = ort_ops.quantize_linear(f.astype(np.float32), s_q, zq_arr)
            signed_q = out.dtype == np.int8
            table = ort_ops.to_offset_u8(out)
            return (table, 0, 255, q.output[0], (s_q, z_q), [user, act, q],
                    f"{user.name} -> {act.name} ({act.op_type}) -> {q.name} as a table", signed_q)
        if user.op_type in TABLE_OPS and user.domain == MS:
            m = _one_node_model(self.opt, user, self.const, {user.input[0]: (np.dtype(values.dtype), (256,))})
            out = _session(m.SerializeToString(), "all").run(None, {user.input[0]: values})[0]
            s_q, z_q = self.qparams(user, 3, 4)
            return (ort_ops.to_offset_u8(out), 0, 255, user.output[0], (s_q, z_q), [user],
                    f"{user.name} ({user.op_type}) as a table", out.dtype == np.int8)
        return None

    def _finish_layer(self, node, conv, transform, place, x, y, skip):
        signed_y = self.signed.get(y, self.dtype(y) == np.int8)
        s_y, z_y = float(conv.output_scale), conv.output_zero_point - (128 if signed_y else 0)
        final, out_q, out_signed = y, (s_y, z_y), signed_y
        fold = self._fold(y, signed_y, z_y, s_y)
        if fold is not None:
            table, lo, hi, final, out_q, folded, what = fold[:7]
            out_signed = fold[7] if len(fold) > 7 else signed_y
            if table is not None:
                conv.table = table
            conv.lo, conv.hi = max(conv.lo, lo), min(conv.hi, hi)
            conv.output_scale = float(out_q[0])
            conv.table_output_zero_point = _offset(out_q[1], out_signed)
            for f in folded:
                skip.add(f.name)
                self.reasons[f.name] = f"folded into layer {node.name}"
            place["activation"] = what
        self.signed[final] = out_signed
        dtype, shape = self.types[final]
        self.values[final] = Value(final, shape, "u8", float(out_q[0]), _offset(out_q[1], out_signed))
        layer = _OnnxLayer(node.name, conv, transform, place["activation"])
        self.layers[node.name] = layer
        self.placements.append(place)
        self.nodes.append(Node("layer", node.name, [x], [final], layer=node.name))
        self.reasons[node.name] = "accelerator"
        self.recorded[node.name] = final


# ---------------------------------------------------------------------------------------------
# the program

class OnnxProgram(Program):
    """A quantized ONNX network whose supported layers run on the accelerator; the
    interface of :class:`host.compiler.program.Program`.

    ``layers``: a placement dict per conv / FC-like node (name, type, C, K, H, W, kernel,
    stride, padding, groups, macs, activation, placement, reason, decomposed);
    ``graph()`` the operator graph; ``build(cfg)`` the executable; ``run(*inputs)`` takes
    numpy arrays as ``InferenceSession.run`` does (positional, in graph-input order, or one
    ``{name: array}`` dict) and returns the list of graph outputs (float32, or the 8-bit
    tensors in their own type). ``run(..., record=True)`` also fills ``layer_outputs``
    (layer name -> [its output in ONNX's type]; a layer with a fused addition writes the
    sum instead, and has none), ``layer_tensors`` (layer name -> the ONNX tensor it writes,
    in ``optimized_model``) and ``tensors`` (every tensor of the frame, by its ONNX name,
    in ONNX's type). ``optimized_model`` is the graph ONNX
    Runtime runs (what is compiled); ``node_reasons`` says why each node runs where it runs.
    """

    def __init__(self, model, compiler, feed, cfg=None, *, latency=50, progress=True, cpu_nodes=()):
        self._compiled = {}
        graph = compiler.compile()
        super().__init__(model, dict(compiler.layers), compiler.placements, cfg, latency=latency,
                         progress=progress, example=tuple(feed.values()), graph=graph)
        self.input_names = list(feed)
        self.output_names = list(compiler.outputs)
        self.optimized_model = compiler.opt
        self.node_reasons = dict(compiler.reasons)
        self.layer_tensors = dict(compiler.recorded)
        self._signed = dict(compiler.signed)
        self._cpu_nodes = tuple(cpu_nodes)
        self._compiled[_shapes(self.example)] = compiler

    def graph(self, *args):
        """The operator graph for inputs shaped like ``args`` (default: the example);
        another shape compiles ONNX Runtime's graph for it once."""
        args = args or self.example
        key = _shapes(args)
        if key not in self._graphs:
            feed = dict(zip(self.input_names, (np.asarray(a) for a in args)))
            compiler = _Compiler(self.model, feed, self._cpu_nodes)
            self._graphs[key] = compiler.compile()
            self._layers.update(compiler.layers)
            self._signed.update(compiler.signed)
            self._compiled[key] = compiler
        return self._graphs[key]

    def run(self, *inputs, backend="golden", record=False, cfg=None, **options):
        """Run the network on ``backend``: a list of the graph's outputs, as
        ``InferenceSession.run(None, feed)`` returns them, bit for bit."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            feed = inputs[0]
            missing = [n for n in self.input_names if n not in feed]
            if missing:
                raise ValueError(f"missing inputs {missing}")
            inputs = tuple(feed[n] for n in self.input_names)
        inputs = tuple(_numpy(x) for x in inputs)
        exe = self.build(cfg, reuse=not record, args=inputs)
        if backend in ("rtl", "sim", "cocotb"):
            options.setdefault("latency", self.latency)
        result = exe.run(*inputs, backend=backend, record=record, profile=backend != "golden", **options)
        outputs, recorded = result if record else (result, None)
        self.report = exe.report
        self.counters = list(exe.report.layers)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        self.layer_outputs, self.tensors = {}, {}
        if record:
            for node in self.graph(*inputs).nodes:
                out = node.outputs[0] if node.kind == "layer" else None
                if out in recorded:         # not a layer whose output a fused addition replaced
                    self.layer_outputs.setdefault(node.layer, []).append(
                        ort_ops.from_offset_u8(recorded[out], self._signed.get(out, False)).copy())
            self.tensors = {name: self._native(value, name, exe) for name, value in recorded.items()}
        return [self._native(o, name, exe) for o, name in zip(outputs, exe.outputs)]

    __call__ = run

    def _native(self, value, name, exe):
        info = exe.tensors[name]
        if info.dtype == "u8":
            return ort_ops.from_offset_u8(value, self._signed.get(name, False)).copy()
        return np.asarray(value)

    def summary(self):
        """Every node of ONNX Runtime's optimized graph: where it runs and, when not on the
        accelerator, why; then the totals of :meth:`stats`."""
        lines = []
        for p in self.layers:
            where = p["placement"] + (f" ({p['reason']})" if p.get("reason") else "")
            if p["placement"] != "accelerator":
                where += " [host onnxruntime]"
            act = f" + {p['activation']}" if p.get("activation") else ""
            if p.get("decomposed"):
                d = p["decomposed"]
                act += f" (as 3x3 over {d['pieces']} x {p['C']} = {d['C']} channels)"
            kernel = p["kernel"] if isinstance(p["kernel"], int) else "x".join(map(str, p["kernel"]))
            kernel = f"{kernel}x{kernel}" if isinstance(p["kernel"], int) else kernel
            groups = f" g{p['groups']}" if p.get("groups", 1) != 1 else ""
            shape = f"{p['C']}->{p['K']} {kernel} s{p['stride']}{groups} @{p['H']}x{p['W']}"
            lines.append(f"{p['name']:40} {p['type']:14} {shape:32} {p['macs'] / 1e6:9.2f} MMAC  {where}{act}")
        layer_names = {p["name"] for p in self.layers}
        for node in self.graph().nodes:
            if node.name in layer_names:
                continue
            reason = self.node_reasons.get(node.name, "runs on the host between accelerator segments")
            lines.append(f"{node.name:40} host {node.kind:24} {reason}")
        folded = [(n, r) for n, r in self.node_reasons.items() if r.startswith("folded into")]
        for n, r in folded:
            lines.append(f"{n:40} {'':29} {r}")
        st = self.stats()
        lines.append(f"accelerator: {st['accelerator_layers']} layers, "
                     f"{st['accelerator_macs'] / 1e6:.1f} MMAC; cpu: {st['cpu_layers']} layers, "
                     f"{st['cpu_macs'] / 1e6:.1f} MMAC; accelerator share of MACs: "
                     f"{100 * st['accelerator_share']:.2f}%")
        return "\n".join(lines)


def compile_onnx(model, example_inputs, cfg=None, *, cpu_nodes=(), latency=50, progress=True):
    """Compile a quantized ONNX model (a path, bytes or an ``onnx.ModelProto``) for the
    accelerator; ``example_inputs``: its inputs (numpy arrays, positional or a ``{name:
    array}`` dict), which fix the input shapes. ``cpu_nodes``: names of nodes (in ONNX
    Runtime's optimized graph; a fused QDQ conv keeps its Conv's name) to run in ONNX
    Runtime on the host knowingly. Raises :class:`host.golden.quant.QuantError` naming the
    node for what the accelerator cannot run (see the module)."""
    proto = load_model(model)
    feed = _feed(proto, example_inputs)
    for i in _graph_inputs(proto):
        if i.name not in feed:
            raise ValueError(f"missing example input {i.name!r}")
    compiler = _Compiler(proto, feed, cpu_nodes)
    program = OnnxProgram(proto, compiler, feed, cfg if cfg is not None else AccelConfig(),
                          latency=latency, progress=progress, cpu_nodes=cpu_nodes)
    if not any(v.dtype == "u8" for v in program.graph().values.values()):
        raise QuantError("the model computes no quantized tensor: a float model (quantize it with "
                         "onnxruntime.quantization.quantize_static); nothing would run on the accelerator")
    return program


def main(argv=None):
    """``python -m host.compiler.onnx_frontend MODEL.onnx``: compile a quantized ONNX model
    (random float32 example inputs of the model's static shapes; ``--size`` sets H and W of
    dynamic ones) and print where every node runs; ``--check`` also runs the golden backend
    and compares with ONNX Runtime."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m host.compiler.onnx_frontend", description=main.__doc__)
    parser.add_argument("model")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    proto = load_model(args.model)
    rng = np.random.default_rng(args.seed)
    inputs = []
    for i in _graph_inputs(proto):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim]
        shape = [d if d is not None else (1 if k == 0 else args.size if k >= 2 else 3) for k, d in enumerate(dims)]
        dtype = _np_type(i.type.tensor_type.elem_type)
        inputs.append(rng.standard_normal(shape).astype(dtype) if dtype == np.float32
                      else rng.integers(0, 255, shape).astype(dtype))
    program = compile_onnx(proto, inputs)
    print(program.summary())
    if args.check:
        ours = program.run(*inputs)
        ref = ort_run(proto, inputs)
        same = all(np.array_equal(a, b) for a, b in zip(ours, ref.values()))
        print(f"golden backend equals ONNX Runtime: {'yes' if same else 'NO'}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())

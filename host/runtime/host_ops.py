"""The operators the host runs between accelerator segments, on the arena's tensors.

Each :class:`host.runtime.executable.HostOp` names a ``kind`` of :data:`KINDS`; its inputs
arrive as numpy arrays (u8 in logical NCHW order for arena tensors, float32 for the
network's own inputs) with their :class:`host.runtime.executable.TensorInfo` (shape,
quantization, the memory format PyTorch gives the tensor), and it returns its outputs
the same way. The arithmetic is :mod:`host.golden.ops` (numpy models equal to PyTorch's
quantized kernels), :mod:`host.golden.quant` (a conv kept on the CPU) and a layout
rearrangement or two; ``torch`` runs a PyTorch module or
function kept in the executable, for operators without a numpy model (the executable
marks them ``needs_torch``).
"""

import io

import numpy as np

from host.golden import ops, ort_ops
from host.golden.quant import LargeConv

__all__ = ["run", "KINDS", "shifted_copies"]


def shifted_copies(x_u8, *, kernel, stride, padding, pieces, zero_point):
    """A large convolution's input as its 3x3 decomposition reads it
    (``host.compiler.decompose``): ``n_r x n_s`` copies of the input padded with the zero
    point, copy ``(a, b)`` shifted up by ``3a`` rows and left by ``3b`` columns, cropped
    to the rows and columns the 3x3 convolution reads; (N, C, H, W) -> (N, n_r n_s C,
    H', W')."""
    x_u8 = np.asarray(x_u8)
    (r, s), (ph, pw), (nr, ns) = kernel, padding, pieces
    batch, c, h, w = x_u8.shape
    xo = (h + 2 * ph - r) // stride + 1
    yo = (w + 2 * pw - s) // stride + 1
    rows, cols = stride * (xo - 1) + 3, stride * (yo - 1) + 3
    need_h, need_w = rows + 3 * (nr - 1), cols + 3 * (ns - 1)
    xpad = np.full((batch, c, max(need_h, h + ph), max(need_w, w + pw)), zero_point, dtype=np.uint8)
    xpad[:, :, ph:ph + h, pw:pw + w] = x_u8
    out = np.empty((batch, nr, ns, c, rows, cols), dtype=np.uint8)
    for a in range(nr):
        for b in range(ns):
            out[:, a, b] = xpad[:, :, 3 * a:3 * a + rows, 3 * b:3 * b + cols]
    return out.reshape(batch, nr * ns * c, rows, cols)


def _quantize(args, infos, outs, p):
    return [ops.quantize(np.asarray(args[0], dtype=np.float32), outs[0].scale, outs[0].zero_point)]


def _dequantize(args, infos, outs, p):
    return [ops.dequantize(args[0], infos[0].scale, infos[0].zero_point)]


def _add(args, infos, outs, p):
    (a, b), (ia, ib), o = args, infos, outs[0]
    return [ops.add(a, ia.scale, ia.zero_point, b, ib.scale, ib.zero_point, o.scale, o.zero_point,
                    relu=p.get("relu", False), channels_last=ia.channels_last)]


def _max_pool2d(args, infos, outs, p):
    return [ops.max_pool2d(args[0], channels_last=infos[0].channels_last, **p)]


def _avg_pool2d(args, infos, outs, p):
    return [ops.avg_pool2d(args[0], infos[0].scale, infos[0].zero_point,
                           channels_last=infos[0].channels_last, **p)]


def _adaptive_avg_pool2d(args, infos, outs, p):
    return [ops.adaptive_avg_pool2d(args[0], infos[0].scale, infos[0].zero_point,
                                    channels_last=infos[0].channels_last, **p)]


def _cat(args, infos, outs, p):
    return [ops.cat(list(args), [(i.scale, i.zero_point) for i in infos], p["dim"],
                    outs[0].scale, outs[0].zero_point, channels_last=[i.channels_last for i in infos])]


def _relu(args, infos, outs, p):
    return [ops.relu(args[0], infos[0].zero_point)]


def _hardtanh(args, infos, outs, p):
    return [ops.hardtanh(args[0], infos[0].scale, infos[0].zero_point, min_val=p["min_val"],
                         max_val=p["max_val"], channels_last=infos[0].channels_last)]


def _relu6(args, infos, outs, p):
    return [ops.relu6(args[0], infos[0].scale, infos[0].zero_point, channels_last=infos[0].channels_last)]


def _transpose(args, infos, outs, p):
    return [np.ascontiguousarray(np.transpose(args[0], p["axes"]))]


def _reshape(args, infos, outs, p):
    return [np.asarray(args[0]).reshape(outs[0].shape)]


def _slice(args, infos, outs, p):
    index = [slice(None)] * np.ndim(args[0])
    index[p["dim"]] = slice(p["start"], p["stop"])
    return [np.ascontiguousarray(args[0][tuple(index)])]


def _decompose(args, infos, outs, p):
    return [shifted_copies(args[0], **p)]


def _conv(args, infos, outs, p):
    """A quantized conv (or a Linear, as a 1x1 conv on the rows of its input) on the host,
    with the golden model."""
    p = dict(p)
    linear = p.pop("linear")
    conv = LargeConv(**p)
    x = np.asarray(args[0])
    if linear:
        rows = x.reshape(-1, x.shape[-1], 1, 1)
        return [conv(rows).reshape(*x.shape[:-1], conv.out_channels)]
    return [conv(x)]


def _torch(args, infos, outs, p):
    """A PyTorch module or function kept in the executable (``p["call"]``: ``torch.save``
    of ``(callable, args template, kwargs template)``, ``("tensor", i)`` marking input
    ``i``; a ``torch.ops`` operator kept as ``("torch.ops", "namespace::name")``)."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError("this host operator has no numpy model and needs PyTorch: "
                          "install torch to run the executable") from exc
    fn, template, kwargs = torch.load(io.BytesIO(p["call"]), weights_only=False)
    if isinstance(fn, tuple) and fn[0] == "torch.ops":
        namespace, name = fn[1].split("::")
        fn = getattr(getattr(torch.ops, namespace), name)

    def tensor(i):
        info, value = infos[i], args[i]
        if info.dtype == "f32":
            return torch.from_numpy(np.ascontiguousarray(value))
        t = torch.from_numpy(np.ascontiguousarray(value))
        q = torch._make_per_tensor_quantized_tensor(t, info.scale, info.zero_point)
        return q.contiguous(memory_format=torch.channels_last) if info.channels_last and q.dim() == 4 else q

    def fill(v):
        if isinstance(v, tuple) and len(v) == 2 and v[0] == "tensor":
            return tensor(v[1])
        if isinstance(v, (list, tuple)):
            return type(v)(fill(x) for x in v)
        return v
    with torch.no_grad():
        result = fn(*fill(template), **{k: fill(v) for k, v in kwargs.items()})
    results = list(result) if isinstance(result, (list, tuple)) else [result]
    out = []
    for r, info in zip(results, outs):
        if info.dtype == "f32":
            out.append(r.numpy().astype(np.float32))
        else:
            out.append(r.int_repr().contiguous().numpy())
    return out


# ---------------------------------------------------------------------------------------------
# ONNX Runtime host operators (host.compiler.onnx_frontend): numpy models of ONNX Runtime's CPU
# kernels (host.golden.ort_ops) and, for the others, ONNX Runtime itself. 8-bit arena tensors
# hold int8 values offset by 128 (``params["signed"]``); they are converted back where the
# signed values matter.

def _native(x, signed):
    return ort_ops.from_offset_u8(x, signed)


def _ort_quantize(args, infos, outs, p):
    zp = np.int8(p["zero_point"]) if p["signed"] else np.uint8(p["zero_point"])
    return [ort_ops.to_offset_u8(ort_ops.quantize_linear(np.asarray(args[0], dtype=np.float32), p["scale"], zp))]


def _ort_dequantize(args, infos, outs, p):
    return [ort_ops.dequantize_linear(_native(args[0], p["signed"]), p["scale"], p["zero_point"])]


def _ort_qlinear_add(args, infos, outs, p):
    a, b = (_native(v, p["signed"]) for v in args)
    y = ort_ops.qlinear_add(a, p["a_scale"], p["a_zero_point"], b, p["b_scale"], p["b_zero_point"],
                            p["c_scale"], p["c_zero_point"])
    return [ort_ops.to_offset_u8(y).reshape(outs[0].shape)]


def _ort_global_average_pool(args, infos, outs, p):
    y = ort_ops.qlinear_global_average_pool(_native(args[0], p["signed"]), p["x_scale"], p["x_zero_point"],
                                            p["y_scale"], p["y_zero_point"])
    return [ort_ops.to_offset_u8(y)]


def _ort_max_pool(args, infos, outs, p):
    return [ort_ops.max_pool(args[0], p["kernel_shape"], p["strides"], p["pads"], p["dilations"], p["ceil_mode"])]


def _ort_concat(args, infos, outs, p):
    return [np.ascontiguousarray(np.concatenate([np.asarray(a) for a in args], axis=p["axis"]))]


def _ort_float(args, infos, outs, p):
    xs = [np.asarray(a, dtype=np.float32) for a in args]
    if p["op"] == "Relu":
        return [np.maximum(xs[0], np.float32(0))]
    fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[p["op"]]
    return [fn(xs[0], xs[1]).astype(np.float32)]


def _ort_to_arena(args, infos, outs, p):
    return [ort_ops.to_offset_u8(np.asarray(args[0]))]


_ORT_SESSIONS = {}


def _onnxruntime(args, infos, outs, p):
    """A node ONNX Runtime runs on the host: ``p["model"]`` a one-node ONNX model (its
    constant inputs as initializers), run with the default graph optimizations."""
    import hashlib
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError("this host operator runs in ONNX Runtime (no numpy model): install "
                          "onnxruntime to run the executable") from exc
    key = hashlib.sha256(p["model"]).hexdigest()
    session = _ORT_SESSIONS.get(key)
    if session is None:
        so = onnxruntime.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        session = onnxruntime.InferenceSession(p["model"], so, providers=["CPUExecutionProvider"])
        _ORT_SESSIONS[key] = session
    feed = {}
    for name, value, info, signed, dtype in zip(p["inputs"], args, infos, p["signed_in"], p["types_in"]):
        value = _native(value, signed) if info.dtype == "u8" else np.asarray(value)
        feed[name] = np.asarray(value, dtype=dtype)
    feed.update(p.get("fed", {}))         # constants ONNX Runtime computes at run time in the graph
    results = session.run(p["outputs"], feed)
    return [ort_ops.to_offset_u8(r) if info.dtype == "u8" else r for r, info in zip(results, outs)]


KINDS = {"conv": _conv, "quantize": _quantize, "dequantize": _dequantize, "add": _add, "max_pool2d": _max_pool2d,
         "avg_pool2d": _avg_pool2d, "adaptive_avg_pool2d": _adaptive_avg_pool2d, "cat": _cat,
         "relu": _relu, "hardtanh": _hardtanh, "relu6": _relu6, "transpose": _transpose, "reshape": _reshape,
         "slice": _slice, "decompose": _decompose,
         "torch": _torch,
         "ort_quantize": _ort_quantize, "ort_dequantize": _ort_dequantize, "ort_qlinear_add": _ort_qlinear_add,
         "ort_global_average_pool": _ort_global_average_pool, "ort_max_pool": _ort_max_pool,
         "ort_concat": _ort_concat, "ort_float": _ort_float, "ort_to_arena": _ort_to_arena,
         "onnxruntime": _onnxruntime}


def run(op, args, infos, outs):
    """The outputs of host operator ``op`` on ``args`` (numpy arrays) whose tensors are
    ``infos``, producing tensors ``outs``."""
    if op.kind not in KINDS:
        raise ValueError(f"host operator {op.name}: unknown kind {op.kind!r}")
    return KINDS[op.kind](args, infos, outs, dict(op.params))

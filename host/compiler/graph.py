"""A traced quantized PyTorch network as a graph of operators on named tensors.

:func:`graph_from_trace` turns one run of a model (``host.compiler.program._Trace``: leaf
module calls and top-level tensor operations, with their tensors) into a :class:`Graph`:

* ``layer``: a convolution or Linear the accelerator runs (one call of a program layer;
  an activation folded into its table is part of it);
* host operators (``host.runtime.host_ops.KINDS``): quantize, dequantize, quantized add,
  pooling, concatenation, ReLU / ReLU6 / Hardtanh, transposes, channel slices that are
  not contiguous, a conv or Linear kept on the CPU (``conv``, the golden model);
* ``alias``: a reshape, flatten, identity or contiguous channel slice, which costs
  nothing (the output is the input's bytes, at an offset);
* ``torch``: anything else, kept as the PyTorch module or function itself, so the graph
  still computes what the model does (the executable then needs torch).

Every tensor becomes a :class:`Value` with its shape, quantization and the memory format
PyTorch gave it. Nothing here runs a layer.
"""

import io
from dataclasses import dataclass, field

import numpy as np

from host.golden.ops import suggests_channels_last
from host.golden.quant import QuantError

__all__ = ["Graph", "Node", "Value", "graph_from_trace", "ALIAS_FUNCTIONS"]

# tensor functions whose output is their input's elements in the same order
ALIAS_FUNCTIONS = ("flatten", "view", "reshape", "contiguous", "squeeze", "unsqueeze", "view_as",
                   "reshape_as", "detach")


@dataclass
class Value:
    """A tensor: ``dtype`` "u8" (quint8, logical NCHW) or "f32"; ``alias_of``: ``(value,
    byte offset)`` when it is a view of another value's bytes."""
    name: str
    shape: tuple
    dtype: str
    scale: float = 1.0
    zero_point: int = 0
    channels_last: bool = False
    alias_of: tuple = None

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Node:
    """One operator: ``kind`` ("layer", "alias", a host operator kind or "torch"),
    ``name`` (the module or function it came from), input and output value names,
    ``params``; a ``layer`` node's ``layer`` (the program layer's name)."""
    kind: str
    name: str
    inputs: list
    outputs: list
    params: dict = field(default_factory=dict)
    layer: str = None


@dataclass
class Graph:
    """``values`` (name -> :class:`Value`), ``nodes`` in traced order, the network's
    ``inputs`` and ``outputs`` (value names); ``tensors``: the traced torch tensor of each
    value (the reference the executable's tensors are compared with), when kept."""
    values: dict
    nodes: list
    inputs: list
    outputs: list
    tensors: dict = None

    def producer(self):
        """{value name: the node that computes it}."""
        return {out: node for node in self.nodes for out in node.outputs}


def _torch():
    import torch
    return torch


def _value(name, t):
    torch = _torch()
    if t.is_quantized:
        if t.dtype != torch.quint8 or t.qscheme() != torch.per_tensor_affine:
            raise QuantError(f"{name}: tensor of {t.dtype} {t.qscheme()}; the executable holds "
                             f"per-tensor quint8 and float32 tensors")
        last = t.dim() == 4 and suggests_channels_last(tuple(t.shape), tuple(t.stride()))
        return Value(name, tuple(t.shape), "u8", float(t.q_scale()), int(t.q_zero_point()), bool(last))
    if t.dtype != torch.float32:
        raise QuantError(f"{name}: tensor of {t.dtype}; the executable holds per-tensor quint8 "
                         f"and float32 tensors")
    return Value(name, tuple(t.shape), "f32")


def _dim(d, ndim):
    return d + ndim if d < 0 else d


def _arg(event, index, name, default=None):
    args, kwargs = event.get("args", ()), event.get("kwargs") or {}
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _pickled_call(fn, args, kwargs, known):
    """``torch.save`` of ``(fn, args template, kwargs template)``: tensors the graph knows
    become ``("tensor", i)`` (input ``i`` of the node), others are kept as constants."""
    torch = _torch()
    inputs = []

    def template(v):
        if isinstance(v, torch.Tensor) and id(v) in known:
            inputs.append(known[id(v)])
            return ("tensor", len(inputs) - 1)
        if isinstance(v, (list, tuple)):
            return type(v)(template(x) for x in v)
        return v
    t_args, t_kwargs = template(tuple(args)), {k: template(v) for k, v in kwargs.items()}
    qualified = getattr(fn, "_qualified_op_name", None)     # torch.ops.<namespace>.<op>
    if qualified is not None:
        fn = ("torch.ops", qualified)
    buf = io.BytesIO()
    try:
        torch.save((fn, t_args, t_kwargs), buf)
    except Exception as exc:          # noqa: BLE001 -- any pickling failure
        raise QuantError(f"{getattr(fn, '__name__', fn)!s}: cannot be kept for the host ({exc})") from None
    return buf.getvalue(), inputs


class _Builder:
    def __init__(self):
        self.values, self.nodes = {}, []
        self.known = {}                 # id(tensor) -> value name
        self.tensors = {}               # value name -> tensor
        self.names = {}

    def fresh(self, base):
        n = self.names.get(base, 0)
        self.names[base] = n + 1
        return base if n == 0 else f"{base}#{n}"

    def define(self, base, t, **overrides):
        name = self.fresh(base)
        v = _value(name, t)
        for k, x in overrides.items():
            setattr(v, k, x)
        self.values[name] = v
        self.known[id(t)] = name
        self.tensors[name] = t
        return name

    def name_of(self, t, what):
        if id(t) not in self.known:
            raise QuantError(f"{what}: reads a tensor the network did not compute from its inputs")
        return self.known[id(t)]


def _outputs(event):
    torch = _torch()
    out = event["output"]
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in out):
        return list(out)
    return []


def _module_kind(module):
    """``(kind, params)`` of a leaf module the host runs, or None."""
    import torch.ao.nn.quantized as nnq
    import torch.nn as nn
    if isinstance(module, (nn.Identity, nn.Dropout, nn.Flatten)):
        return "alias", {}
    if type(module).__name__ == "Quantize":
        return "quantize", {}
    if type(module).__name__ == "DeQuantize":
        return "dequantize", {}
    if isinstance(module, nn.MaxPool2d):
        return "max_pool2d", {"kernel_size": module.kernel_size, "stride": module.stride,
                              "padding": module.padding, "dilation": module.dilation,
                              "ceil_mode": bool(module.ceil_mode)}
    if isinstance(module, nn.AvgPool2d):
        return "avg_pool2d", {"kernel_size": module.kernel_size, "stride": module.stride,
                              "padding": module.padding, "ceil_mode": bool(module.ceil_mode),
                              "count_include_pad": bool(module.count_include_pad),
                              "divisor_override": module.divisor_override}
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return "adaptive_avg_pool2d", {"output_size": module.output_size}
    if isinstance(module, nnq.ReLU6):
        return "relu6", {}
    if type(module) is nn.ReLU:
        return "relu", {}
    if type(module) is nn.ReLU6:
        return "hardtanh", {"min_val": 0.0, "max_val": 6.0}
    if type(module) is nn.Hardtanh:
        return "hardtanh", {"min_val": float(module.min_val), "max_val": float(module.max_val)}
    return None


def _host_conv(module, data):
    """``("conv", params)`` of a quantized conv or Linear the host runs with the golden
    model (``host.golden.quant.LargeConv``), or None when it is none or the model does
    not cover it."""
    import torch.ao.nn.quantized as nnq
    from host.compiler.torch_frontend import quant_conv_from_module
    from host.golden.quant import LargeConv
    if not isinstance(module, (nnq.Conv2d, nnq.Linear)) or len(data) != 1 or not data[0].is_quantized:
        return None
    try:
        conv = quant_conv_from_module(LargeConv, module, data[0].q_scale(), data[0].q_zero_point())
    except QuantError:
        return None
    fields = ("weight", "bias_q", "multiplier", "input_zero_point", "output_zero_point", "stride",
              "padding", "lo", "hi", "table", "groups")
    return "conv", {**{f: getattr(conv, f) for f in fields}, "linear": isinstance(module, nnq.Linear)}


def _function_kind(event, tensors):
    """``(kind, params, data inputs)`` of a top-level tensor function the host runs (or
    an alias), or None. ``tensors``: its tensor arguments in order."""
    torch = _torch()
    name = event["name"]
    quint8 = [t.is_quantized for t in tensors]
    out = _outputs(event)
    if name == "quantize_per_tensor" and tensors and not tensors[0].is_quantized:
        return "quantize", {}, [tensors[0]]
    if name == "dequantize" and len(tensors) == 1 and quint8[0]:
        return "dequantize", {}, tensors
    a, b = _arg(event, 0, "qa"), _arg(event, 1, "qb")
    if name in ("add", "add_relu") and all(isinstance(t, torch.Tensor) and t.is_quantized for t in (a, b)) \
            and out and out[0].is_quantized:
        return "add", {"relu": name == "add_relu"}, [a, b]
    if name == "cat" and out and out[0].is_quantized:
        parts = _arg(event, 0, "tensors")
        if isinstance(parts, (list, tuple)) and all(isinstance(t, torch.Tensor) and t.is_quantized for t in parts):
            dim = _dim(_arg(event, 1, "dim", 0), out[0].dim())
            return "cat", {"dim": dim}, list(parts)
    if name in ALIAS_FUNCTIONS and len(out) == 1 and tensors:
        return "alias", {}, [tensors[0]]
    if name in ("transpose", "permute", "t") and len(out) == 1 and tensors:
        x = tensors[0]
        if name == "permute":
            dims = _arg(event, 1, "dims")
            dims = list(dims) if isinstance(dims, (list, tuple)) else list(event["args"][1:])
            axes = [_dim(d, x.dim()) for d in dims]
        else:
            d0, d1 = (0, 1) if name == "t" else (_dim(_arg(event, 1, "dim0"), x.dim()),
                                                  _dim(_arg(event, 2, "dim1"), x.dim()))
            axes = list(range(x.dim()))
            axes[d0], axes[d1] = axes[d1], axes[d0]
        return "transpose", {"axes": axes}, [x]
    if name in ("chunk", "split") and len(out) >= 1 and tensors:
        dim = _dim(_arg(event, 2, "dim", 0), tensors[0].dim())
        return "slices", {"dim": dim}, [tensors[0]]
    if name in ("relu", "relu_") and len(tensors) == 1 and quint8[0]:
        return "relu", {}, tensors
    return None


def graph_from_trace(trace, layers, folded, args):
    """The :class:`Graph` of one traced run.

    ``layers``: the program layers the accelerator runs (name -> layer); ``folded``:
    ``{conv event index: activation event index}`` for activations folded into a conv's
    table; ``args``: the positional inputs the model was traced with."""
    torch = _torch()
    b = _Builder()
    inputs = []
    for i, x in enumerate(args):
        if not isinstance(x, torch.Tensor):
            raise QuantError(f"input {i} is a {type(x).__name__}; the executable takes tensors")
        inputs.append(b.define(f"input{i}", x))
    skip = set(folded.values())
    events = trace.events
    for index, e in enumerate(events):
        if index in skip:
            continue
        outs = _outputs(e)
        if not outs:
            continue
        what = e["name"]
        if e["kind"] == "module":
            module = e["module"]
            data = [t for t in e["inputs"]]
            if what in layers:
                out_t = events[folded[index]]["output"] if index in folded else outs[0]
                x = b.name_of(data[0], what)
                y = b.define(what, out_t)
                b.nodes.append(Node("layer", what, [x], [y], layer=what))
                continue
            recognized = _module_kind(module) or _host_conv(module, data)
            if recognized is not None and len(data) == 1:
                kind, params = recognized
                x = b.name_of(data[0], what)
                if kind == "alias":
                    y = b.define(what, outs[0], alias_of=(x, 0))
                    b.nodes.append(Node("alias", what, [x], [y]))
                else:
                    y = b.define(what, outs[0])
                    b.nodes.append(Node(kind, what, [x], [y], params))
                continue
            call, used = _pickled_call(module, e.get("args", tuple(data)), {}, b.known)
            ys = [b.define(what, t) for t in outs]
            b.nodes.append(Node("torch", what, used, ys, {"call": call}))
            continue
        tensors = e["inputs"]
        recognized = _function_kind(e, tensors)
        base = f"{what}"
        if recognized is not None and all(id(t) in b.known for t in recognized[2]):
            kind, params, data = recognized
            xs = [b.name_of(t, what) for t in data]
            if kind == "alias":
                y = b.define(base, outs[0], alias_of=(xs[0], 0))
                b.nodes.append(Node("alias", what, xs, [y]))
            elif kind == "slices":
                x = b.values[xs[0]]
                start = 0
                for t in outs:
                    size = t.shape[params["dim"]]
                    inner = int(np.prod(x.shape[params["dim"] + 1:], dtype=np.int64))
                    if x.dtype == "u8" and int(np.prod(x.shape[:params["dim"]], dtype=np.int64)) == 1:
                        y = b.define(base, t, alias_of=(xs[0], start * inner))
                        b.nodes.append(Node("alias", what, xs, [y]))
                    else:
                        y = b.define(base, t)
                        b.nodes.append(Node("slice", what, xs, [y],
                                            {"dim": params["dim"], "start": start, "stop": start + size}))
                    start += size
            else:
                y = b.define(base, outs[0])
                b.nodes.append(Node(kind, what, xs, [y], params))
            continue
        if not any(id(t) in b.known for t in tensors):
            continue            # builds constants only (e.g. a scale tensor): not part of the data flow
        fn = e.get("func")
        call, used = _pickled_call(fn, e.get("args", ()), e.get("kwargs") or {}, b.known)
        ys = [b.define(base, t) for t in outs]
        b.nodes.append(Node("torch", what, used, ys, {"call": call}))
    result = trace.result_tensors
    outputs = [b.name_of(t, "the network's output") for t in result]
    return Graph(b.values, b.nodes, inputs, outputs, b.tensors)

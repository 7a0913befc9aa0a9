"""Whole quantized PyTorch networks on the accelerator.

``compile(model_q, example_input)`` takes a network quantized with ``torch.ao.quantization``
(eager mode: QuantStub / DeQuantStub, ``torch.ao.nn.quantized`` modules, FloatFunctional
converted to QFunctional; or an FX-converted GraphModule; engine qnnpack), runs it once on
``example_input`` while recording every leaf module call and every tensor operation, and
returns a :class:`Program`: each supported quantized conv (Conv2d / ConvReLU2d, kernel up
to 9x9, stride 1 or 2, padding <= kernel - 1, groups (1x1 and 3x3 kernels), dilation 1,
symmetric weights) and Linear is a layer the accelerator runs as a
:class:`host.golden.quant.QuantConv`. A quantized elementwise activation (ReLU6,
LeakyReLU, Hardswish, ELU) that is the only consumer of a conv's output becomes the conv's
256-entry activation table. The trace becomes an operator graph
(:mod:`host.compiler.graph`: the layers, host operators such as the stubs, pooling,
QFunctional add and concatenation, views such as flatten), which ``Program.build(cfg)``
compiles into an :class:`host.runtime.executable.Executable` (:mod:`host.compiler.build`),
so ``program.run(x)`` returns exactly what ``model_q(x)`` returns.

Kernels other than 1x1 and 3x3 (2x2, 4x4 ... 9x9, e.g. ResNet's 7x7 stem) run through
:func:`host.compiler.decompose.decompose`: one 3x3 conv (padding 0, same stride) over an input the
host rearranges before the accelerator call -- ``ceil(R / 3)**2`` copies of the
zero-point-padded input, each shifted by a multiple of 3 rows / columns. That costs DRAM
traffic: the accelerator reads ``ceil(R / 3)**2`` times the (padded, cropped) input, 9x for
a 7x7 kernel (4x for 5x5), plus the host's write of that rearranged input, and does
``81 / 49`` of a 7x7 conv's MACs. ResNet-18's stem at 224x224 (3 x 224 x 224 = 147 KiB in)
reads 9 x 3 x 229 x 229 = 1.38 MiB instead.

A conv that the accelerator cannot run raises :class:`host.golden.quant.QuantError` naming the
module and the reason; ``cpu_modules={"name", ...}`` keeps named convs on the CPU knowingly.
"""

import numpy as np

from hw.config import AccelConfig

from host.compiler.decompose import decompose, large_conv_from_module
from host.golden.quant import SUPPORTED_KERNELS, QuantConv, QuantError
from host.compiler.torch_frontend import activation_table, quant_conv_from_module

__all__ = ["compile", "Program", "FOLDABLE_ACTIVATIONS", "torch_layer_outputs", "reference_tensors"]

BACKENDS = ("golden", "sim", "rtl", "cocotb", "pynq")


def _torch():
    import torch
    return torch


def _foldable_activations():
    """Quantized elementwise modules, and the float ones that FX leaves in a quantized
    graph to run on quint8 tensors (ReLU6, Hardtanh)."""
    import torch.ao.nn.quantized as nnq
    import torch.nn as nn
    return (nnq.ReLU6, nnq.LeakyReLU, nnq.Hardswish, nnq.ELU, nn.ReLU6, nn.Hardtanh)


FOLDABLE_ACTIVATIONS = ("ReLU6", "LeakyReLU", "Hardswish", "ELU", "Hardtanh")


def _is_conv(module):
    """Convolutions and fully connected layers, float or quantized: the layers a program
    places on the accelerator or the CPU."""
    import torch.nn as nn
    import torch.ao.nn.quantized as nnq
    from torch.ao.nn.quantized.modules.conv import _ConvNd as QuantizedConvNd
    return isinstance(module, (nn.modules.conv._ConvNd, QuantizedConvNd, nn.Linear, nnq.Linear))


def _is_linear(module):
    import torch.nn as nn
    import torch.ao.nn.quantized as nnq
    return isinstance(module, (nn.Linear, nnq.Linear))


def _is_quantized_layer(module):
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.quantized.dynamic as nnqd
    return isinstance(module, (nnq.Conv2d, nnq.Linear)) and not isinstance(module, nnqd.Linear)


def _geometry(module):
    """``(C, K, (R, S), stride, padding, groups)`` of a conv or Linear (a 1x1 conv)."""
    if _is_linear(module):
        return module.in_features, module.out_features, (1, 1), 1, 0, 1
    padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
    stride = tuple(module.stride)
    return (module.in_channels, module.out_channels, tuple(module.kernel_size),
            stride[0] if len(set(stride)) == 1 else stride,
            padding if isinstance(padding, str) or len(set(padding)) > 1 else padding[0],
            module.groups)


def _macs(module, output):
    """Multiply-accumulates of one call: output elements x (C / groups) x R x S."""
    c, _, (r, s), _, _, groups = _geometry(module)
    return int(np.prod(output.shape)) * (c // groups) * r * s


def _tensors(tree):
    from torch.utils._pytree import tree_leaves
    torch = _torch()
    return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]


class _Trace:
    """One run of a model recording leaf-module calls and top-level tensor operations.

    ``events``: dicts ``{"kind": "module" | "function", "name", "module" (or None),
    "func" (a function's callable), "args", "kwargs", "inputs" (the tensors among the
    arguments), "output"}`` in execution order. Operations inside a leaf module are part
    of that module's call. Every tensor stays referenced, so identity comparisons are
    meaningful.
    """

    def __init__(self, model, args, kwargs):
        torch = _torch()
        from torch.overrides import TorchFunctionMode

        self.events = []
        depth = [0]
        trace = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                if depth[0] != 0:
                    return func(*args, **kwargs)
                event = {"kind": "function", "name": getattr(func, "__name__", str(func)),
                         "module": None, "func": func, "args": args, "kwargs": kwargs,
                         "inputs": _tensors((args, kwargs)), "output": None}
                trace.events.append(event)
                event["output"] = func(*args, **kwargs)
                return event["output"]

        handles = []
        stack = []

        def pre_hook(name):
            def hook(module, inputs):
                if depth[0] == 0:
                    event = {"kind": "module", "name": name, "module": module, "args": inputs,
                             "kwargs": {}, "inputs": _tensors(inputs), "output": None}
                    trace.events.append(event)
                    stack.append(event)
                depth[0] += 1
            return hook

        def post_hook(module, inputs, output):
            depth[0] -= 1
            if depth[0] == 0:
                stack.pop()["output"] = output

        for name, module in model.named_modules():
            if name and (_is_conv(module) or not any(True for _ in module.children())):
                handles.append(module.register_forward_pre_hook(pre_hook(name)))
                handles.append(module.register_forward_hook(post_hook))
        try:
            with torch.no_grad(), Mode():
                self.result = model(*args, **kwargs)
        finally:
            for h in handles:
                h.remove()
        self.result_tensors = _tensors(self.result)

    def consumers(self, index):
        """Events after ``index`` that take event ``index``'s output, plus "return";
        ``nn.Identity`` modules (what eager fusion leaves of a batch norm), which return
        the very same tensor, are looked through."""
        import torch.nn as nn
        out = self.events[index]["output"]
        found = [j for j in range(index + 1, len(self.events))
                 if any(t is out for t in self.events[j]["inputs"])
                 and not isinstance(self.events[j]["module"], nn.Identity)]
        if any(t is out for t in self.result_tensors):
            found.append("return")
        return found


def _accelerator_conv(module, input_scale, input_zero_point):
    """``(QuantConv, input_transform or None)`` for a quantized conv or Linear module:
    Linear as a 1x1 conv, 1x1 and 3x3 with equal padding directly, every other kernel up to
    9x9 (square or not, unequal padding) decomposed into a 3x3 conv whose input the host
    rearranges with ``input_transform`` (u8 NCHW -> u8 NCHW)."""
    if not _is_linear(module):
        (kh, kw), (ph, pw) = module.kernel_size, module.padding
        if not (kh == kw and kh in SUPPORTED_KERNELS and ph == pw):
            return decompose(large_conv_from_module(module, input_scale, input_zero_point))
    return quant_conv_from_module(QuantConv, module, input_scale, input_zero_point), None


def _elementwise_on(activation, output):
    """Whether ``activation`` applied to a 4-D tensor quantized like ``output`` (a conv's
    quint8 output), NCHW or channels_last, equals its 256-entry table applied to every
    element. PyTorch 2.13's quantized ReLU6 is not: on a channels_last tensor it
    returns the channels_last buffer read as NCHW. A table folded into the accelerator
    would then differ from ``model_q``, so such an activation stays on the CPU."""
    torch = _torch()
    if output.dim() != 4:
        return True
    g = torch.Generator().manual_seed(0)
    values = torch.randint(0, 256, (2, 5, 3, 4), dtype=torch.uint8, generator=g)
    probe = torch._make_per_tensor_quantized_tensor(values, output.q_scale(), output.q_zero_point())
    try:
        table = torch.from_numpy(activation_table(activation, output.q_scale(), output.q_zero_point())[0])
        # both layouts: qnnpack's conv returns NCHW-contiguous for 1x1 images, channels_last else
        return all(torch.equal(activation(probe.contiguous(memory_format=f)).int_repr(), table[values.long()])
                   for f in (torch.contiguous_format, torch.channels_last))
    except (QuantError, RuntimeError):
        return False


def _describe(name, module):
    return f"module '{name}' ({type(module).__name__})"


def _memory_format(t):
    torch = _torch()
    if t.is_contiguous():
        return torch.contiguous_format
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    raise QuantError(f"output tensor with strides {t.stride()} is neither NCHW nor channels_last")


class _Layer:
    """A conv the accelerator runs (plus its folded activation)."""

    def __init__(self, name, module, activation_name, activation, out_scale, out_zero_point,
                 memory_format):
        self.name = name
        self.module = module
        self.activation_name = activation_name
        self.activation = activation
        self.out_scale = out_scale
        self.out_zero_point = out_zero_point
        self.memory_format = memory_format
        self._convs = {}

    def quant_conv(self, scale, zero_point):
        """The QuantConv the accelerator runs for inputs quantized with (scale, zero_point)."""
        return self.plan(scale, zero_point)[0]

    def plan(self, scale, zero_point):
        """``(QuantConv, input_transform or None)`` for inputs quantized with (scale,
        zero_point), built once; the transform (kernels other than 1 and 3) runs on the host."""
        key = (float(scale), int(zero_point))
        if key not in self._convs:
            try:
                conv, transform = _accelerator_conv(self.module, scale, zero_point)
                if self.activation is not None:
                    # the table from the conv's exact (double) output qparams, as PyTorch sees them
                    table, s, z = activation_table(self.activation, self.module.scale,
                                                   self.module.zero_point)
                    if z != self.out_zero_point or not np.isclose(s, self.out_scale, rtol=1e-6, atol=0):
                        raise QuantError(f"{type(self.activation).__name__} output qparams ({s}, {z}) "
                                         f"differ from the traced ({self.out_scale}, {self.out_zero_point})")
                    conv.table = table
                    conv.output_scale = self.out_scale
                    conv.table_output_zero_point = z
            except QuantError as exc:
                raise QuantError(f"{_describe(self.name, self.module)}: {exc}") from None
            self._convs[key] = (conv, transform)
        return self._convs[key]

    def describe(self, conv, x_shape, source_shape=None):
        """What the accelerator ran (``C``, ``H``, ``W``, ``kernel``, ``padding`` of the 3x3
        conv for a decomposed layer; ``source`` then gives the original conv's)."""
        n, c, h, w = x_shape
        entry = {"layer": self.name, "C": c, "K": conv.out_channels, "H": h, "W": w,
                 "kernel": conv.kernel_size, "stride": conv.stride, "padding": conv.padding,
                 "groups": conv.groups, "activation": self.activation_name, "source": None}
        if source_shape is not None:
            _, _, (r, s), _, padding, _ = _geometry(self.module)
            entry["source"] = {"C": source_shape[1], "H": source_shape[2], "W": source_shape[3],
                               "kernel": r if r == s else (r, s), "padding": padding}
        return entry


class Program:
    """A quantized network whose supported convs and Linears run on the accelerator.

    ``layers`` describes every conv and Linear: where it runs, its shape, folded
    activation and MACs. ``build(cfg)`` compiles the network into an
    :class:`host.runtime.executable.Executable` (tiles planned once per layer shape, one
    DRAM image, a command list per accelerator segment, the host operators between
    segments as numpy models of PyTorch's kernels); ``graph(*args)`` is the operator
    graph it compiles, traced for inputs of those shapes.

    ``run(*args, backend=...)`` takes what the model takes and returns what it returns,
    bit for bit: it builds (once per configuration and input shapes) and runs the
    executable on ``backend`` ("golden", "rtl": the fast C++ engine, "sim": the default
    simulation engine, "cocotb", "pynq"). After a run on a simulator, ``counters`` holds
    one dict per accelerator command (its layer, shape, trace counters) and ``report``
    the frame's :class:`host.runtime.executable.FrameReport`. ``run(..., record=True)``
    also fills ``tensors`` (every tensor the executable holds, quint8, by the graph's
    value names: compare with :func:`reference_tensors`) and ``layer_outputs``:
    accelerator layer name -> list of its quint8 outputs (one per call, in call order;
    after a folded activation), for the layers whose output is written (not those with an
    addition fused into them).
    """

    def __init__(self, model, layers, placements, cfg=None, *, latency=50, progress=True,
                 fold=None, example=None, graph=None):
        self.model = model
        self._layers = layers
        self.layers = placements
        self.cfg = cfg if cfg is not None else AccelConfig()
        self.latency = latency
        self.progress = progress
        self._fold = fold
        self._graphs = {}
        self._executables = {}
        if graph is not None:
            self._graphs[_shapes(example)] = graph
        self.example = example
        self.counters = []
        self.layer_outputs = {}
        self.report = None

    def graph(self, *args):
        """The operator graph of the network for inputs shaped like ``args`` (traced once
        per shape)."""
        from host.compiler.graph import graph_from_trace
        args = args or self.example
        key = _shapes(args)
        if key not in self._graphs:
            was_training = self.model.training
            self.model.eval()
            try:
                trace = _Trace(self.model, args, {})
            finally:
                self.model.train(was_training)
            self._graphs[key] = graph_from_trace(trace, self._layers, self._fold(trace), args)
        return self._graphs[key]

    def build(self, cfg=None, *, reuse=True, args=None):
        """The :class:`host.runtime.executable.Executable` of the network for ``cfg``
        (default: the program's), for inputs shaped like ``args`` (default: the example
        input). ``reuse=False``: no two tensors share arena bytes."""
        from host.compiler.build import build
        cfg = cfg or self.cfg
        args = args or self.example
        key = (cfg, _shapes(args), reuse)
        if key not in self._executables:
            self._executables[key] = build(self.graph(*args), self._layers, cfg, reuse=reuse,
                                           latency=self.latency, info={"layers": self.layers})
        return self._executables[key]

    @property
    def fused(self):
        """``{layer: addition}``: the additions fused into layers (the graph's fusion,
        whichever executable shows it; built once if none is)."""
        exe = next(iter(self._executables.values()), None) or self.build()
        return dict(exe.info.get("fused", {}))

    def run(self, *args, backend="golden", record=False, cfg=None, **options):
        """Run the network on ``backend``: what ``model_q(*args)`` returns, bit for bit."""
        torch = _torch()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        exe = self.build(cfg, reuse=not record, args=args)
        if backend in ("rtl", "sim", "cocotb"):
            options.setdefault("latency", self.latency)
        inputs = [a.detach().numpy() if isinstance(a, torch.Tensor) else a for a in args]
        result = exe.run(*inputs, backend=backend, record=record, profile=backend != "golden", **options)
        outputs, recorded = result if record else (result, None)
        self.report = exe.report
        self.counters = list(exe.report.layers)
        self.layer_outputs, self.tensors = {}, {}
        if record:
            self.tensors = {name: _quantized(value, exe.tensors[name]) for name, value in recorded.items()}
            for node in self.graph(*args).nodes:
                if node.kind == "layer" and node.outputs[0] in self.tensors:    # not fused away
                    self.layer_outputs.setdefault(node.layer, []).append(self.tensors[node.outputs[0]])
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        converted = tuple(_to_torch(o, exe.tensors[name]) for o, name in zip(outputs, exe.outputs))
        return converted[0] if len(converted) == 1 else converted

    __call__ = run

    def stats(self):
        """Layer counts and MACs per placement (per example input, every call counted):
        ``{accelerator_layers, cpu_layers, accelerator_macs, cpu_macs, accelerator_share}``.
        Layers are the convs and fully connected layers; pooling, additions and other
        element-wise ops always run on the CPU and are not counted."""
        acc = [p for p in self.layers if p["placement"] == "accelerator"]
        cpu = [p for p in self.layers if p["placement"] != "accelerator"]
        acc_macs, cpu_macs = sum(p["macs"] for p in acc), sum(p["macs"] for p in cpu)
        total = acc_macs + cpu_macs
        return {"accelerator_layers": len(acc), "cpu_layers": len(cpu),
                "accelerator_macs": acc_macs, "cpu_macs": cpu_macs,
                "accelerator_share": acc_macs / total if total else 0.0}

    def summary(self):
        """One line per conv / Linear (where it runs, its shape, folded activation, MACs),
        one per host operator (and why it is not on the accelerator), then the totals of
        :meth:`stats`."""
        lines = []
        for p in self.layers:
            where = p["placement"] + (f" ({p['reason']})" if p.get("reason") else "")
            act = f" + {p['activation']}" if p.get("activation") else ""
            if p.get("decomposed"):
                d = p["decomposed"]
                act += f" (as 3x3 over {d['pieces']} x {p['C']} = {d['C']} channels)"
            if p.get("unfolded"):
                act += f" [not folded: {p['unfolded']}]"
            kernel = p["kernel"] if isinstance(p["kernel"], int) else "x".join(map(str, p["kernel"]))
            kernel = f"{kernel}x{kernel}" if isinstance(p["kernel"], int) else kernel
            groups = f" g{p['groups']}" if p.get("groups", 1) != 1 else ""
            shape = f"{p['C']}->{p['K']} {kernel} s{p['stride']}{groups} @{p['H']}x{p['W']}"
            lines.append(f"{p['name']:32} {p['type']:14} {shape:32} {p['macs'] / 1e6:9.2f} MMAC  "
                         f"{where}{act}")
        exe = self.build()
        reasons, on_chip = exe.info["host_reasons"], set(exe.info["fused"].values())
        for node in self.graph().nodes:
            if node.kind in ("layer", "alias"):
                continue
            out = node.outputs[0]
            if out in reasons:
                lines.append(f"{node.name:32} host {node.kind:20} {reasons[out]}")
            elif node.name not in on_chip:
                lines.append(f"{node.name:32} accel {node.kind:19} on the accelerator")
        for layer, add in exe.info["fused"].items():
            lines.append(f"{add:32} accel add{'':16} fused into {layer}'s output")
        lines.append(f"executable: {len(exe.segments)} segment(s), {sum(s.count for s in exe.segments)} "
                     f"commands, {len(exe.host_ops)} host operators")
        st = self.stats()
        lines.append(f"accelerator: {st['accelerator_layers']} layers, "
                     f"{st['accelerator_macs'] / 1e6:.1f} MMAC; cpu: {st['cpu_layers']} layers, "
                     f"{st['cpu_macs'] / 1e6:.1f} MMAC; accelerator share of MACs: "
                     f"{100 * st['accelerator_share']:.2f}%")
        return "\n".join(lines)


def _shapes(args):
    return tuple(tuple(a.shape) for a in args)


def _quantized(u8, info):
    """A torch quint8 tensor of ``u8`` (logical NCHW) in the memory format PyTorch gives it."""
    torch = _torch()
    t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(np.ascontiguousarray(u8)),
                                                info.scale, info.zero_point)
    return t.contiguous(memory_format=torch.channels_last) if info.channels_last else t


def _to_torch(value, info):
    torch = _torch()
    if info.dtype == "f32":
        return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return _quantized(value, info)


def reference_tensors(model_q, program, *args):
    """PyTorch's own value of every tensor of ``program``'s graph for ``args``, by value
    name (``model_q`` traced again): what ``program.tensors`` holds after
    ``program.run(*args, record=True)``, computed by PyTorch."""
    from host.compiler.graph import graph_from_trace
    trace = _Trace(model_q, args, {})
    return graph_from_trace(trace, program._layers, program._fold(trace), args).tensors


def torch_layer_outputs(model_q, program, *args):
    """``(model_q(*args), outputs)``: PyTorch's own output of every layer that ``program``
    runs on the accelerator (after its folded activation, if any), by forward hooks, as
    ``layer name -> list of outputs`` in call order: what ``program.layer_outputs`` holds
    after ``program.run(*args, record=True)``, computed by PyTorch (layers with a fused
    addition have no output of their own: see :func:`reference_tensors`)."""
    torch = _torch()
    outputs, handles = {}, []
    fused = set(program.fused)
    for p in program.layers:
        if p["placement"] != "accelerator" or p["name"] in fused:
            continue
        module_name = p["activation"].split(" ")[0] if p["activation"] else p["name"]
        hook = (lambda n: lambda mod, inp, out: outputs.setdefault(n, []).append(out))(p["name"])
        handles.append(model_q.get_submodule(module_name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            result = model_q(*args)
    finally:
        for h in handles:
            h.remove()
    return result, outputs


def compile(model_q, example_input, *, cfg=None, cpu_modules=(), fold_activations=True,
            latency=50, progress=True):
    """Compile ``model_q`` (torch.ao-quantized, engine qnnpack) for the accelerator.

    ``example_input``: what ``model_q`` takes (a tensor, or a tuple of positional
    arguments). ``cpu_modules``: names of convs to run on the CPU deliberately.
    ``fold_activations``: fold a ReLU6 / LeakyReLU / Hardswish / ELU that alone consumes
    a conv's output into the conv's activation table. Convs with kernels other than 1 and 3
    (square, up to 9x9) run decomposed into a 3x3 conv (``host.compiler.decompose``); their placement's
    ``decomposed`` says into how many pieces. Raises QuantError naming the module for any
    conv the accelerator cannot run (grouped, dilated, kernel above 9x9, asymmetric weights).
    """
    torch = _torch()
    if getattr(torch.backends.quantized, "engine", None) != "qnnpack":
        raise QuantError(f"the quantized engine is {torch.backends.quantized.engine!r}; "
                         f"set torch.backends.quantized.engine = 'qnnpack'")
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    cpu_modules = set(cpu_modules)
    names = {name for name, _ in model_q.named_modules()}
    unknown = cpu_modules - names
    if unknown:
        raise QuantError(f"cpu_modules names no module of the model: {sorted(unknown)}")
    was_training = model_q.training
    model_q.eval()
    try:
        trace = _Trace(model_q, args, {})
    finally:
        model_q.train(was_training)
    foldable = _foldable_activations()

    calls = {}                 # conv name -> list of event indices
    for i, e in enumerate(trace.events):
        if e["kind"] == "module" and _is_conv(e["module"]):
            calls.setdefault(e["name"], []).append(i)

    layers, placements, folds = {}, [], {}
    for name, indices in calls.items():
        module = trace.events[indices[0]]["module"]
        first = trace.events[indices[0]]
        x = first["inputs"][0] if first["inputs"] else None
        c, k, (r, s), stride, padding, groups = _geometry(module)
        spatial = x is not None and not _is_linear(module) and x.dim() >= 2
        place = {"name": name, "type": type(module).__name__, "calls": len(indices),
                 "C": c, "K": k, "H": x.shape[-2] if spatial else (1 if x is not None else None),
                 "W": x.shape[-1] if spatial else (1 if x is not None else None),
                 "kernel": r if r == s else (r, s), "stride": stride, "padding": padding,
                 "groups": groups, "macs": sum(_macs(module, trace.events[i]["output"]) for i in indices),
                 "activation": None, "placement": "accelerator", "reason": None, "decomposed": None,
                 "unfolded": None}
        placements.append(place)
        if name in cpu_modules:
            place.update(placement="cpu", reason="cpu_modules")
            continue
        if type(module).__module__.startswith("torch.ao.nn.quantized.dynamic"):
            raise QuantError(f"{_describe(name, module)}: dynamically quantized (float "
                             f"activations); the accelerator runs statically quantized layers "
                             f"only (pass cpu_modules={{'{name}'}} to run it on the CPU)")
        if not _is_quantized_layer(module):
            raise QuantError(f"{_describe(name, module)}: not a torch.ao.nn.quantized Conv2d, "
                             f"ConvReLU2d, Linear or LinearReLU; the accelerator runs statically "
                             f"quantized 2-D convolutions and fully connected layers only "
                             f"(pass cpu_modules={{'{name}'}} to run it on the CPU)")
        acts = []
        for i in indices:
            e = trace.events[i]
            xin = e["inputs"][0] if e["inputs"] else None
            if xin is None or not xin.is_quantized or xin.dtype != torch.quint8 \
                    or xin.qscheme() != torch.per_tensor_affine:
                raise QuantError(f"{_describe(name, module)}: input must be a per-tensor quint8 tensor")
            try:
                _, transform = _accelerator_conv(module, xin.q_scale(), xin.q_zero_point())
            except QuantError as exc:
                raise QuantError(f"{_describe(name, module)}: {exc}") from None
            if transform is not None:
                pieces = transform.pieces[0] * transform.pieces[1]
                place["decomposed"] = {"pieces": pieces, "C": pieces * module.in_channels}
            users = trace.consumers(i)
            act = None
            if fold_activations and len(users) == 1 and users[0] != "return":
                user = trace.events[users[0]]
                if user["kind"] == "module" and isinstance(user["module"], foldable) \
                        and len(user["inputs"]) == 1 and user["name"] not in cpu_modules:
                    if _elementwise_on(user["module"], e["output"]):
                        act = user
                    else:
                        place["unfolded"] = (f"{user['name']}: PyTorch's {type(user['module']).__name__} "
                                             f"is not elementwise on this memory format; it runs on the CPU")
            acts.append(act)
        # fold only when every call of the conv feeds the same activation module alone
        activation = acts[0] if all(a is not None and a["name"] == acts[0]["name"] for a in acts) else None
        final = activation["output"] if activation else trace.events[indices[0]]["output"]
        if not final.is_quantized or final.dtype != torch.quint8 or final.qscheme() != torch.per_tensor_affine:
            raise QuantError(f"{_describe(name, module)}: output is not a per-tensor quint8 tensor")
        layer = _Layer(name, module, activation["name"] if activation else None,
                       activation["module"] if activation else None,
                       final.q_scale(), final.q_zero_point(), _memory_format(final))
        for i in indices:
            e = trace.events[i]
            layer.quant_conv(e["inputs"][0].q_scale(), e["inputs"][0].q_zero_point())
        layers[name] = layer
        if activation:
            place["activation"] = f"{activation['name']} ({type(activation['module']).__name__})"
            folds.setdefault(activation["name"], []).append(name)

    def fold(run):
        """{conv event: activation event} of the activations folded into a conv's table
        in a trace ``run`` of the model."""
        found = {}
        for i, e in enumerate(run.events):
            layer = layers.get(e["name"]) if e["kind"] == "module" else None
            if layer is None or layer.activation_name is None:
                continue
            users = run.consumers(i)
            if len(users) != 1 or users[0] == "return" or run.events[users[0]]["name"] != layer.activation_name:
                raise QuantError(f"{_describe(layer.name, layer.module)}: its output does not go to "
                                 f"{layer.activation_name} alone in this run")
            found[i] = users[0]
        return found

    from host.compiler.graph import graph_from_trace
    graph = graph_from_trace(trace, layers, fold(trace), args)
    return Program(model_q, layers, placements, cfg, latency=latency, progress=progress, fold=fold,
                   example=args, graph=graph)


def main(argv=None):
    """``python -m host.compiler.program --model NAME``: build a reference network (``host.tools.models``),
    quantize it (eager or FX, qnnpack, calibrated on random inputs), compile it and print
    where each layer runs and the accelerator's share of the MACs; ``--check`` also runs it
    on the golden backend and compares with PyTorch's own output. ``--onnx MODEL.onnx``:
    the same for a quantized ONNX model (``host.compiler.onnx_frontend``), checked
    against ONNX Runtime."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m host.compiler.program", description=main.__doc__)
    parser.add_argument("--model", default="resnet50",
                        help="a network of host.tools.models (resnet18, resnet50, mobilenet_v2, ...)")
    parser.add_argument("--mode", default="eager", choices=["eager", "fx"])
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true",
                        help="run on the golden backend and compare with model_q(x)")
    parser.add_argument("--onnx", metavar="MODEL.onnx",
                        help="a quantized ONNX model (quantize_static, QDQ or QOperator) instead "
                             "of a reference network: print where every node runs")
    args = parser.parse_args(argv)
    if args.onnx:
        from host.compiler import onnx_frontend
        return onnx_frontend.main([args.onnx, "--size", str(args.size), "--seed", str(args.seed)]
                                  + (["--check"] if args.check else []))
    from host.tools import models           # torch: the ONNX path above does without it
    if args.model not in models.MODELS:
        parser.error(f"--model must be one of {sorted(models.MODELS)}, got {args.model!r}")
    torch = _torch()
    model_q, x = models.quantized(args.model, args.mode, args.seed, args.size)
    program = compile(model_q, x)
    print(f"{args.model} ({args.mode} quantization, qnnpack) at {args.size}x{args.size}")
    print(program.summary())
    if args.check:
        same = torch.equal(program.run(x, backend="golden"), model_q(x))
        print(f"golden backend equals model_q(x): {'yes' if same else 'NO'}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())

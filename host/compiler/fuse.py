"""Operators the accelerator runs inside a layer or for free, by addressing.

``concatenate(graph)``: a channel concatenation whose inputs share its quantization
becomes free: each input is written by its producer straight into its channel slice of
the output (a view), so ``torch.cat`` costs nothing.

The fusion of additions:

``fuse(graph)`` rewrites a :class:`host.compiler.graph.Graph`: a quantized ``add`` (or
add+ReLU) whose input ``a`` is a ``layer`` node's output that nothing else reads becomes
part of that layer (``params["residual"]``: the other input and QNNPACK's fixed-point
parameters, ``host.golden.quant.add_parameters``); the layer then writes the sum, and its
own output is never written or read back. Both inputs may qualify: the layer traced later
takes the add (the build orders the layer after the other input). An add that cannot be fused
stays a host operator, and ``reasons`` says why (its name -> the reason).

ONNX Runtime's QLinearAdd (``ort_qlinear_add``) computes in float
(``host.golden.ort_ops.qlinear_add``), not in QNNPACK's fixed point. It fuses when
:func:`ort_add_parameters` finds fixed-point parameters for the accelerator's add that
give ONNX Runtime's result on every one of the 65,536 input pairs (checked exhaustively,
in the arena's offset representation of int8 tensors): the add is exact by construction,
or it stays on the host.

Cost, per fused add: the layer's output bytes are read once more (the residual) and
never written twice; a host add would write the conv's output, read it and the residual
back and write the sum (three tensor transfers instead of one), and split the segment.
"""

from dataclasses import replace

import numpy as np

from hw.datapath.residual_add import ADD_MULTIPLIER_BITS
from host.golden import ort_ops
from host.golden.quant import QuantError, add_fixed, add_parameters

__all__ = ["fuse", "concatenate", "ort_add_parameters", "ADD_KINDS"]

ADD_KINDS = ("add", "ort_qlinear_add")
_SHIFTS = range(31, 12, -1)        # ResidualAdd's right shifts
_TWEAKS = sorted(((i, j) for i in range(-2, 3) for j in range(-2, 3)), key=lambda t: abs(t[0]) + abs(t[1]))


def ort_add_parameters(p, layer_side):
    """Fixed-point parameters ``(ma, mb, shift, za, zb, zo)`` (zero points in the arena's
    offset representation) with which ``add_fixed(layer output, other input, ...)``
    equals ONNX Runtime's QLinearAdd of parameters ``p`` (``host.golden.ort_ops``) on all
    256 x 256 input pairs, the layer's output being input ``layer_side`` (0: A, 1: B); or
    None. Tries the three largest shifts the multipliers allow, the multipliers rounded
    from ONNX Runtime's float32 ratios and nudged by up to 2."""
    signed = p["signed"]
    dtype = np.int8 if signed else np.uint8
    offset = 128 if signed else 0
    grid = np.arange(256, dtype=np.uint8)
    x, y = np.repeat(grid, 256), np.tile(grid, 256)          # the layer's output, the other input
    native = (ort_ops.from_offset_u8(x, signed), ort_ops.from_offset_u8(y, signed))
    a, b = native if layer_side == 0 else native[::-1]
    expected = ort_ops.to_offset_u8(ort_ops.qlinear_add(
        a.astype(dtype), p["a_scale"], p["a_zero_point"], b.astype(dtype), p["b_scale"], p["b_zero_point"],
        p["c_scale"], p["c_zero_point"]))
    scales = (np.float32(p["a_scale"]), np.float32(p["b_scale"]))
    zeros = (int(p["a_zero_point"]) + offset, int(p["b_zero_point"]) + offset)
    if layer_side == 1:
        scales, zeros = scales[::-1], zeros[::-1]
    c = np.float32(p["c_scale"])
    ratios = [float(np.float32(s / c)) for s in scales]
    zo = int(p["c_zero_point"]) + offset
    shifts = [s for s in _SHIFTS if max(round(r * 2 ** s) for r in ratios) + 2 < 1 << ADD_MULTIPLIER_BITS]
    for shift in shifts[:3]:        # smaller shifts approximate the ratios worse
        ma0, mb0 = (round(r * 2 ** shift) for r in ratios)
        for dma, dmb in _TWEAKS:
            ma, mb = ma0 + dma, mb0 + dmb
            if ma > 0 and mb > 0 and np.array_equal(add_fixed(x, y, ma, mb, shift, *zeros, zo), expected):
                return ma, mb, shift, zeros[0], zeros[1], zo
    return None


def _consumers(graph):
    uses = {}
    for node in graph.nodes:
        for name in node.inputs:
            uses.setdefault(name, []).append(node)
    return uses


def fuse(graph):
    """``(graph, fused, reasons)``: ``graph`` with every fusable addition fused (see the
    module), ``{layer: addition}`` of those fused, and why each other addition stays on
    the host."""
    values = dict(graph.values)
    nodes = list(graph.nodes)
    reasons, fused = {}, {}
    producer = {out: i for i, node in enumerate(nodes) for out in node.outputs}
    uses = _consumers(graph)
    removed = set()
    for index, node in enumerate(nodes):
        if node.kind not in ADD_KINDS or len(node.inputs) != 2:
            continue
        out = values[node.outputs[0]]
        candidates = []
        for side, name in enumerate(node.inputs):
            other = node.inputs[1 - side]
            chain = []              # identities (what eager fusion leaves of a batch norm)
            while producer.get(name) is not None and nodes[producer[name]].kind == "alias" \
                    and values[nodes[producer[name]].inputs[0]].shape == values[name].shape \
                    and len(uses.get(name, [])) == 1 and name not in graph.outputs:
                chain.append(producer[name])
                name = nodes[producer[name]].inputs[0]
            p = producer.get(name)
            if p is None or p in removed or nodes[p].kind != "layer" or "residual" in nodes[p].params:
                continue
            if len(uses.get(name, [])) != 1 or name in graph.outputs:
                continue
            if values[other].shape != values[name].shape or values[other].dtype != "u8":
                continue
            candidates.append((p, side, name, other, chain))
        if not candidates:
            reasons[node.outputs[0]] = ("neither input is a layer's output read by this addition alone "
                                  "(the accelerator fuses an addition into the layer producing one)")
            continue
        p, side, name, other, chain = max(candidates)
        a, b = values[name], values[other]
        if node.kind == "ort_qlinear_add":
            found = ort_add_parameters(node.params, side)
            if found is None:
                reasons[node.outputs[0]] = ("no fixed-point parameters of the accelerator's add give ONNX "
                                            "Runtime's float QLinearAdd on every input pair")
                continue
            ma, mb, shift, za, zb, zo = found
            lo = 0
        else:
            try:
                ma, mb, shift = add_parameters(a.scale, b.scale, out.scale)
            except QuantError as exc:
                reasons[node.outputs[0]] = str(exc)
                continue
            if shift > 31:
                reasons[node.outputs[0]] = (f"QNNPACK's shift {shift} is above 31 (scale ratios below 2**-10): "
                                            f"its arithmetic there is undefined C, reproduced on the host only")
                continue
            if node.params.get("relu") and out.zero_point == 255:
                reasons[node.outputs[0]] = "add+ReLU with output zero point 255 (QNNPACK refuses it)"
                continue
            za, zb, zo = a.zero_point, b.zero_point, out.zero_point
            lo = out.zero_point if node.params.get("relu") else 0
        layer = nodes[p]
        residual = {"value": other, "ma": ma, "mb": mb, "shift": shift, "za": za, "zb": zb, "zo": zo,
                    "lo": lo, "add": node.name}
        nodes[p] = replace(layer, inputs=layer.inputs + [other], outputs=[node.outputs[0]],
                           params={**layer.params, "residual": residual})
        producer[node.outputs[0]] = p
        fused[layer.layer] = node.name
        removed.add(index)
        for alias in chain:
            removed.add(alias)
            del values[nodes[alias].outputs[0]]
        del values[name]
    kept = [n for i, n in enumerate(nodes) if i not in removed]
    return type(graph)(values, kept, list(graph.inputs), list(graph.outputs)), fused, reasons


def concatenate(graph):
    """``(graph, placed, reasons)``: ``graph`` with every concatenation on channels whose
    inputs can be written in place turned into views (see the module): one image
    (channel slices are contiguous), the inputs' quantization the output's (the cat
    then copies bytes), each input a tensor of its own written by an operator (not the
    network's input, not a view, not given twice). ``placed``: those concatenations;
    ``reasons``: why the others stay on the host."""
    values = dict(graph.values)
    producer = {out: node for node in graph.nodes for out in node.outputs}
    nodes, placed, reasons = [], [], {}
    for node in graph.nodes:
        if node.kind != "cat":
            nodes.append(node)
            continue
        out = values[node.outputs[0]]
        ins = [values[n] for n in node.inputs]
        why = None
        if node.params.get("dim") != 1 or len(out.shape) != 4 or out.shape[0] != 1 or out.dtype != "u8":
            why = "not on the channels of one image"
        elif any((v.scale, v.zero_point) != (out.scale, out.zero_point) for v in ins):
            why = "the inputs' quantization differs from the output's: the cat requantizes them"
        elif len(set(node.inputs)) != len(node.inputs):
            why = "an input given twice"
        elif any(v.alias_of is not None or n in graph.inputs or n not in producer or
                 producer[n].kind == "cat" for n, v in zip(node.inputs, ins)):
            why = "an input is a view, the network's input or another concatenation's"
        if why:
            reasons[node.outputs[0]] = why
            nodes.append(node)
            continue
        offset = 0
        for name, v in zip(node.inputs, ins):
            values[name] = replace(v, alias_of=(node.outputs[0], offset))
            offset += v.size
        placed.append(node.name)
    return type(graph)(values, nodes, list(graph.inputs), list(graph.outputs)), placed, reasons

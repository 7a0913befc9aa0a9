"""A whole quantized CNN on the generated accelerator in Verilator: every conv runs in
simulation, everything else on the CPU; the result equals PyTorch's exactly."""

import time

import torch
import torch.ao.quantization as tq
import torch.nn as nn

from host.program import compile
from hw.config import AccelConfig
from tests.test_frontend import BasicBlock, conv_outputs, inputs, quantize, reference, small_cnn


def test_small_cnn_on_the_accelerator_equals_pytorch():
    model_q = small_cnn("relu6")
    x = inputs(1, (1, 3, 32, 32), seed=21)[0]
    program = compile(model_q, x, cfg=AccelConfig())
    start = time.perf_counter()
    got = program.run(x, backend="sim")
    seconds = time.perf_counter() - start
    counters = program.counters
    assert torch.equal(got, reference(model_q, x))
    assert torch.equal(got, program.run(x, backend="golden"))
    assert [c["layer"] for c in counters] == ["conv1", "conv2", "conv3"]
    for c, (ch, k, h, stride) in zip(counters, [(3, 16, 32, 1), (16, 32, 32, 2), (32, 32, 16, 1)]):
        assert (c["C"], c["K"], c["H"], c["W"], c["stride"]) == (ch, k, h, h, stride)
        assert c["dram_write_bytes"] == k * (h // stride) ** 2
        assert 0 < c["array_busy_cycles"] <= c["cycles"]
    print(f"small CNN on the accelerator: {seconds:.1f} s, "
          f"{sum(c['cycles'] for c in counters)} cycles")


class ResNet18Front(nn.Module):
    """ResNet-18's stem (7x7 stride 2, padding 3, 3 -> 64, batch norm, ReLU), its 3x3 max
    pool and layer1 (two basic blocks of 64 channels)."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64, 1), BasicBlock(64, 64, 1))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.quant(x)))))
        return self.dequant(self.layer1(x))


def resnet18_front(size, seed=0):
    """Random weights and batch norms, fused and calibrated on random inputs (qnnpack)."""
    torch.manual_seed(seed)
    model = ResNet18Front().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    tq.fuse_modules(model, [["conv1", "bn1", "relu"]], inplace=True)
    for block in model.layer1:
        block.fuse()
    return quantize(model, (2, 3, size, size), seed, fuse=())


def test_resnet18_stem_and_layer1_on_the_accelerator_equals_pytorch():
    """The 7x7 stem runs decomposed (a 3x3 conv over 27 channels); every accelerator layer's
    output and the network's output equal PyTorch's."""
    size = 64
    model_q = resnet18_front(size)
    x = inputs(1, (1, 3, size, size), seed=31)[0]
    program = compile(model_q, x, cfg=AccelConfig())
    names = [p["name"] for p in program.layers]
    assert names == ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "layer1.1.conv2"]
    assert all(p["placement"] == "accelerator" for p in program.layers)
    start = time.perf_counter()
    got = program.run(x, backend="sim", record=True)
    seconds = time.perf_counter() - start
    expected, per_layer = conv_outputs(model_q, names, x)
    assert torch.equal(got, expected)
    for name in names:
        assert len(program.layer_outputs[name]) == len(per_layer[name]) == 1
        assert torch.equal(program.layer_outputs[name][0], per_layer[name][0]), name
    counters = program.counters
    assert [c["layer"] for c in counters] == names
    stem = counters[0]
    out = (size + 2 * 3 - 7) // 2 + 1
    assert stem["source"] == {"C": 3, "H": size, "W": size, "kernel": 7, "padding": 3}
    assert (stem["C"], stem["K"], stem["kernel"], stem["stride"], stem["padding"]) == (27, 64, 3, 2, 0)
    assert (stem["H"], stem["W"]) == (2 * (out - 1) + 3,) * 2
    assert stem["dram_write_bytes"] == 64 * out * out
    print(f"ResNet-18 stem + layer1 at {size}x{size} on the accelerator: {seconds:.1f} s, "
          f"{sum(c['cycles'] for c in counters)} cycles "
          f"(stem {stem['cycles']} cycles, {stem['dram_read_bytes']} DRAM bytes read)")

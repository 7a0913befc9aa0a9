"""Whole quantized networks (torch.ao eager mode, qnnpack) compiled with host.compiler.program:
the golden backend equals PyTorch's own output exactly; unsupported convs are refused."""

import pytest
import torch
import torch.ao.nn.quantized as nnq
import torch.ao.quantization as tq
import torch.nn as nn

from host.tools import dse
from host.tools.models import symmetric_qconfig
from host.compiler.program import compile, torch_layer_outputs
from host.golden.quant import QuantError
from host.compiler.torch_frontend import layer_table

torch.backends.quantized.engine = "qnnpack"


class SmallCNN(nn.Module):
    """3x32x32 -> conv 3->16 + ReLU (fused) -> conv 16->32 stride 2 -> activation ->
    conv 32->32, residual add of the stride-2 output, ReLU -> average pool -> FC 32->10."""

    def __init__(self, activation="relu6", kernel=3, groups=1):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.act2 = {"relu6": nn.ReLU6(), "hardswish": nn.Hardswish()}[activation]
        self.conv3 = nn.Conv2d(32, 32, kernel, padding=kernel // 2, groups=groups)
        self.add = nnq.FloatFunctional()
        self.relu3 = nn.ReLU()
        self.pool = nn.AvgPool2d(16)
        self.fc = nn.Linear(32, 10)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.relu1(self.conv1(self.quant(x)))
        s = self.act2(self.conv2(x))
        y = self.relu3(self.add.add(self.conv3(s), s))
        y = torch.flatten(self.pool(y), 1)
        return self.dequant(self.fc(y))


def quantize(model, shape, seed=0, qconfig=None, fuse=(("conv1", "relu1"),)):
    torch.manual_seed(seed)
    model.eval()
    if fuse:
        model = tq.fuse_modules(model, [list(f) for f in fuse])
    model.qconfig = qconfig or symmetric_qconfig()
    prepared = tq.prepare(model)
    with torch.no_grad():
        for _ in range(4):
            prepared(torch.randn(*shape))
    return tq.convert(prepared)


def small_cnn(activation="relu6", seed=0, **kwargs):
    torch.manual_seed(seed)
    return quantize(SmallCNN(activation, **kwargs), (2, 3, 32, 32), seed)


def inputs(count, shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g) * (0.5 + i) for i in range(count)]


def test_default_qconfig_weights_are_symmetric():
    assert symmetric_qconfig().weight().qscheme in (torch.per_tensor_symmetric,
                                                    torch.per_channel_symmetric)


@pytest.mark.parametrize("activation", ["relu6", "hardswish"])
def test_small_cnn_golden_equals_pytorch(activation):
    model_q = small_cnn(activation)
    example = torch.randn(1, 3, 32, 32)
    program = compile(model_q, example)
    placed = {p["name"]: p for p in program.layers}
    assert sorted(placed) == ["conv1", "conv2", "conv3", "fc"]          # fc: a 1x1 conv
    assert all(p["placement"] == "accelerator" for p in placed.values())
    if activation == "hardswish":
        assert placed["conv2"]["activation"].startswith("act2")       # folded into the table
    else:
        # PyTorch 2.13's quantized ReLU6 on qnnpack's channels_last output is not
        # elementwise (README, "Arithmetic"): it stays on the CPU, so results equal model_q's
        assert placed["conv2"]["activation"] is None
        assert placed["conv2"]["unfolded"].startswith("act2: PyTorch's ReLU6 is not elementwise")
    assert placed["conv1"]["activation"] is None and placed["conv3"]["activation"] is None
    for x in inputs(3, (1, 3, 32, 32)) + inputs(1, (2, 3, 32, 32), seed=5):
        got = program.run(x, backend="golden")
        assert torch.equal(got, model_q(x))
        assert program.counters == []


def test_unfolded_activation_runs_on_cpu_like_pytorch():
    """Without folding, ReLU6 runs as PyTorch's module on the accelerator's output, which
    has the memory format of qnnpack's conv: the result equals model_q's own, quirk included."""
    model_q = small_cnn("relu6", seed=3)
    program = compile(model_q, torch.randn(1, 3, 32, 32), fold_activations=False)
    assert all(p["activation"] is None for p in program.layers)
    for x in inputs(2, (1, 3, 32, 32), seed=7):
        assert torch.equal(program.run(x), model_q(x))


def test_shared_activation_is_not_folded_where_the_conv_output_has_other_users():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
            self.conv1 = nn.Conv2d(4, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 8, 1)
            self.act = nn.Hardswish()
            self.add = nnq.FloatFunctional()

        def forward(self, x):
            a = self.conv1(self.quant(x))
            b = self.act(self.conv2(self.act(a)))      # act used twice; conv1's output also added
            return self.dequant(self.add.add(b, a))

    model_q = quantize(Net(), (2, 4, 12, 12), fuse=())
    program = compile(model_q, torch.randn(1, 4, 12, 12))
    placed = {p["name"]: p for p in program.layers}
    assert placed["conv1"]["activation"] is None
    assert placed["conv2"]["activation"] is not None
    for x in inputs(2, (1, 4, 12, 12)):
        assert torch.equal(program.run(x), model_q(x))


def test_kernel_above_9x9_is_refused_naming_the_module():
    model_q = small_cnn(kernel=11)
    with pytest.raises(QuantError, match=r"'conv3'.*11x11.*at most 9x9"):
        compile(model_q, torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("kernel", [5, 7])
def test_large_kernel_runs_decomposed_on_the_accelerator(kernel):
    model_q = small_cnn(kernel=kernel, seed=kernel)
    program = compile(model_q, torch.randn(1, 3, 32, 32))
    placed = {p["name"]: p for p in program.layers}
    assert all(p["placement"] == "accelerator" for p in placed.values())
    pieces = (-(-kernel // 3)) ** 2
    assert placed["conv3"]["kernel"] == kernel
    assert placed["conv3"]["decomposed"] == {"pieces": pieces, "C": pieces * 32}
    assert placed["conv1"]["decomposed"] is None
    for x in inputs(2, (1, 3, 32, 32), seed=kernel):
        assert torch.equal(program.run(x), model_q(x))


def test_grouped_conv_runs_on_the_accelerator():
    """Grouped 3x3 (groups 4) and depthwise (groups 32) convs run on the accelerator and
    equal PyTorch."""
    for groups in (4, 32):
        model_q = small_cnn(groups=groups)
        program = compile(model_q, torch.randn(1, 3, 32, 32))
        placed = {p["name"]: p for p in program.layers}
        assert placed["conv3"]["placement"] == "accelerator" and placed["conv3"]["groups"] == groups
        for x in inputs(2, (1, 3, 32, 32), seed=groups):
            assert torch.equal(program.run(x), model_q(x))


def test_grouped_large_kernel_is_refused_naming_the_module():
    model_q = small_cnn(groups=4, kernel=5)
    with pytest.raises(QuantError, match=r"'conv3'.*grouped convolution \(groups=4\) with a 5x5 kernel"):
        compile(model_q, torch.randn(1, 3, 32, 32))


def test_asymmetric_weights_are_refused_naming_the_module():
    qconfig = tq.QConfig(activation=tq.MinMaxObserver.with_args(dtype=torch.quint8),
                         weight=tq.MinMaxObserver.with_args(dtype=torch.qint8,
                                                            qscheme=torch.per_tensor_affine))
    torch.manual_seed(0)
    model = SmallCNN()
    with torch.no_grad():
        model.conv1.weight.add_(0.3)         # all-positive weights: a non-zero weight zero point
    model_q = quantize(model, (2, 3, 32, 32), qconfig=qconfig)
    with pytest.raises(QuantError, match=r"'conv1'.*symmetric"):
        compile(model_q, torch.randn(1, 3, 32, 32))


def test_cpu_modules_keeps_a_conv_on_the_cpu_knowingly():
    model_q = small_cnn(kernel=7)
    program = compile(model_q, torch.randn(1, 3, 32, 32), cpu_modules={"conv3"})
    placed = {p["name"]: p for p in program.layers}
    assert placed["conv3"]["placement"] == "cpu"
    for x in inputs(2, (1, 3, 32, 32)):
        assert torch.equal(program.run(x), model_q(x))
    with pytest.raises(QuantError, match="nope"):
        compile(model_q, torch.randn(1, 3, 32, 32), cpu_modules={"nope"})


class BasicBlock(nn.Module):
    def __init__(self, c, k, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c, k, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(k)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(k, k, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(k)
        self.downsample = None
        if stride != 1 or c != k:
            self.downsample = nn.Sequential(nn.Conv2d(c, k, 1, stride=stride, bias=False), nn.BatchNorm2d(k))
        self.add = nnq.FloatFunctional()

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        skip = x if self.downsample is None else self.downsample(x)
        return self.add.add_relu(y, skip)

    def fuse(self):
        groups = [["conv1", "bn1", "relu1"], ["conv2", "bn2"]]
        if self.downsample is not None:
            groups.append(["downsample.0", "downsample.1"])
        tq.fuse_modules(self, groups, inplace=True)


class ResNetStem(nn.Module):
    """ResNet-18's 7x7 stem, max pool and two basic blocks (the second with stride 2)."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = BasicBlock(64, 64, 1)
        self.layer2 = BasicBlock(64, 128, 2)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.quant(x)))))
        return self.dequant(self.layer2(self.layer1(x)))


def resnet_stem(seed=0):
    torch.manual_seed(seed)
    model = ResNetStem().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):          # non-trivial folded batch norms
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    tq.fuse_modules(model, [["conv1", "bn1", "relu"]], inplace=True)
    model.layer1.fuse()
    model.layer2.fuse()
    return quantize(model, (2, 3, 64, 64), seed, fuse=())


def test_resnet_stem_blocks_with_the_7x7_stem_on_the_accelerator():
    model_q = resnet_stem()
    x = torch.randn(1, 3, 64, 64)
    program = compile(model_q, x)
    placed = {p["name"]: p for p in program.layers}
    assert set(p["placement"] for p in placed.values()) == {"accelerator"} and len(placed) == 6
    assert placed["conv1"]["decomposed"] == {"pieces": 9, "C": 27}
    for x in inputs(2, (1, 3, 64, 64), seed=11):
        got = program.run(x, record=True)
        expected, per_layer = torch_layer_outputs(model_q, program, x)
        assert torch.equal(got, expected)
        assert sorted(program.layer_outputs) == sorted(per_layer)
        for name, outs in per_layer.items():
            assert len(program.layer_outputs[name]) == len(outs) == 1
            assert torch.equal(program.layer_outputs[name][0], outs[0]), name
    # the stem on the CPU knowingly
    program = compile(model_q, x, cpu_modules={"conv1"})
    placed = {p["name"]: p["placement"] for p in program.layers}
    assert placed.pop("conv1") == "cpu"
    assert set(placed.values()) == {"accelerator"} and len(placed) == 5
    assert torch.equal(program.run(x), model_q(x))


def test_layer_table_matches_the_modules_and_feeds_dse():
    model_q = resnet_stem()
    rows = layer_table(model_q, torch.randn(1, 3, 64, 64))
    assert [r["name"] for r in rows] == ["conv1", "layer1.conv1", "layer1.conv2", "layer2.conv1",
                                         "layer2.conv2", "layer2.downsample.0"]
    shapes = {r["name"]: (r["C"], r["K"], r["H"], r["W"], r["kernel"], r["stride"], r["padding"])
              for r in rows}
    assert shapes["conv1"] == (3, 64, 64, 64, 7, 2, 3)
    assert shapes["layer1.conv1"] == (64, 64, 16, 16, 3, 1, 1)
    assert shapes["layer2.conv1"] == (64, 128, 16, 16, 3, 2, 1)
    assert shapes["layer2.downsample.0"] == (64, 128, 16, 16, 1, 2, 0)
    assert [r["supported"] for r in rows] == [False] + [True] * 5
    acc, cpu = dse.accelerator_layers(rows)
    assert [l["name"] for l in cpu] == ["conv1"] and len(acc) == 5
    # float models; without an example input, 224 x 224
    float_rows = layer_table(ResNetStem())
    assert [(r["name"], r["H"], r["supported"]) for r in float_rows][:3] == \
        [("conv1", 224, False), ("layer1.conv1", 56, True), ("layer1.conv2", 56, True)]
    grouped = layer_table(SmallCNN(groups=4), torch.randn(1, 3, 32, 32))
    assert [(r["name"], r["H"], r["groups"], r["supported"]) for r in grouped] == \
        [("conv1", 32, 1, True), ("conv2", 32, 1, True), ("conv3", 16, 4, True)]
    grouped_5x5 = layer_table(SmallCNN(groups=4, kernel=5), torch.randn(1, 3, 32, 32))
    assert not grouped_5x5[2]["supported"] and "grouped" in grouped_5x5[2]["reason"]


@pytest.mark.parametrize("activation", ["relu6", "hardswish"])
def test_fx_quantized_small_cnn_golden_equals_pytorch(activation):
    from torch.ao.quantization import QConfigMapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.manual_seed(2)
    model = SmallCNN(activation).eval()
    example = torch.randn(1, 3, 32, 32)
    prepared = prepare_fx(model, QConfigMapping().set_global(symmetric_qconfig()), (example,))
    with torch.no_grad():
        for _ in range(4):
            prepared(torch.randn(2, 3, 32, 32))
    model_q = convert_fx(prepared)
    program = compile(model_q, example)
    placed = {p["name"]: p for p in program.layers}
    assert sorted(placed) == ["conv1", "conv2", "conv3", "fc"]          # fc: a 1x1 conv
    assert all(p["placement"] == "accelerator" for p in placed.values())
    for x in inputs(3, (1, 3, 32, 32), seed=4):
        assert torch.equal(program.run(x), model_q(x))


class MLP(nn.Module):
    """Linear -> ReLU (fused into LinearReLU) -> Linear, on (..., 64) inputs."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.fc1 = nn.Linear(64, 300)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(300, 17)

    def forward(self, x):
        return self.dequant(self.fc2(self.relu(self.fc1(self.quant(x)))))


def per_channel_qconfig():
    return tq.QConfig(activation=symmetric_qconfig().activation,
                      weight=tq.PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                                   qscheme=torch.per_channel_symmetric))


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("mode", ["eager", "fx"])
def test_linear_runs_on_the_accelerator_as_a_1x1_conv(mode, per_channel):
    """Linear and LinearReLU run on the accelerator (a 1x1 conv over the rows of the input
    as the columns of one image): equal to PyTorch for batches and extra leading dims."""
    torch.manual_seed(7)
    qconfig = per_channel_qconfig() if per_channel else symmetric_qconfig()
    model = MLP().eval()
    if mode == "eager":
        model_q = quantize(model, (8, 64), seed=7, qconfig=qconfig, fuse=(("fc1", "relu"),))
    else:
        from torch.ao.quantization import QConfigMapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
        prepared = prepare_fx(model, QConfigMapping().set_global(qconfig), (torch.randn(2, 64),))
        with torch.no_grad():
            for _ in range(4):
                prepared(torch.randn(8, 64))
        model_q = convert_fx(prepared)
    program = compile(model_q, torch.randn(1, 64))
    placed = {p["name"]: p for p in program.layers}
    assert sorted(placed) == ["fc1", "fc2"]
    assert [placed[n]["type"] for n in ("fc1", "fc2")] == ["LinearReLU", "Linear"]
    assert all(p["placement"] == "accelerator" and p["kernel"] == 1 for p in placed.values())
    assert placed["fc1"]["macs"] == 64 * 300 and placed["fc2"]["macs"] == 300 * 17
    for shape in [(1, 64), (5, 64), (2, 3, 64)]:
        for x in inputs(2, shape, seed=len(shape)):
            got = program.run(x, record=True)
            assert torch.equal(got, model_q(x))
            assert program.layer_outputs["fc1"][0].shape == (*shape[:-1], 300)


def test_fc_the_accelerator_cannot_run_is_refused_by_name():
    torch.manual_seed(0)
    dynamic = tq.quantize_dynamic(nn.Sequential(nn.Linear(16, 8)), {nn.Linear}, dtype=torch.qint8)
    with pytest.raises(QuantError, match=r"'0'.*dynamically quantized"):
        compile(dynamic, torch.randn(2, 16))
    model = MLP().eval()
    model.fc2.qconfig = None                 # fc2 stays a float Linear between stubs
    model.qconfig = symmetric_qconfig()

    class Float(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.inner.dequant2 = tq.DeQuantStub()

        def forward(self, x):
            m = self.inner
            return m.fc2(m.dequant2(m.relu(m.fc1(m.quant(x)))))

    wrapped = Float(model).eval()
    wrapped.qconfig = symmetric_qconfig()
    wrapped.inner.fc2.qconfig = None
    prepared = tq.prepare(wrapped)
    with torch.no_grad():
        prepared(torch.randn(4, 64))
    model_q = tq.convert(prepared)
    with pytest.raises(QuantError, match=r"'inner.fc2' \(Linear\): not a torch.ao.nn.quantized"):
        compile(model_q, torch.randn(1, 64))
    program = compile(model_q, torch.randn(1, 64), cpu_modules={"inner.fc2"})
    x = torch.randn(3, 64)
    assert torch.equal(program.run(x), model_q(x))
    assert {p["name"]: p["placement"] for p in program.layers} == {"inner.fc1": "accelerator",
                                                                   "inner.fc2": "cpu"}

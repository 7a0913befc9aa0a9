"""Reference networks in ``torch.nn`` and the two ways users quantize them.

The architectures follow the published ones (torchvision's layouts): ResNet-18 and
ResNet-50 (v1.5: stride in the 3x3 conv), MobileNetV2 (inverted residuals, ReLU6), and
single blocks of GoogLeNet / Inception (1x1, 3x3, 5x5 and max-pool branches, concat),
ShuffleNetV2 (channel split, depthwise 3x3, shuffle), ResNeXt (grouped 3x3) and
Inception-v3 (1x7 / 7x1 and 1x3 / 3x1 factorized kernels), each between a small stem and
a classifier head. torchvision itself does not import beside the CPU build of torch, so
the networks are written here.

Every model is written once and quantizes both ways:

* :func:`quantize_eager`: ``QuantStub`` / ``DeQuantStub`` around the model, Conv-BN(-ReLU)
  fusion (``model.fuse()``), ``prepare``, calibration, ``convert``; skip additions and
  concatenations go through ``FloatFunctional``;
* :func:`quantize_fx`: ``prepare_fx`` / ``convert_fx`` on the float model.

Both use the qnnpack default qconfig (symmetric qint8 weights) and calibrate on random
inputs. Weights and batch norms are random (seeded), with non-trivial batch-norm
statistics, so the folded scales differ from layer to layer as in trained networks.
"""

import torch
import torch.ao.nn.quantized as nnq
import torch.ao.quantization as tq
import torch.nn as nn

__all__ = ["MODELS", "build", "quantized", "quantize_eager", "quantize_fx", "symmetric_qconfig",
           "resnet18", "resnet50", "mobilenet_v2", "inception_block", "shufflenet_block",
           "resnext_block", "inception_v3_block", "depthwise_modules"]


class _Merge(nn.Module):
    """Skip additions and concatenations: through ``FloatFunctional`` (eager mode
    quantization needs one module per call site) or plain torch ops (FX)."""

    def __init__(self):
        super().__init__()
        self.op = nnq.FloatFunctional()

    def add_relu(self, a, b):
        return self.op.add_relu(a, b)

    def add(self, a, b):
        return self.op.add(a, b)

    def cat(self, tensors, dim=1):
        return self.op.cat(tensors, dim)


def _conv_bn(c, k, kernel, stride=1, padding=None, groups=1, act="relu"):
    """Conv (no bias) + BatchNorm + optional ReLU / ReLU6, as a Sequential (fusable)."""
    if padding is None:
        padding = tuple(s // 2 for s in kernel) if isinstance(kernel, tuple) else kernel // 2
    layers = [nn.Conv2d(c, k, kernel, stride=stride, padding=padding, groups=groups, bias=False),
              nn.BatchNorm2d(k)]
    if act == "relu":
        layers.append(nn.ReLU())
    elif act == "relu6":
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c, width, stride):
        super().__init__()
        k = width * self.expansion
        self.conv1 = _conv_bn(c, width, 3, stride)
        self.conv2 = _conv_bn(width, k, 3, act=None)
        self.downsample = _conv_bn(c, k, 1, stride, act=None) if stride != 1 or c != k else None
        self.merge = _Merge()

    def forward(self, x):
        skip = x if self.downsample is None else self.downsample(x)
        return self.merge.add_relu(self.conv2(self.conv1(x)), skip)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c, width, stride, groups=1, base_width=64):
        super().__init__()
        mid = width * base_width // 64 * groups
        k = width * self.expansion
        self.conv1 = _conv_bn(c, mid, 1)
        self.conv2 = _conv_bn(mid, mid, 3, stride, groups=groups)
        self.conv3 = _conv_bn(mid, k, 1, act=None)
        self.downsample = _conv_bn(c, k, 1, stride, act=None) if stride != 1 or c != k else None
        self.merge = _Merge()

    def forward(self, x):
        skip = x if self.downsample is None else self.downsample(x)
        return self.merge.add_relu(self.conv3(self.conv2(self.conv1(x))), skip)


class _Classifier(nn.Module):
    """Global average pool, flatten, Linear."""

    def __init__(self, c, num_classes):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(x), 1))


class ResNet(nn.Module):
    """torchvision's ResNet (v1.5): 7x7 stem, max pool, four stages, classifier.
    ``width_mult`` scales every stage's width (1.0: the published network)."""

    def __init__(self, block, blocks, num_classes=1000, groups=1, base_width=64, width_mult=1.0):
        super().__init__()
        widths = [int(w * width_mult) for w in (64, 128, 256, 512)]
        c = widths[0]
        self.conv1 = _conv_bn(3, c, 7, 2, 3)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        for i, (width, n) in enumerate(zip(widths, blocks)):
            layer = []
            for b in range(n):
                stride = 2 if i > 0 and b == 0 else 1
                kwargs = {"groups": groups, "base_width": base_width} if block is Bottleneck else {}
                layer.append(block(c, width, stride, **kwargs))
                c = width * block.expansion
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.head = _Classifier(c, num_classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        return self.head(self.layer4(self.layer3(self.layer2(self.layer1(x)))))


class InvertedResidual(nn.Module):
    def __init__(self, c, k, stride, expand):
        super().__init__()
        hidden = c * expand
        layers = [] if expand == 1 else [_conv_bn(c, hidden, 1, act="relu6")]
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden, act="relu6"),
                   _conv_bn(hidden, k, 1, act=None)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c == k
        self.merge = _Merge() if self.residual else None

    def forward(self, x):
        return self.merge.add(x, self.conv(x)) if self.residual else self.conv(x)


def _divisible(v, divisor=8):
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2: 3x3 stem, 17 inverted residuals, 1x1 to 1280, classifier."""

    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        c = _divisible(32 * width_mult)
        last = _divisible(1280 * max(1.0, width_mult))
        features = [_conv_bn(3, c, 3, 2, act="relu6")]
        for t, k, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
            k = _divisible(k * width_mult)
            for i in range(n):
                features.append(InvertedResidual(c, k, s if i == 0 else 1, t))
                c = k
        features.append(_conv_bn(c, last, 1, act="relu6"))
        self.features = nn.Sequential(*features)
        self.head = _Classifier(last, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


class _Stem(nn.Module):
    """A small stem for single-block models: 3x3 stride 2 conv, 3x3 stride 2 max pool."""

    def __init__(self, k):
        super().__init__()
        self.conv = _conv_bn(3, k, 3, 2)
        self.pool = nn.MaxPool2d(3, 2, 1)

    def forward(self, x):
        return self.pool(self.conv(x))


class _BlockNet(nn.Module):
    """Stem, one block, classifier."""

    def __init__(self, c, block, k, num_classes):
        super().__init__()
        self.stem = _Stem(c)
        self.block = block
        self.head = _Classifier(k, num_classes)

    def forward(self, x):
        return self.head(self.block(self.stem(x)))


class InceptionBlock(nn.Module):
    """GoogLeNet-style: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1; concat."""

    def __init__(self, c, b1=32, b3=(24, 48), b5=(8, 16), bp=16):
        super().__init__()
        self.branch1 = _conv_bn(c, b1, 1)
        self.branch3 = nn.Sequential(_conv_bn(c, b3[0], 1), _conv_bn(b3[0], b3[1], 3))
        self.branch5 = nn.Sequential(_conv_bn(c, b5[0], 1), _conv_bn(b5[0], b5[1], 5))
        self.pool = nn.MaxPool2d(3, 1, 1)
        self.branch_pool = _conv_bn(c, bp, 1)
        self.merge = _Merge()
        self.out_channels = b1 + b3[1] + b5[1] + bp

    def forward(self, x):
        return self.merge.cat([self.branch1(x), self.branch3(x), self.branch5(x),
                               self.branch_pool(self.pool(x))], 1)


class ShuffleBlock(nn.Module):
    """ShuffleNetV2 units: a stride-2 unit (both branches) then a stride-1 unit (channel
    split, branch on one half, concat, channel shuffle)."""

    def __init__(self, c, k):
        super().__init__()
        half = k // 2
        self.down_left = nn.Sequential(_conv_bn(c, c, 3, 2, groups=c, act=None), _conv_bn(c, half, 1))
        self.down_right = nn.Sequential(_conv_bn(c, half, 1), _conv_bn(half, half, 3, 2, groups=half, act=None),
                                        _conv_bn(half, half, 1))
        self.unit = nn.Sequential(_conv_bn(half, half, 1), _conv_bn(half, half, 3, 1, groups=half, act=None),
                                  _conv_bn(half, half, 1))
        self.merge_down = _Merge()
        self.merge_unit = _Merge()

    @staticmethod
    def shuffle(x, groups=2):
        n, c, h, w = x.shape
        return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)

    def forward(self, x):
        x = self.shuffle(self.merge_down.cat([self.down_left(x), self.down_right(x)], 1))
        a, b = x.chunk(2, dim=1)
        return self.shuffle(self.merge_unit.cat([a, self.unit(b)], 1))


class InceptionV3Block(nn.Module):
    """Inception-v3's InceptionC (1x7 / 7x1 factorized 7x7 branches) followed by the
    1x3 / 3x1 split branches of InceptionE; average-pool branches; concat."""

    def __init__(self, c, mid=16, out=24):
        super().__init__()
        self.c_1x1 = _conv_bn(c, out, 1)
        self.c_7 = nn.Sequential(_conv_bn(c, mid, 1), _conv_bn(mid, mid, (1, 7)), _conv_bn(mid, out, (7, 1)))
        self.c_7dbl = nn.Sequential(_conv_bn(c, mid, 1), _conv_bn(mid, mid, (7, 1)), _conv_bn(mid, mid, (1, 7)),
                                    _conv_bn(mid, mid, (7, 1)), _conv_bn(mid, out, (1, 7)))
        self.c_pool = nn.AvgPool2d(3, 1, 1)
        self.c_pool_conv = _conv_bn(c, out, 1)
        c2 = 4 * out
        self.e_3 = _conv_bn(c2, mid, 1)
        self.e_3a = _conv_bn(mid, out, (1, 3))
        self.e_3b = _conv_bn(mid, out, (3, 1))
        self.merge_c = _Merge()
        self.merge_e = _Merge()
        self.out_channels = 2 * out

    def forward(self, x):
        y = self.merge_c.cat([self.c_1x1(x), self.c_7(x), self.c_7dbl(x),
                              self.c_pool_conv(self.c_pool(x))], 1)
        z = self.e_3(y)
        return self.merge_e.cat([self.e_3a(z), self.e_3b(z)], 1)


def resnet18(num_classes=1000, width_mult=1.0):
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, width_mult=width_mult)


def resnet50(num_classes=1000, width_mult=1.0):
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, width_mult=width_mult)


def mobilenet_v2(num_classes=1000, width_mult=1.0):
    return MobileNetV2(num_classes, width_mult)


def inception_block(num_classes=1000):
    block = InceptionBlock(32)
    return _BlockNet(32, block, block.out_channels, num_classes)


def shufflenet_block(num_classes=1000):
    return _BlockNet(24, ShuffleBlock(24, 48), 48, num_classes)


def resnext_block(num_classes=1000):
    """A ResNeXt-50 32x4d bottleneck (grouped 3x3, 32 groups of 4) with a downsample."""
    return _BlockNet(64, Bottleneck(64, 64, 1, groups=32, base_width=4), 256, num_classes)


def inception_v3_block(num_classes=1000):
    block = InceptionV3Block(32)
    return _BlockNet(32, block, block.out_channels, num_classes)


MODELS = {"resnet18": resnet18, "resnet50": resnet50, "mobilenet_v2": mobilenet_v2,
          "inception_block": inception_block, "shufflenet_block": shufflenet_block,
          "resnext_block": resnext_block, "inception_v3_block": inception_v3_block}


def build(name, seed=0, **kwargs):
    """A float model of ``MODELS[name]`` in eval mode with seeded random weights and
    non-trivial batch-norm statistics."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    torch.manual_seed(seed)
    model = MODELS[name](**kwargs).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model


def depthwise_modules(model):
    """Names of the grouped convs (groups > 1) of a float or quantized model."""
    from torch.ao.nn.quantized.modules.conv import _ConvNd as QuantizedConvNd
    return {name for name, m in model.named_modules()
            if isinstance(m, (nn.modules.conv._ConvNd, QuantizedConvNd)) and m.groups > 1}


def symmetric_qconfig():
    """qnnpack's default qconfig if its weight observer is symmetric, else one that is."""
    qconfig = tq.get_default_qconfig("qnnpack")
    if qconfig.weight().qscheme in (torch.per_tensor_symmetric, torch.per_channel_symmetric):
        return qconfig
    return tq.QConfig(activation=qconfig.activation,
                      weight=tq.MinMaxObserver.with_args(dtype=torch.qint8,
                                                         qscheme=torch.per_tensor_symmetric))


def _fuse_groups(model):
    """Conv-BN(-ReLU) groups of every ``_conv_bn`` Sequential (ReLU6 does not fuse)."""
    groups = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Sequential) and len(m) >= 2 and isinstance(m[0], nn.Conv2d) \
                and isinstance(m[1], nn.BatchNorm2d):
            group = [f"{name}.0", f"{name}.1"]
            if len(m) == 3 and type(m[2]) is nn.ReLU:
                group.append(f"{name}.2")
            groups.append(group)
    return groups


class _Quantizable(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.quant = tq.QuantStub()
        self.model = model
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.model(self.quant(x)))


def _calibrate(prepared, calibration):
    with torch.no_grad():
        for x in calibration:
            prepared(x)


def quantize_eager(model, calibration, qconfig=None):
    """Eager-mode post-training quantization (engine qnnpack): stubs, fusion, prepare,
    calibration on the tensors of ``calibration``, convert. Returns the quantized model."""
    torch.backends.quantized.engine = "qnnpack"
    wrapped = _Quantizable(model).eval()
    groups = [[f"model.{n}" for n in g] for g in _fuse_groups(model)]
    if groups:
        tq.fuse_modules(wrapped, groups, inplace=True)
    wrapped.qconfig = qconfig or symmetric_qconfig()
    prepared = tq.prepare(wrapped)
    _calibrate(prepared, calibration)
    return tq.convert(prepared)


def quantize_fx(model, calibration, qconfig=None):
    """FX-mode post-training quantization (engine qnnpack): ``prepare_fx`` with the
    qnnpack qconfig, calibration, ``convert_fx``. Returns the quantized GraphModule."""
    from torch.ao.quantization import QConfigMapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = "qnnpack"
    calibration = list(calibration)
    mapping = QConfigMapping().set_global(qconfig or symmetric_qconfig())
    prepared = prepare_fx(model.eval(), mapping, (calibration[0],))
    _calibrate(prepared, calibration)
    return convert_fx(prepared)


def quantized(name, mode="eager", seed=0, size=224, **kwargs):
    """``(model_q, x)``: :func:`build` ``name`` (``kwargs`` to its constructor), quantize it
    (``mode`` "eager" or "fx") calibrated on two seeded random batches of 2 x 3 x size x
    size, and a seeded random 1 x 3 x size x size input."""
    if mode not in ("eager", "fx"):
        raise ValueError(f"mode must be 'eager' or 'fx', got {mode!r}")
    model = build(name, seed=seed, **kwargs)
    g = torch.Generator().manual_seed(seed)
    calibration = [torch.randn(2, 3, size, size, generator=g) for _ in range(2)]
    quantize = quantize_eager if mode == "eager" else quantize_fx
    return quantize(model, calibration), torch.randn(1, 3, size, size, generator=g)

"""Convolution layer tables of reference networks, from the published architectures
(ResNet: He et al. 2016, torchvision's v1.5 placement of the stride in the 3x3 conv;
MobileNetV2: Sandler et al. 2018), at 224 x 224 input.

Each layer is a dict ``{name, C, K, H, W, kernel, stride, padding, groups, residual}``
(input C x H x W; ``residual``: the block's residual addition follows it, and the
compiler fuses it into the layer). FC layers appear as 1x1 convolutions on a 1x1 image.
A pooling layer is ``{name, pool, C, H, W, kernel, stride, padding}`` (``pool``: "MAX",
"AVG" or "GLOBAL", run on the pooling engine).
"""

__all__ = ["NETWORKS", "network", "resnet18", "resnet50", "mobilenet_v2"]


def _conv(layers, name, c, k, h, kernel, stride, padding, groups=1, residual=False):
    layers.append({"name": name, "C": c, "K": k, "H": h, "W": h, "kernel": kernel,
                   "stride": stride, "padding": padding, "groups": groups, "residual": residual})
    return (h + 2 * padding - kernel) // stride + 1


def _pool(layers, name, pool, c, h, kernel=0, stride=1, padding=0):
    layers.append({"name": name, "pool": pool, "C": c, "H": h, "W": h, "kernel": kernel,
                   "stride": stride, "padding": padding})
    return 1 if pool == "GLOBAL" else (h + 2 * padding - kernel) // stride + 1


def resnet18():
    layers = []
    h = _conv(layers, "conv1", 3, 64, 224, 7, 2, 3)
    h = _pool(layers, "maxpool", "MAX", 64, h, 3, 2, 1)
    c = 64
    for stage, (k, blocks, stride) in enumerate([(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)], 1):
        for b in range(blocks):
            s = stride if b == 0 else 1
            pre = f"layer{stage}.{b}"
            h_out = _conv(layers, f"{pre}.conv1", c, k, h, 3, s, 1)
            _conv(layers, f"{pre}.conv2", k, k, h_out, 3, 1, 1, residual=True)
            if s != 1 or c != k:
                _conv(layers, f"{pre}.downsample", c, k, h, 1, s, 0)
            c, h = k, h_out
    _pool(layers, "avgpool", "GLOBAL", c, h)
    _conv(layers, "fc", 512, 1000, 1, 1, 1, 0)
    return layers


def resnet50():
    layers = []
    h = _conv(layers, "conv1", 3, 64, 224, 7, 2, 3)
    h = _pool(layers, "maxpool", "MAX", 64, h, 3, 2, 1)
    c = 64
    for stage, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 1):
        k = width * 4
        for b in range(blocks):
            s = stride if b == 0 else 1
            pre = f"layer{stage}.{b}"
            _conv(layers, f"{pre}.conv1", c, width, h, 1, 1, 0)
            h_out = _conv(layers, f"{pre}.conv2", width, width, h, 3, s, 1)
            _conv(layers, f"{pre}.conv3", width, k, h_out, 1, 1, 0, residual=True)
            if b == 0:
                _conv(layers, f"{pre}.downsample", c, k, h, 1, s, 0)
            c, h = k, h_out
    _pool(layers, "avgpool", "GLOBAL", c, h)
    _conv(layers, "fc", 2048, 1000, 1, 1, 1, 0)
    return layers


def mobilenet_v2():
    layers = []
    h = _conv(layers, "features.0", 3, 32, 224, 3, 2, 1)
    c = 32
    idx = 1
    for t, k, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c * t
            pre = f"features.{idx}"
            if t != 1:
                _conv(layers, f"{pre}.expand", c, hidden, h, 1, 1, 0)
            h_out = _conv(layers, f"{pre}.depthwise", hidden, hidden, h, 3, stride, 1, groups=hidden)
            _conv(layers, f"{pre}.project", hidden, k, h_out, 1, 1, 0, residual=stride == 1 and c == k)
            c, h = k, h_out
            idx += 1
    _conv(layers, "features.18", c, 1280, h, 1, 1, 0)
    _pool(layers, "pool", "GLOBAL", 1280, h)
    _conv(layers, "classifier", 1280, 1000, 1, 1, 1, 0)
    return layers


NETWORKS = {"resnet18": resnet18, "resnet50": resnet50, "mobilenet_v2": mobilenet_v2}


def network(name):
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose one of {sorted(NETWORKS)}")
    return NETWORKS[name]()

"""Random layers through the RTL (``host.tools.fuzz``, fixed seed): PyTorch-quantized convs with
random shapes, quantization, activations and explicit tiles, bit-exact against both the
golden model and PyTorch. ``make fuzz N=500`` runs more."""

from host.tools.fuzz import fuzz

SEED = 2026


def test_twenty_random_layers():
    report = fuzz(20, seed=SEED, batch=10)
    assert report.cases == 20
    assert report.ok, report.summary()

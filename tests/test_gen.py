import json

import pytest

import gen
from gen.__main__ import main
from gen.lint import lint
from hw.config import AccelConfig


def test_generate_default_config(tmp_path):
    manifest = gen.generate(AccelConfig(), tmp_path)
    assert set(manifest["modules"]) == set(gen.BLOCKS)
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["config"] == AccelConfig().to_dict()
    for name, module in on_disk["modules"].items():
        text = (tmp_path / module["file"]).read_text()
        assert f"module {name}(" in text
        for port in module["ports"]:
            assert port["name"] in text
        ok, messages = lint(tmp_path / module["file"], top=name)
        assert ok, messages


def test_array_ports_follow_config(tmp_path):
    manifest = gen.generate(AccelConfig(kp=2, yp=5), tmp_path, ["dpe_array"])
    widths = {p["name"]: p["width"] for p in manifest["modules"]["dpe_array"]["ports"]}
    assert widths["weights__payload"] == 2 * 9 * 8
    assert widths["sums__payload"] == 2 * 5 * 20 + 1
    assert manifest["modules"]["dpe_array"]["latency"] == 4


def test_generation_is_reproducible(tmp_path):
    gen.generate(AccelConfig(), tmp_path / "a", ["requant"])
    gen.generate(AccelConfig(), tmp_path / "b", ["requant"])
    assert (tmp_path / "a/requant.v").read_text() == (tmp_path / "b/requant.v").read_text()


def test_unknown_block(tmp_path):
    with pytest.raises(ValueError, match="unknown block 'nope'"):
        gen.generate(AccelConfig(), tmp_path, ["nope"])


def test_cli_rejects_bad_parameter(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--kp", "0", "--out", str(tmp_path)])
    assert "kp must be in [1, 64], got 0" in capsys.readouterr().err


def test_cli_writes_block(tmp_path):
    main(["--kp", "4", "--yp", "2", "--block", "dpe_array", "--out", str(tmp_path)])
    assert (tmp_path / "dpe_array.v").exists()
    assert json.loads((tmp_path / "manifest.json").read_text())["config"]["kp"] == 4

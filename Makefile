# dpegen: `make verilog` and `make test` set everything up on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
KP     ?= 3
YP     ?= 4
JOBS   ?= 2
OUT    ?= build/verilog
REPORT ?= build/report
BOARD_OUT ?= build/zcu104
CLOCK_MHZ ?= 200
MODEL  ?= resnet50
N      ?= 100
SEED   ?= 1
# more configuration options for `make report`, `make network` and `make fuzz`, e.g. CONFIG="--dsp-packing 1"
CONFIG ?=

# one stamp per extra of pyproject.toml: each target installs what it needs
STAMP = $(VENV)/.installed-$(1)

$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$*]'
	touch $@

setup: $(call STAMP,test)

verilog: $(call STAMP,gen)
	$(PY) -m gen --kp $(KP) --yp $(YP) --out $(OUT)

lint: verilog $(call STAMP,sim)
	$(PY) -m gen.lint $(OUT)

report: $(call STAMP,report)
	$(PY) -m gen.report --kp $(KP) --yp $(YP) --out $(REPORT) $(CONFIG)

sim: $(call STAMP,sim)
	$(PY) -m host.runtime.sim --kp $(KP) --yp $(YP) $(if $(filter 1,$(WAVES)),--waves)

bench: $(call STAMP,sim)
	$(PY) -m bench.layers --kp $(KP) --yp $(YP)
	$(PY) -m bench.dma_bench
	$(PY) -m bench.rtlsim_speed --kp $(KP) --yp $(YP)
	$(PY) -m bench.model_validation

network: $(call STAMP,test)
ifneq ($(filter %.onnx,$(MODEL)),)
	$(PY) -m bench.onnx_networks --onnx $(MODEL) --backend rtl --kp $(KP) --yp $(YP)
else
	$(PY) -m bench.network --model $(MODEL) --kp $(KP) --yp $(YP) $(CONFIG)
endif

# the reference networks through the ONNX path at 224 x 224 (both formats, both activation
# types), checked against ONNX Runtime on the golden backend
onnx-networks: $(call STAMP,test)
	$(PY) -m bench.onnx_networks --json build/onnx_networks.json

dse: $(call STAMP,report)
	$(PY) -m host.tools.dse --model $(MODEL) --device zu7ev --out build/dse

bitstream: $(call STAMP,gen)
	$(PY) -m boards.zcu104 --kp $(KP) --yp $(YP) --clock-mhz $(CLOCK_MHZ) --jobs $(JOBS) --out $(BOARD_OUT)

bitstream-plan: $(call STAMP,gen)
	$(PY) -m boards.zcu104 --kp $(KP) --yp $(YP) --clock-mhz $(CLOCK_MHZ) --plan-only --out $(BOARD_OUT)

test: $(call STAMP,test)
	$(PY) -m pytest -n $(JOBS) --dist worksteal -q

fuzz: $(call STAMP,test)
	$(PY) -m host.tools.fuzz -n $(N) --seed $(SEED) --jobs $(JOBS) --kp $(KP) --yp $(YP) $(CONFIG)

clean:
	rm -rf build sim_build .pytest_cache

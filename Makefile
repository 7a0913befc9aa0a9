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

BASE_STAMP := $(VENV)/.installed-base
TEST_STAMP := $(VENV)/.installed-test

.PHONY: verilog test lint clean setup report sim bench dse bitstream bitstream-plan fuzz network

$(BASE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(TEST_STAMP): $(BASE_STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(TEST_STAMP)

verilog: $(BASE_STAMP)
	$(PY) -m gen --kp $(KP) --yp $(YP) --out $(OUT)

lint: verilog
	$(PY) -m gen.lint $(OUT)

report: $(BASE_STAMP)
	$(PY) -m gen.report --kp $(KP) --yp $(YP) --out $(REPORT)

sim: $(BASE_STAMP)
	$(PY) -m host.sim --kp $(KP) --yp $(YP) $(if $(filter 1,$(WAVES)),--waves)

bench: $(BASE_STAMP)
	$(PY) -m bench.layers --kp $(KP) --yp $(YP)
	$(PY) -m bench.dma_bench
	$(PY) -m bench.rtlsim_speed --kp $(KP) --yp $(YP)

network: $(TEST_STAMP)
	$(PY) -m bench.network --model $(MODEL) --kp $(KP) --yp $(YP)

dse: $(BASE_STAMP)
	$(PY) -m host.dse --model $(MODEL) --device zu7ev --out build/dse

bitstream: $(BASE_STAMP)
	$(PY) -m boards.zcu104 --kp $(KP) --yp $(YP) --clock-mhz $(CLOCK_MHZ) --jobs $(JOBS) --out $(BOARD_OUT)

bitstream-plan: $(BASE_STAMP)
	$(PY) -m boards.zcu104 --kp $(KP) --yp $(YP) --clock-mhz $(CLOCK_MHZ) --plan-only --out $(BOARD_OUT)

test: $(TEST_STAMP)
	$(PY) -m pytest -n $(JOBS) --dist worksteal -q

fuzz: $(TEST_STAMP)
	$(PY) -m host.fuzz -n $(N) --seed $(SEED) --jobs $(JOBS)

clean:
	rm -rf build sim_build .pytest_cache

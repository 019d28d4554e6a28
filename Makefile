# Two commands do all set-up on a fresh machine:
#   make demo   create .venv, install rnnkit and run the main job
#   make test   create .venv, install rnnkit and run the test suite (what CI runs)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt

$(BIN)/activate: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) -e ".[all]"
	touch $(BIN)/activate

install: $(BIN)/activate

demo: install
	$(BIN)/rnnkit demo

# Slow tests that guard promises CI must keep: exact resume after SIGKILL, DDP == one process,
# the native kernels == the reference loop, every cell learns a memory task, translation of
# held-out numbers, the window detector finds MIT-BIH's abnormal beat, and the main job itself. The rest (auto-ARIMA baselines, the gradient-flow
# example, the sentiment run): make test-slow.
CI_SLOW := tests/train/test_train_resume.py tests/train/test_train_ddp.py tests/test_native.py \
	tests/text/test_cli_text.py tests/test_cells_learning.py tests/text/test_seq2seq.py \
	tests/text/test_seq2seq_numbers.py tests/anomaly/test_anomaly_window.py

test: install
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/pytest -q -m "not slow"
	$(BIN)/pytest -q -m slow $(CI_SLOW)

test-slow: install
	$(BIN)/pytest -q -m slow

bench: install
	$(BIN)/python benchmarks/speed.py

.PHONY: install demo test test-slow bench

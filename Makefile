# make demo / make test create .venv when missing and reuse it while pyproject.toml is
# unchanged (a stamp keyed on its hash).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-$(shell sha256sum pyproject.toml | cut -c1-16)
TORCH := torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0

.PHONY: venv demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[all,dev]' $(TORCH)
	rm -f $(VENV)/.stamp-*
	touch $@

venv: $(STAMP)

demo: venv
	$(BIN)/polymodal demo nlp.sentiment --out runs/demo

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/predict_overhead.py

clean:
	rm -rf $(VENV) runs build *.egg-info

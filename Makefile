# make demo / make test create .venv when missing and reuse it while pyproject.toml is
# unchanged (a stamp keyed on its hash).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-$(shell sha256sum pyproject.toml | cut -c1-16)
TORCH := torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0

# Debian packages the tests drive: headless Chromium for the playground test.
DEBIAN_TEST_PACKAGES := chromium chromium-driver

.PHONY: venv demo test lint bench clean debian-test-packages

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

debian-test-packages:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    $(DEBIAN_TEST_PACKAGES); }

test: venv debian-test-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/predict_overhead.py
	$(BIN)/python benchmarks/serve_load.py

clean:
	rm -rf $(VENV) runs build *.egg-info

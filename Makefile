# imgpipe: `make run` starts the dashboard on the local backend, `make test` runs every test.
# Both install what is missing first (uv, the locked Python dependencies, ImageMagick, tmux).

UV := ./scripts/uv
export UV_PYTHON_DOWNLOADS ?= never

.PHONY: run test lint bench setup deps clean

run: setup
	$(UV) run imgtui

test: setup lint
	$(UV) run pytest

lint: setup
	$(UV) run ruff check .
	$(UV) run lint-imports
	$(UV) run mypy

bench: setup
	$(UV) run python -m bench

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on this machine),
# every process start would otherwise recompile boto3, botocore, rich and textual (0.3 s each).
setup: deps
	$(UV) sync --locked --quiet --compile-bytecode

deps:
	./scripts/ensure-deps

clean:
	rm -rf .venv .pytest_cache .ruff_cache .mypy_cache .hypothesis

# The few commands of the project. See README.md.
.PHONY: up test lint bench bench-quick setup

setup:
	scripts/setup

up:
	scripts/up

test:
	scripts/test

lint:
	scripts/setup
	.venv/bin/ruff check squall tests bench
	.venv/bin/ruff format --check squall tests bench
	.venv/bin/mypy

bench:
	scripts/bench

bench-quick:
	scripts/bench --quick

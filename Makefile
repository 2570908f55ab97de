# Every target bootstraps .venv from requirements/lock.txt first (only when missing or stale).
PY := .venv/bin/python

.PHONY: venv quickstart test lint format bench lock

venv:
	@bash scripts/bootstrap.sh

## The main job: the quick-start experiment on the shipped sample photos (CPU, a few minutes):
## the released reference model fine-tuned on them (from scratch: quickstart.yaml alone).
## QUICKSTART_ARGS: more `pconv fit` arguments (the README test shortens the run with them).
quickstart: venv
	$(PY) -m pconv_lightning fit --config experiments/configs/quickstart.yaml \
		--config experiments/configs/quickstart_finetune.yaml $(QUICKSTART_ARGS)

## Run the whole test suite (what CI runs).
test: venv
	$(PY) -m pytest

## Lint and format check.
lint: venv
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format: venv
	.venv/bin/ruff check --fix . && .venv/bin/ruff format .

## Benchmarks print tables; see benchmarks/README.md.
bench: venv
	$(PY) benchmarks/layer.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/masks.py
	$(PY) benchmarks/data.py
	$(PY) benchmarks/inference.py
	$(PY) benchmarks/cli_help.py

## Re-resolve exact pins from requirements/lock.in (needs uv, which the venv has).
lock: venv
	.venv/bin/uv pip compile requirements/lock.in -o requirements/lock.txt --python-version 3.11

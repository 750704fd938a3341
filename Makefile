# The two commands the README opens with: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lab-up lab-down bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m katafleet_lab demo

test: setup
	$(VENV)/bin/pytest -q

lab-up: setup
	$(PY) -m katafleet_lab up

lab-down:
	$(PY) -m katafleet_lab down

bench: setup
	$(PY) bench/bench_kata_config.py
	$(PY) bench/bench_verify.py

clean: lab-down
	rm -rf .ansible

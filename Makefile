# The two commands the README opens with: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test pytest lint sanity lab-up lab-down bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m katafleet_lab demo

# the whole suite: pytest (unit, modules, lab, collection), then ansible-lint, ansible-test sanity, changelog lint
test: pytest lint sanity

pytest: setup
	$(VENV)/bin/pytest -q

lint: setup
	@bash .ci/lint.sh
	$(VENV)/bin/antsibull-changelog lint

sanity: setup
	@bash .ci/sanity.sh

lab-up: setup
	$(PY) -m katafleet_lab up

lab-down:
	$(PY) -m katafleet_lab down

bench: setup
	$(PY) bench/bench_kata_config.py
	$(PY) bench/bench_verify.py

clean: lab-down
	rm -rf .ansible

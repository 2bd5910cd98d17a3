# wtstack.fleet: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLEET ?= tests/lab/fleets/default.yml
LAB := $(BIN)/python tests/lab/lab.py
INVENTORY := .lab/inventory.yml
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help venv demo test unit integration e2e lab-up lab-down lab-status plan bench clean

help:
	@echo "make demo        boot the lab fleet (lb1, app1, app2) and run site.yml on it"
	@echo "make test        every test CI runs: unit, rendering, end-to-end on the lab"
	@echo "make lab-down    stop and remove the lab containers"
	@echo "make plan        render what site.yml would write for inventory.example into .cache/plan"
	@echo "make bench       routing benchmark (~8 min): rewrites docs/benchmarks.md and docs/benchmarks.png"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

demo: venv
	$(LAB) up --fleet $(FLEET)
	$(BIN)/ansible-playbook -i $(INVENTORY) site.yml
	@echo
	@echo "The fleet is up: open http://127.0.10.1/"
	@echo "Tear it down with: make lab-down"

test: unit integration e2e

unit: venv
	$(BIN)/pytest tests/unit

integration: venv
	$(BIN)/pytest -s tests/integration

e2e: venv
	$(BIN)/pytest -s tests/e2e

lab-up: venv
	$(LAB) up --fleet $(FLEET)

lab-down: venv
	$(LAB) down

lab-status: venv
	$(LAB) status

plan: venv
	rm -rf .cache/plan
	$(BIN)/ansible-playbook -i inventory.example playbooks/plan.yml -e plan_dir=$(CURDIR)/.cache/plan
	@find .cache/plan -type f | sort

bench: venv
	$(BIN)/python bench/run.py

clean:
	rm -rf .cache tests/output

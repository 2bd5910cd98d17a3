# wtstack.fleet: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLEET ?= tests/lab/fleets/default.yml
LAB := $(BIN)/python tests/lab/lab.py
INVENTORY := .lab/inventory.yml
# The checkout's ansible.cfg (Ansible's defaults, host keys checked) for what runs against inventories
# of your own (make plan); the lab's own settings for the lab (tests/lab/ansible.cfg).
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
LAB_CONFIG := $(CURDIR)/tests/lab/ansible.cfg

# Debian packages, installed (as root) by the targets that need them when one is missing; a dpkg-query
# when all are there. The lab: systemd-container, debootstrap, openssh-client (ssh, ssh-keygen), and
# iproute2 and nftables for a private lab network; python3-venv: the virtualenvs. The tests, on top:
# haproxy (`haproxy -c` on rendered configs, the runtime API tests), chromium and chromium-driver (the
# browser test), wrk (the benchmark's smoke run), pebble (the ACME test's CA and DNS server), openssl
# (the password hash's test), curl, make, ca-certificates.
DEMO_PACKAGES := python3-venv systemd-container debootstrap openssh-client ca-certificates
TEST_PACKAGES := $(DEMO_PACKAGES) iproute2 nftables haproxy chromium chromium-driver wrk pebble openssl curl make

.PHONY: help venv links demo test compat lint collection sanity unit integration tooling e2e lab-up lab-down lab-status \
        plan docs bench clean demo-packages test-packages

help:
	@echo "make demo        boot the lab fleet (lb1, app1, app2) and run site.yml on it"
	@echo "make test        every test CI runs: unit, rendering, end-to-end on the lab (installs what they need)"
	@echo "make lab-down    stop and remove the lab containers"
	@echo "make plan        render what site.yml would write for inventory.example into .cache/plan"
	@echo "make unit        the collection's unit tests: no service started, no lab (tests/unit)"
	@echo "make integration the collection against a local HAProxy and ansible-playbook (tests/integration)"
	@echo "make tooling     tests of the dev tooling: the benchmarks (a short run of HAProxy and wrk) and the lab helpers"
	@echo "make compat      unit and rendering tests on the oldest supported ansible-core (2.17)"
	@echo "make lint        ansible-lint (production), changelog lint and a trial release, ruff, the roles' variable tables"
	@echo "make docs        write the roles' README variable tables from their meta/argument_specs.yml"
	@echo "make sanity      ansible-test sanity on a copy of the checkout (SANITY_FROM=clone: a git clone), units on the built collection"
	@echo "make bench       benchmarks (~35 min, root for the lab parts): rewrites docs/benchmarks*.md and their plots"

venv: $(VENV)/.installed links

# The checkout as the collection wtstack.fleet without installing it: collections/ (adjacent to
# site.yml; tests/lab/ansible.cfg's collections_path, sys.path of tests/conftest.py and bench/) and
# playbooks/collections (adjacent to playbooks/*.yml). Made at run time, as tests/conftest.py makes
# them too, and ignored by git: a tracked link to a directory fails ansible-test's sanity in a git
# checkout, and the checkout's ansible.cfg naming one as collections_path made
# `ansible-galaxy collection install .` find the collection installed already.
links:
	@mkdir -p collections/ansible_collections/wtstack
	@ln -sfn ../../.. collections/ansible_collections/wtstack/fleet
	@ln -sfn ../collections playbooks/collections

$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

# Installs the Debian packages of $(1) that are missing: apt-get as root, else a message naming them.
define apt_install
	@command -v dpkg-query >/dev/null || { echo "make installs what it needs with apt on Debian 12 or 13;" \
	  "on this system install: $(strip $(1))" >&2; exit 1; }; \
	installed=" $$(dpkg-query -W -f='$${db:Status-Abbrev} $${Package}\n' $(1) 2>/dev/null \
	  | awk '$$1 == "ii" {print $$2}' | tr '\n' ' ')"; \
	missing=; for package in $(1); do \
	  case "$$installed" in *" $$package "*) ;; *) missing="$$missing $$package" ;; esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "missing Debian packages:$$missing; run make as root, or first: sudo apt-get install$$missing" >&2; \
	    exit 1; \
	  fi; \
	  echo "installing$$missing ..."; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

demo-packages:
	$(call apt_install,$(DEMO_PACKAGES))

test-packages:
	$(call apt_install,$(TEST_PACKAGES))

demo: demo-packages venv
	$(LAB) up --fleet $(FLEET)
	ANSIBLE_CONFIG=$(LAB_CONFIG) $(BIN)/ansible-playbook -i $(INVENTORY) site.yml
	@echo
	@echo "The fleet is up: open http://127.0.10.1/"
	@echo "Tear it down with: make lab-down"

# Under make test a test that misses a tool fails, naming it, instead of skipping (tests/conftest.py):
# test-packages has installed them all, so a green run tested everything.
test: export WTSTACK_REQUIRE_TOOLS := 1
test: test-packages lint sanity unit integration tooling compat e2e

unit: venv
	$(BIN)/pytest tests/unit

integration: venv
	$(BIN)/pytest -s --durations=10 tests/integration

# The checkout's own tooling, not the collection: bench/ (its smoke test runs HAProxy and wrk) and the
# lab's helpers (tests/lab/). Not in the built collection.
tooling: venv
	$(BIN)/pytest tests/tooling

e2e: venv
	$(BIN)/pytest -s --durations=15 tests/e2e

OLDEST := .venv-oldest

$(OLDEST)/.installed: requirements-oldest.txt
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install --quiet -r requirements-oldest.txt
	touch $@

# Everything but the lab, on the oldest ansible-core in the support range.
compat: $(OLDEST)/.installed links
	ANSIBLE_CONFIG=$(CURDIR)/ansible.cfg $(OLDEST)/bin/pytest --durations=10 tests/unit/plugins tests/unit/test_collection_docs.py tests/integration

# Offline, ansible-lint does not install the collection it runs in: it finds it through the link.
# tests/changelog_release.py: a trial release of the changelog in a temporary copy (every module, filter,
# role and playbook listed once, no markup printed as is).
lint: venv
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/collections $(BIN)/ansible-lint
	$(BIN)/antsibull-changelog lint
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python tests/changelog_release.py
	$(BIN)/ruff check .
	$(BIN)/python tools/role_docs.py --check

docs: venv
	$(BIN)/python tools/role_docs.py

# ansible-test needs the collection at .../ansible_collections/wtstack/fleet, which the checkout need
# not be. So sanity runs on a copy of the checkout at such a path (bench/ and tests/ too, as a
# collection's own CI tests its repository), units on the tarball built from that copy (what users
# install). SANITY_FROM=worktree (the default) copies every file git tracks or would, uncommitted
# changes included; SANITY_FROM=clone takes a git clone of HEAD instead, in which ansible-test lists
# the files with git, exactly as collection CI runs it on a checkout.
SANITY_FROM ?= worktree
COLLECTION_BUILD ?= /tmp/wtstack-fleet-collection
COLLECTION_TREE := $(COLLECTION_BUILD)/ansible_collections/wtstack/fleet
CHECKOUT_TREE := $(COLLECTION_BUILD)/checkout/ansible_collections/wtstack/fleet
TEST_PYTHON = $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ANSIBLE_TEST = PATH=$(CURDIR)/$(BIN):$$PATH ansible-test
# ansible-test fetches its pip bootstrap script from a host outside the package registries.
GET_PIP_CACHE := $(HOME)/.ansible/test/cache/get_pip_24_2.py

collection: venv
	rm -rf $(COLLECTION_BUILD) && mkdir -p $(COLLECTION_TREE) $(dir $(CHECKOUT_TREE))
ifeq ($(SANITY_FROM),clone)
	git clone --quiet --no-hardlinks $(CURDIR) $(CHECKOUT_TREE)
else ifeq ($(SANITY_FROM),worktree)
	mkdir -p $(CHECKOUT_TREE)
	git ls-files -z --cached --others --exclude-standard \
	  | xargs -0 sh -c 'for f; do if [ -e "$$f" ] || [ -L "$$f" ]; then printf "%s\0" "$$f"; fi; done' sh \
	  | xargs -0 cp --parents --no-dereference -t $(CHECKOUT_TREE)
else
	$(error SANITY_FROM is worktree or clone, not $(SANITY_FROM))
endif
	cd $(CHECKOUT_TREE) && $(CURDIR)/$(BIN)/ansible-galaxy collection build --force --output-path $(COLLECTION_BUILD)
	tar -xzf $(COLLECTION_BUILD)/wtstack-fleet-*.tar.gz -C $(COLLECTION_TREE)

sanity: collection
	test -e $(GET_PIP_CACHE) || install -D -m 0644 tests/sanity/get_pip_offline.py $(GET_PIP_CACHE)
	cd $(CHECKOUT_TREE) && $(ANSIBLE_TEST) sanity --local --python $(TEST_PYTHON) --requirements --color no
	cd $(COLLECTION_TREE) && $(ANSIBLE_TEST) units --local --python $(TEST_PYTHON) --requirements --color no

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

# HAProxy 2.6 (this machine's) for every section, then the routing section again with Debian 13's
# HAProxy 3.0, run in a chroot of the lab's trixie image.
bench: venv
	$(BIN)/python bench/run.py --results .cache/bench-results.json
	$(BIN)/python bench/run.py --haproxy-suite trixie --sections routing --page benchmarks-haproxy-3.0 \
	  --results .cache/bench-results-haproxy-3.0.json

clean:
	rm -rf .cache tests/output

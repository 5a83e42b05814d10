# flaskfleet.stack — developer entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT        := $(CURDIR)
CACHE       := $(ROOT)/.cache
VENV        := $(ROOT)/.venv
VENV_OLDEST := $(ROOT)/.venv-oldest
PY_NEWEST   ?= $(shell tools/harness/find-python.sh 3.12 || tools/harness/find-python.sh 3.11)
PY_OLDEST   ?= $(shell command -v python3.11 || command -v python3)
COLLECTIONS := $(CACHE)/collections
TREE        := $(CACHE)/tree/ansible_collections/flaskfleet/stack
SCENARIO    ?= default
SCENARIOS   ?= $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))

# Everything below runs with the project's own tools and collections only:
# stale copies in ~/.ansible never shadow the checkout.
# $(CACHE)/self links the checkout itself as flaskfleet.stack.
export ANSIBLE_COLLECTIONS_PATH := $(CACHE)/self:$(COLLECTIONS)
export ANSIBLE_HOME := $(CACHE)/ansible-home
export MOLECULE_GLOB := molecule/*/molecule.yml
export PATH := $(VENV)/bin:$(PATH)

.PHONY: help deps tree images lint lint-checks sanity sanity-checks unit molecule test demo faults bench build docs clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.stamp: requirements/newest.txt
	@test -n "$(PY_NEWEST)" || { echo "no Python >= 3.11 with venv found" >&2; exit 1; }
	$(PY_NEWEST) -m venv --clear $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements/newest.txt
	touch $@

$(VENV_OLDEST)/.stamp: requirements/oldest.txt
	$(PY_OLDEST) -m venv --clear $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/pip install -q -r requirements/oldest.txt
	touch $@

$(COLLECTIONS)/.ready: $(VENV)/.stamp tools/harness/collections.sh
	tools/harness/collections.sh $(COLLECTIONS) $(VENV)/bin/pip
	mkdir -p $(CACHE)/self/ansible_collections/flaskfleet
	ln -sfn $(ROOT) $(CACHE)/self/ansible_collections/flaskfleet/stack
	touch $@

deps: $(VENV)/.stamp $(VENV_OLDEST)/.stamp $(COLLECTIONS)/.ready  ## venvs (newest and oldest ansible-core) and collections

tree: deps
	@# ansible-test only runs from ansible_collections/<ns>/<name>/: mirror the checkout there.
	@rm -rf $(TREE) && mkdir -p $(TREE)
	@git ls-files -co --exclude-standard -z | xargs -0 -r stat --printf '%n\0' 2>/dev/null | tar --null -T - -cf - | tar -C $(TREE) -xf -
	@# ansible-test lists a collection's files with git when it is in a repository.
	@cd $(TREE) && git init -q && git add -A

images: deps  ## build (or reuse) the systemd base images for Molecule
	tools/harness/engine.sh run tools/harness/images.sh

lint: tree  ## yamllint, ansible-lint (production profile), changelog lint, ansible-test sanity
	$(MAKE) --no-print-directory lint-checks

lint-checks:  # lint without remaking the tree (make test runs it beside the scenarios: tests/integration/test_lint.py)
	yamllint -s .
	ansible-lint --strict
	antsibull-changelog lint
	antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs=dependent --disallow-unknown-collection-refs .
	$(MAKE) --no-print-directory sanity-checks

sanity: tree  ## ansible-test sanity on the newest and the oldest supported ansible-core
	$(MAKE) --no-print-directory sanity-checks

sanity-checks:
	tools/harness/sanity.sh $(VENV) $(TREE)
	tools/harness/sanity.sh $(VENV_OLDEST) $(TREE)

unit: tree  ## unit tests (filter plugins on both ansible-core lines, demo app)
	cd $(TREE) && PYTHONPATH=$(CACHE)/tree $(VENV_OLDEST)/bin/python -m pytest -q -p no:cacheprovider tests/unit
	cd $(TREE) && PYTHONPATH=$(CACHE)/tree:$(TREE)/demo/app/src $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/unit demo/app/tests

molecule: deps  ## one Molecule scenario: make molecule SCENARIO=default
	tools/harness/engine.sh run tools/harness/molecule.sh test -s $(SCENARIO)

# The Molecule scenarios and lint start as soon as pytest has collected the
# tests (tests/integration/conftest.py) and run beside the quicker ones.
test: tree  ## everything: lint, sanity, unit tests and every Molecule scenario (ends with pytest's summary)
	cd $(TREE) && PYTHONPATH=$(CACHE)/tree $(VENV_OLDEST)/bin/python -m pytest -q -p no:cacheprovider tests/unit
	PYTHONPATH=$(CACHE)/tree:$(ROOT)/demo/app/src tools/harness/engine.sh run $(VENV)/bin/python -m pytest -p no:cacheprovider -s -v \
	    tests/unit demo/app/tests tests/integration

demo: deps  ## provision the full stack into a local container and print how to reach it
	tools/harness/engine.sh run tools/harness/demo.sh

faults: deps images  ## the fault suite at full size under both backends: a table of recoveries, failed requests, lost tasks and lines
	tools/harness/engine.sh run tools/harness/faults.sh

bench: deps  ## converge the stack into a container, load it with wrk from another: the plan's ratios as a table (.cache/bench/)
	tools/harness/engine.sh run tools/harness/bench.sh

docs: deps  ## the collection's docs (docs/collection/: roles from their argument specs, modules, filters) with antsibull-docs
	tools/docs/collection.sh

build: deps  ## build the Galaxy artifact
	ansible-galaxy collection build --force --output-path $(CACHE)/dist

clean:  ## remove caches and venvs (images stay: podman rmi to drop them)
	rm -rf $(CACHE) $(VENV) $(VENV_OLDEST) tests/output

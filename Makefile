# ringzero: `make setup` once (cached, idempotent), then `make test`; `make up` for the stack.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT        := $(CURDIR)
PYTHON      ?= python3.11
VENV        := $(ROOT)/.venv
STACK       ?= local
export RINGZERO_CACHE ?= $(HOME)/.cache/ringzero

# The offline Pulumi environment: local toolchain, local file backend, no downloads.
export PATH := $(ROOT)/.toolchain/bin:$(VENV)/bin:$(PATH)
export PULUMI_HOME := $(ROOT)/.pulumi/home
export PULUMI_BACKEND_URL := file://$(ROOT)/.pulumi/state
export PULUMI_CONFIG_PASSPHRASE_FILE := $(ROOT)/.pulumi/passphrase
export PULUMI_SKIP_UPDATE_CHECK := true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION := true
# The libvirt plugin is found in PULUMI_HOME (`make plugins`), not as the copy on PATH: an
# ambient (on-PATH) plugin makes the engine warn "using pulumi-resource-libvirt from $PATH" on
# every stage. The language host and the dynamic-provider plugin sit next to `pulumi`, where
# the engine looks for its bundled plugins, so ignoring PATH loses nothing.
export PULUMI_IGNORE_AMBIENT_PLUGINS := true

PYTEST := $(VENV)/bin/pytest
.PHONY: help setup packages venv toolchain image hypervisor-start hypervisor-stop host-prepare \
        publish-image pulumi-dirs plugins stack-select env lock test lint unit validate package engine check kernel e2e \
        preview up destroy wheel collection collection-sanity bench bench-fleet clean

help:
	@echo "make setup    install packages, venv, build the Pulumi toolchain and guest image (cached)"
	@echo "make test     lint, collection-sanity, unit, validate, package, engine, check, kernel, e2e (fast first, each timed)"
	@echo "make preview | up | destroy   the reference stack (STACK=$(STACK)) with the local engine"
	@echo 'eval "$$(make -s env)"   put the toolchain and offline Pulumi settings in your shell'

# ---- setup ------------------------------------------------------------------------------
setup: packages venv toolchain image host-prepare hypervisor-start publish-image pulumi-dirs plugins
	@echo "setup done: $$(.toolchain/bin/pulumi version) / image $$(readlink .image)"

packages:
	tools/host/install-packages.sh

# The dependencies at the versions of requirements.lock, and the checkout as an editable
# install (the `ringzero` command in .venv/bin); deps re-installed only when pyproject.toml or
# the lock changed (stamp keyed by their hash).
venv:
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@stamp=$(VENV)/.ringzero-deps-$$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16); \
	if [ ! -e $$stamp ]; then $(VENV)/bin/python tools/dev_install.py && rm -f $(VENV)/.ringzero-deps-* && touch $$stamp; \
	else $(VENV)/bin/python tools/dev_install.py --link-only; fi

# Rewrite requirements.lock from what .venv has (after changing a range in pyproject.toml:
# `.venv/bin/pip install -U 'pkg>=x'`, then `make lock`, then commit both).
lock:
	$(VENV)/bin/python tools/lock.py

toolchain:
	tools/pulumi/build.sh

image:
	tools/image/build.sh

host-prepare:
	tools/host/prepare.sh

hypervisor-start:
	tools/hypervisor/start.sh

hypervisor-stop:
	tools/hypervisor/stop.sh

publish-image: hypervisor-start
	tools/hypervisor/publish-image.sh >/dev/null
	@mkdir -p .pulumi/images
	@test -f .pulumi/images/blank-64M.qcow2 || qemu-img create -q -f qcow2 .pulumi/images/blank-64M.qcow2 64M

pulumi-dirs:
	@mkdir -p .pulumi/home .pulumi/state
	@test -s .pulumi/passphrase || (umask 077; head -c 32 /dev/urandom | base64 > .pulumi/passphrase)

# Install the locally built libvirt plugin into PULUMI_HOME, where the engine takes it from
# (ambient plugins are ignored, see above); again whenever the toolchain rebuilt it.
plugins: pulumi-dirs toolchain
	@cmp -s $(PULUMI_HOME)/plugins/resource-libvirt-v0.5.4/pulumi-resource-libvirt .toolchain/bin/pulumi-resource-libvirt || \
	  pulumi plugin install resource libvirt 0.5.4 --reinstall --file .toolchain/bin/pulumi-resource-libvirt >/dev/null

env:
	@echo 'export PATH="$(ROOT)/.toolchain/bin:$(VENV)/bin:$$PATH"'
	@echo 'export PULUMI_HOME="$(ROOT)/.pulumi/home"'
	@echo 'export PULUMI_BACKEND_URL="file://$(ROOT)/.pulumi/state"'
	@echo 'export PULUMI_CONFIG_PASSPHRASE_FILE="$(ROOT)/.pulumi/passphrase"'
	@echo 'export PULUMI_SKIP_UPDATE_CHECK=true'
	@echo 'export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true'
	@echo 'export PULUMI_IGNORE_AMBIENT_PLUGINS=true'

# ---- tests (fast tiers first; a missing tool fails, never skips) --------------------------
TIERS := lint collection-sanity unit validate package engine check kernel e2e faults
# Each tier in order, its time printed; the first failure stops the run.
test:
	@for t in $(TIERS); do s=$$(date +%s); $(MAKE) --no-print-directory $$t || exit 1; \
	  echo "== tier $$t took $$(( $$(date +%s) - s ))s"; done

lint:
	$(VENV)/bin/ruff check components tests bench tools examples __main__.py
	$(VENV)/bin/mypy components
	$(VENV)/bin/ansible-lint -q playbooks

unit:
	$(PYTEST) -q tests/unit

validate:
	$(PYTEST) -q tests/validate

package:
	$(PYTEST) -q tests/package

engine: pulumi-dirs
	$(PYTEST) -q tests/engine

# `ringzero check` from a fresh venv with only the wheel: this machine and four guests booted
# by hand (a hardened KVM host and three with one boot-time control broken each); the HTML
# report and its Chromium screenshot are kept in reports/check/.
check: publish-image
	$(PYTEST) -v tests/check

# Guests booted by hand, two halves at once (a TCG guest keeps one core busy; this machine has
# two): the reference declaration's guest (playbooks, idempotence, drift, removal, the compliance
# suite with its negative controls, which break it last) and the collection's, beside one guest
# shared by the modules that leave it as they found it (the isolation kinds, ConfinedService,
# 500 policies). Each half's output is kept in reports/kernel-*.log and printed when both end.
KERNEL_OWN_GUESTS := tests/kernel/test_kernel_features.py tests/kernel/test_ansible_collection.py
kernel: publish-image
	@mkdir -p reports; \
	$(PYTEST) -v -p no:cacheprovider $(KERNEL_OWN_GUESTS) > reports/kernel-own.log 2>&1 & own=$$!; \
	$(PYTEST) -v -p no:cacheprovider tests/kernel $(addprefix --ignore=,$(KERNEL_OWN_GUESTS)) \
	  > reports/kernel-shared.log 2>&1 & shared=$$!; \
	rc=0; wait $$own || rc=1; wait $$shared || rc=1; \
	echo "---- kernel: own guests"; cat reports/kernel-own.log; \
	echo "---- kernel: the shared guest"; cat reports/kernel-shared.log; exit $$rc

# Boots real guests (TCG here): about 12 minutes, see README.
e2e: pulumi-dirs publish-image
	$(PYTEST) -v tests/e2e

# One guest booted by the real engine, interrupted on purpose (SIGKILL, SSH cut, guest reset,
# libvirtd restart, a full state filesystem, two runs at once); each recovery proven on the node.
faults: pulumi-dirs publish-image
	$(PYTEST) -v --durations=0 tests/faults

# ---- the reference stack --------------------------------------------------------------------
# A new stack on this machine: a salt Pulumi wrote for another machine's passphrase (setup
# makes a random one per machine) is dropped first; `stack init` writes this machine's.
stack-select: pulumi-dirs
	@pulumi stack select $(STACK) 2>/dev/null || { \
	  sed -i '/^encryptionsalt:/d' Pulumi.$(STACK).yaml 2>/dev/null || true; pulumi stack init $(STACK); }

preview: stack-select
	pulumi preview --stack $(STACK) --diff

up: stack-select
	pulumi up --stack $(STACK) --yes

# plain destroy: each VM's GuestLifecycle shuts it down through ACPI before its domain goes
destroy: stack-select
	pulumi destroy --stack $(STACK) --yes

# ---- packaging and benchmarks -----------------------------------------------------------------
wheel:
	rm -rf dist && $(VENV)/bin/python -m build --wheel --no-isolation --outdir dist >/dev/null && ls dist

# The Ansible collection ringzero.node (tools/collection/: galaxy.yml, the role; the module and
# playbooks copied from playbooks/): laid out in build/collection/ansible_collections/ringzero/node,
# built to dist/ringzero-node-<version>.tar.gz. collection-sanity: `ansible-test sanity` on it.
collection:
	$(VENV)/bin/python tools/collection/build_collection.py

collection-sanity:
	$(VENV)/bin/python tools/collection/build_collection.py --sanity

bench:
	$(VENV)/bin/python bench/preview_scale.py

# `ringzero check` against 100 sshd machines in namespaces vs plain ssh (root; under the lock the
# guest tiers take, so neither skews the other)
bench-fleet:
	flock /tmp/rz-guest.lock $(VENV)/bin/python bench/fleet_check.py

clean:
	rm -rf dist build .mypy_cache .ruff_cache .pytest_cache

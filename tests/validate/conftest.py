"""The validate tier needs the real tools; a missing one is a setup bug, so it fails here."""

from __future__ import annotations

import shutil

import pytest

TOOLS = ("virt-xml-validate", "xsltproc", "apparmor_parser", "systemd-analyze", "scmp_sys_resolver", "bpftrace")


@pytest.fixture(scope="session", autouse=True)
def _tools_present() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"validators missing: {', '.join(missing)} - run `make setup` (tools/host/packages.txt)")

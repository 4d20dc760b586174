"""ringzero's OCI seccomp JSON under a real OCI runtime: Debian's `crun` in the guest runs a
container with the profile file the seccomp kind wrote as its `linux.seccomp`, and the
declared syscall is denied with the declared errno; the same container without it succeeds.

No registry, no network: the bundle's rootfs is an empty directory (symlinks for the merged
/usr) with the guest's /usr bind-mounted read-only by the runtime; `crun spec` gives the rest.
Runs against the dev guest with RINGZERO_DEV_GUEST=/tmp/rz-dev, else boots its own.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
from collections.abc import Iterator

import pytest

import ringzero.spec  # noqa: F401  first: ringzero.kinds.seccomp imported alone imports the specs circularly
from ringzero.kinds.seccomp.expect import oci_paths, seccomp_oci
from ringzero.plan import policies_plan
from ringzero.playbook import run_playbook
from ringzero.spec import HostSpec, NodePolicies, SeccompProfileSpec, SyscallRule
from tests.handboot import HandGuest

NODE = "rz-oci"  # its own node name: its own ledger entries beside any other plan on the guest
BUNDLE = "/var/tmp/rz-oci-bundle"
# EXDEV: an errno mkdir never gives on its own for a directory in a tmpfs, so the message can
# only come from the filter
PROFILE = SeccompProfileSpec("rz-oci", default_action="SCMP_ACT_ALLOW",
                             rules=(SyscallRule(("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", "EXDEV"),))
PROBE_DIR = "/dev/shm/rz-oci-probe"  # a tmpfs of the container's own (crun spec's default mounts)
RUN_TIMEOUT_S = 60

# Runs in the guest: the bundle from `crun spec`, the command and mounts set, and, with a
# profile path, that file as linux.seccomp.
CONFIGURE = r"""
import json, sys
bundle, profile = sys.argv[1], sys.argv[2]
with open(f"{bundle}/config.json") as f:
    config = json.load(f)
config["process"]["terminal"] = False
config["process"]["args"] = ["/usr/bin/mkdir", sys.argv[3]]
config["root"] = {"path": "rootfs", "readonly": True}
config["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]})
config["linux"].pop("seccomp", None)
if profile != "-":
    with open(profile) as f:
        config["linux"]["seccomp"] = json.load(f)
with open(f"{bundle}/config-{sys.argv[4]}.json", "w") as f:
    json.dump(config, f)
"""


def _apply(guest: HandGuest, state: str) -> None:
    plan = policies_plan(NodePolicies(NODE, seccomp=(PROFILE,)), HostSpec(NODE))
    r = run_playbook({**guest.node, "name": NODE}, guest.private_key, {"ringzero_plan": plan, "ringzero_state": state})
    assert r.ok, f"{state}: {r.failures}"


def _bundle(guest: HandGuest, profile: str, name: str) -> None:
    guest.ssh(f"python3 -I -c {shlex.quote(CONFIGURE)} {BUNDLE} {shlex.quote(profile)} {PROBE_DIR} {name} && "
              f"cp {BUNDLE}/config-{name}.json {BUNDLE}/config.json")


def _run(guest: HandGuest, name: str) -> tuple[int, str]:
    """(exit status, stderr) of the container's command; the container is gone afterwards."""
    res = guest.run(f"cd {BUNDLE} && timeout -k 5 {RUN_TIMEOUT_S} crun run --bundle {BUNDLE} rz-oci-{name}",
                    timeout=RUN_TIMEOUT_S + 30)
    guest.run(f"crun delete -f rz-oci-{name} 2>/dev/null", timeout=60)
    return res.returncode, res.stdout + res.stderr


@pytest.fixture(scope="module")
def guest(shared_guest: HandGuest) -> Iterator[HandGuest]:
    with contextlib.nullcontext(shared_guest) as g:  # the tier's shared guest
        assert g.run("command -v crun").returncode == 0, "crun is not in the guest image (tools/image/recipe)"
        g.ssh(f"rm -rf {BUNDLE} && mkdir -p {BUNDLE}/rootfs && cd {BUNDLE}/rootfs && "
              "mkdir usr proc dev sys tmp etc && ln -s usr/bin bin && ln -s usr/sbin sbin && ln -s usr/lib lib && "
              f"ln -s usr/lib64 lib64 && cd {BUNDLE} && crun spec")
        _apply(g, "present")
        try:
            yield g
        finally:
            g.run(f"rm -rf {BUNDLE}", timeout=60)
            _apply(g, "absent")
            assert g.run(f"ls {' '.join(oci_paths(PROFILE))} {BUNDLE} 2>/dev/null").stdout.split() == []


def test_the_profile_the_kind_wrote_is_valid_oci_seccomp(guest: HandGuest) -> None:
    path = oci_paths(PROFILE)[0]
    assert json.loads(guest.ssh(f"cat {path}")) == seccomp_oci(PROFILE)


def test_without_the_profile_the_container_makes_the_directory(guest: HandGuest) -> None:
    _bundle(guest, "-", "control")
    rc, out = _run(guest, "control")
    assert rc == 0, out


def test_with_the_profile_crun_denies_the_syscall_with_the_declared_errno(guest: HandGuest) -> None:
    _bundle(guest, oci_paths(PROFILE)[0], "confined")
    rc, out = _run(guest, "confined")
    assert rc == 1, out
    assert f"mkdir: cannot create directory '{PROBE_DIR}': {os.strerror(errno.EXDEV)}" in out, out

"""GuestLifecycle: what libvirt's provider does not do for a running guest.

terraform-provider-libvirt replaces a domain when its memory or vCPUs change, and powers a
running domain off when it removes it. GuestLifecycle, one per VM, beside its domain:

- **in-place size changes**: the domain keeps its memory and vCPUs as created (the domain
  resource ignores changes to both); this resource brings the same domain (UUID, MAC, disk
  unchanged) to the declared size. Memory within the domain's current maximum is set live
  through the balloon (and in the persistent definition); anything else (more memory than the
  maximum, another vCPU count: libvirt hot-unplugs only vCPUs defined hot-pluggable, and the
  provider defines none) is an ACPI shutdown, the definition updated, and a start. Preview
  says which: the `guest_restart` input reads "not required: …" or "required: …".
- **a clean shutdown before removal**: its delete (which the engine runs before the domain's,
  the domain's id being one of its inputs) shuts the guest down through ACPI and waits; a
  guest that does not stop in time is a failure naming it (nothing is powered off). It needs
  no program: plain `pulumi destroy` runs it, the key for a remote host comes from its own
  (secret) inputs and exists on disk only inside a private directory for the call.

Example (ringzero.vm does this)::

    GuestLifecycle("vm1-lifecycle", domain="vm1", domain_id=domain.id, host_uri="qemu:///system",
                   memory_mib=1024, vcpus=2, opts=pulumi.ResourceOptions(depends_on=[domain]))
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dyn

from . import keyfiles

SHUTDOWN_TIMEOUT_S = 120


class VirshError(RuntimeError):
    """virsh could not answer (connection, permissions, ...): the domain's state is unknown."""


# virsh's answers when the domain is not there at all (removed by hand, say): nothing to shut down
_NO_DOMAIN = ("Domain not found", "failed to get domain")


def virsh(uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True, timeout=60,
                          env=keyfiles.safe_env())


def _shown(uri: str) -> str:
    return uri.split("?", 1)[0]


def _failed(uri: str, what: str, res: subprocess.CompletedProcess[str]) -> VirshError:
    err = " ".join(res.stderr.split()) or f"exit {res.returncode}"
    return VirshError(f"virsh {what} on {_shown(uri)} failed: {err}")


def domain_state(uri: str, domain: str) -> str | None:
    """`virsh domstate`: "running", "shut off", ...; None when the domain does not exist.

    Raises VirshError when virsh fails otherwise: a failure is never read as "not running".
    """
    res = virsh(uri, "domstate", domain)
    if res.returncode == 0:
        return res.stdout.strip()
    if any(m in res.stderr for m in _NO_DOMAIN):
        return None
    raise _failed(uri, "domstate", res)


def shut_down_cleanly(uri: str, domain: str, timeout_s: float = SHUTDOWN_TIMEOUT_S, poll_s: float = 1.0) -> str:
    """ACPI shutdown and wait for 'shut off'. Returns "" when the guest is down (or was never
    up, or is gone), else why it is not. Raises VirshError.

    The request is repeated every 10 s: a guest still booting (systemd not yet listening for
    the power button) drops it.
    """
    state = domain_state(uri, domain)
    if state in (None, "shut off", "crashed"):
        return ""
    if state in ("paused", "pmsuspended"):
        return f"it is {state} and cannot shut down through ACPI"
    deadline = time.monotonic() + timeout_s
    asked = float("-inf")
    while time.monotonic() < deadline:
        if state != "in shutdown" and time.monotonic() - asked >= 10:
            res = virsh(uri, "shutdown", domain)
            if res.returncode != 0 and domain_state(uri, domain) not in (None, "shut off"):
                raise _failed(uri, "shutdown", res)
            asked = time.monotonic()
        time.sleep(poll_s)
        state = domain_state(uri, domain)
        if state in (None, "shut off"):
            return ""
    return f"still {state!r} {timeout_s:g} s after the ACPI shutdown request"


def virsh_connection(uri: str, tmp: Path, private_key: str | None = None, known_hosts: str | None = None) -> str:
    """`uri` as virsh takes it for a host reached over qemu+ssh: the key and the pinned host key
    written into `tmp` (a private directory of the caller's), and libvirt's `command` (the ssh
    binary it runs) a script there that runs ssh with that known_hosts and strict host-key
    checking (libvirt's ssh transport takes `keyfile` but no known_hosts file). Other URIs are
    returned as they are.
    """
    parts = urllib.parse.urlsplit(uri)
    if "+ssh" not in parts.scheme or private_key is None or known_hosts is None:
        return uri
    key = keyfiles.write_key(tmp / "access", private_key)
    kh = keyfiles.write_secret(tmp / "known_hosts", known_hosts.strip() + "\n")
    wrapper = tmp / "ssh"
    args = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={kh}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10"]
    keyfiles.write_secret(wrapper, "#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in args) + ' "$@"\n')
    wrapper.chmod(0o700)
    kept = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query)
            if k not in ("keyfile", "keydata", "knownhosts", "hostkey", "sshauth", "command", "no_verify")]
    query = urllib.parse.urlencode([*kept, ("keyfile", str(key)), ("command", str(wrapper)), ("no_tty", "1")],
                                   safe="/")
    return urllib.parse.urlunsplit(parts._replace(query=query))


@dataclass(frozen=True)
class DomainSize:
    """A domain's persistent size: memory (its maximum and the current balloon target) and vCPUs."""

    memory_max_mib: int
    memory_mib: int
    vcpus: int


def parse_domain_size(xml: str) -> DomainSize:
    """The size in `virsh dumpxml --inactive` (memory values in KiB unless a unit says otherwise)."""
    root = ET.fromstring(xml)

    def mib(tag: str) -> int:
        el = root.find(tag)
        if el is None or not (el.text or "").strip():
            raise VirshError(f"the domain's definition has no <{tag}>")
        unit = (el.get("unit") or "KiB").lower()
        scale = {"b": 1 / 1024**2, "bytes": 1 / 1024**2, "k": 1 / 1024, "kib": 1 / 1024, "m": 1, "mib": 1,
                 "g": 1024, "gib": 1024}[unit]
        return int(int(el.text or "0") * scale)

    vcpu = root.find("vcpu")
    if vcpu is None:
        raise VirshError("the domain's definition has no <vcpu>")
    maximum = mib("memory")
    current = mib("currentMemory") if root.find("currentMemory") is not None else maximum
    return DomainSize(memory_max_mib=maximum, memory_mib=current, vcpus=int(vcpu.get("current") or vcpu.text or 0))


def restart_reason(memory_max_mib: int, vcpus_now: int, memory_mib: int, vcpus: int) -> str:
    """Why going to (memory_mib, vcpus) needs the guest restarted; "" when it can be done live."""
    why = []
    if memory_mib > memory_max_mib:
        why.append(f"memory {memory_mib} MiB is above the domain's maximum of {memory_max_mib} MiB")
    if vcpus != vcpus_now:
        why.append(f"vCPUs {vcpus_now} -> {vcpus} (libvirt hot-plugs only vCPUs defined hot-pluggable)")
    return "; ".join(why)


def read_size(uri: str, domain: str) -> DomainSize:
    res = virsh(uri, "dumpxml", "--inactive", domain)
    if res.returncode != 0:
        raise _failed(uri, "dumpxml", res)
    return parse_domain_size(res.stdout)


def _run(uri: str, *args: str) -> None:
    res = virsh(uri, *args)
    if res.returncode != 0:
        raise _failed(uri, args[0], res)


def resize(uri: str, domain: str, memory_mib: int, vcpus: int, timeout_s: float = SHUTDOWN_TIMEOUT_S,
           poll_s: float = 1.0) -> bool:
    """Bring `domain` to the size; True when the guest was restarted for it. Raises RuntimeError
    naming the VM when it cannot (the guest does not shut down in time: nothing was changed)."""
    now = read_size(uri, domain)
    if (now.memory_mib, now.vcpus) == (memory_mib, vcpus) and now.memory_max_mib >= memory_mib:
        return False
    state = domain_state(uri, domain)
    if state is None:
        raise RuntimeError(f"VirtualMachine '{domain}': its domain is not on {_shown(uri)}")
    kib = str(memory_mib * 1024)
    why = restart_reason(now.memory_max_mib, now.vcpus, memory_mib, vcpus)
    if not why:  # within the maximum: the balloon target, live when running, and the definition
        _run(uri, "setmem", domain, kib, "--config", *(["--live"] if state == "running" else []))
        return False
    was_running = state not in ("shut off", "crashed")
    if was_running:
        left = shut_down_cleanly(uri, domain, timeout_s, poll_s)
        if left:
            raise RuntimeError(
                f"VirtualMachine '{domain}': a restart is needed ({why}) but the guest did not shut down ({left}); "
                "its definition was not changed and nothing was powered off: shut it down, then run `pulumi up` "
                "again")
    # the maximum becomes the declared memory; the current value never exceeds the maximum
    if memory_mib >= now.memory_max_mib:
        _run(uri, "setmaxmem", domain, kib, "--config")
        _run(uri, "setmem", domain, kib, "--config")
    else:
        _run(uri, "setmem", domain, kib, "--config")
        _run(uri, "setmaxmem", domain, kib, "--config")
    if vcpus != now.vcpus:
        if vcpus > now.vcpus:
            _run(uri, "setvcpus", domain, str(vcpus), "--maximum", "--config")
            _run(uri, "setvcpus", domain, str(vcpus), "--config")
        else:
            _run(uri, "setvcpus", domain, str(vcpus), "--config")
            _run(uri, "setvcpus", domain, str(vcpus), "--maximum", "--config")
    if was_running:
        _run(uri, "start", domain)
    return True


# ---- the dynamic resource ------------------------------------------------------------------

_SIZE = ("memory_mib", "vcpus")
_WHERE = ("domain", "domain_id", "host_uri")


def planned(olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
    """`news` with what preview can tell: `guest_restart` and the maximum memory it leaves."""
    out = dict(news)
    same_domain = bool(olds) and all(olds.get(k) == news.get(k) for k in ("domain", "host_uri"))
    if not same_domain or "memory_max_mib" not in olds:
        out["guest_restart"] = "not required: a new domain is created with this size"
        out["memory_max_mib"] = news.get("memory_mib")
        return out
    if all(olds.get(k) == news.get(k) for k in _SIZE):
        out["guest_restart"], out["memory_max_mib"] = olds.get("guest_restart"), olds["memory_max_mib"]
        return out
    # numbers arrive as floats (they travel in a protobuf Struct); an unknown is a sentinel string
    memory, vcpus = news.get("memory_mib"), news.get("vcpus")
    if not isinstance(memory, int | float) or not isinstance(vcpus, int | float):
        out["guest_restart"], out["memory_max_mib"] = "unknown until the size is known", olds["memory_max_mib"]
        return out
    memory, vcpus = int(memory), int(vcpus)
    why = restart_reason(int(olds["memory_max_mib"]), int(olds["vcpus"]), memory, vcpus)
    out["memory_max_mib"] = memory if why else int(olds["memory_max_mib"])
    out["guest_restart"] = (f"required: {why}" if why else
                            f"not required: memory within the domain's maximum of {int(olds['memory_max_mib'])} "
                            "MiB is set live through the balloon")
    return out


@contextlib.contextmanager
def connected(props: dict[str, Any]) -> Iterator[str]:
    """The virsh URI for one call, its key files in a private directory removed afterwards."""
    key, kh = props.get("private_key"), props.get("known_hosts")
    with keyfiles.private_tempdir("ringzero-virsh-") as tmp:
        yield virsh_connection(str(props["host_uri"]), tmp, str(key) if key else None, str(kh) if kh else None)


def _bring_to_size(props: dict[str, Any]) -> tuple[bool, int]:
    """resize() as the resource declares it (its shutdown timeout too); (restarted, the domain's
    maximum memory read back afterwards)."""
    domain = str(props["domain"])
    with connected(props) as uri:
        restarted = resize(uri, domain, int(props["memory_mib"]), int(props["vcpus"]),
                           timeout_s=float(props.get("shutdown_timeout_s") or SHUTDOWN_TIMEOUT_S))
        return restarted, read_size(uri, domain).memory_max_mib


class GuestLifecycleProvider(dyn.ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        return dyn.CheckResult(planned(olds, news), [])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        restarted, max_mib = _bring_to_size(props)
        return dyn.CreateResult(id_=f"{props['domain']}@{props['domain_id']}",
                                outs={**props, "memory_max_mib": max_mib, "restarts": int(restarted)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        replaces = [k for k in _WHERE if olds.get(k) != news.get(k)]
        changed = replaces + [k for k in (*_SIZE, "private_key", "known_hosts", "shutdown_timeout_s")
                              if olds.get(k) != news.get(k)]
        return dyn.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        restarted, max_mib = _bring_to_size(news)
        return dyn.UpdateResult(outs={**news, "memory_max_mib": max_mib,
                                      "restarts": int(olds.get("restarts") or 0) + int(restarted)})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        domain = str(props["domain"])
        with connected(props) as uri:
            try:
                why = shut_down_cleanly(uri, domain, float(props.get("shutdown_timeout_s") or SHUTDOWN_TIMEOUT_S))
            except VirshError as e:
                raise RuntimeError(f"VirtualMachine '{domain}': cannot shut it down before removing it: {e}") from None
        if why:
            raise RuntimeError(
                f"VirtualMachine '{domain}': no clean shutdown ({why}); nothing was powered off. Shut it down (or "
                f"power it off: `virsh -c {_shown(str(props['host_uri']))} destroy {domain}`), then run the "
                "removal again")

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        return dyn.ReadResult(id_=id_, outs=props)


class GuestLifecycle(dyn.Resource, module="ringzero", name="GuestLifecycle"):
    """Sizes `domain` in place and shuts it down cleanly before it is removed (see the module)."""

    restarts: pulumi.Output[int]
    guest_restart: pulumi.Output[str]

    def __init__(
        self, name: str, *, domain: str, domain_id: pulumi.Input[str], host_uri: str, memory_mib: int, vcpus: int,
        private_key: pulumi.Input[str] | None = None, known_hosts: pulumi.Input[str] | None = None,
        shutdown_timeout_s: int = SHUTDOWN_TIMEOUT_S, opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["private_key"]))
        super().__init__(
            GuestLifecycleProvider(), name,
            {
                "domain": domain, "domain_id": domain_id, "host_uri": host_uri,
                "memory_mib": memory_mib, "vcpus": vcpus,
                "private_key": pulumi.Output.secret(private_key) if private_key is not None else None,
                "known_hosts": known_hosts, "shutdown_timeout_s": shutdown_timeout_s,
                "guest_restart": None, "memory_max_mib": None, "restarts": None,
            },
            opts,
        )

"""Every rendered artifact of the reference stack passes the real tool that consumes it."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ringzero.spec import EbpfAgentSpec
from ringzero.spec._libseccomp import ARCH_TOKENS
from tests.artifacts import all_artifacts
from tests.fixtures import local_topology

TOPOLOGY = local_topology()
ARTIFACTS = all_artifacts(TOPOLOGY)


def _run(*cmd: str, env: dict[str, str] | None = None, timeout: int = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _names(suffix: str = "", contains: str = "") -> list[str]:
    return sorted(n for n in ARTIFACTS if n.endswith(suffix) and contains in n)


# ---- libvirt --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", _names(".xml", "domain-"))
def test_domain_xml_validates(name: str, tmp_path: Path) -> None:
    f = tmp_path / name
    f.write_text(ARTIFACTS[name])
    res = _run("virt-xml-validate", str(f), "domain")
    assert res.returncode == 0, res.stderr + res.stdout


def test_domain_kinds_cover_kvm_qemu_xen_bhyve_and_hyperv() -> None:
    assert {n.split("-")[1] for n in _names(".xml", "domain-")} == {"kvm", "qemu", "xen", "bhyve", "hyperv"}


# The shape of what pulumi-libvirt 0.5.4 defines: it always adds SPICE graphics, video and a
# spice channel, which ringzero's XSLT removes (headless) before the domain is defined.
PROVIDER_LIKE = """<domain type="qemu"><name>vm1</name><memory unit="MiB">1024</memory><vcpu>1</vcpu>
<os><type arch="x86_64" machine="pc">hvm</type></os>
<devices><disk type="file" device="disk"><driver name="qemu" type="qcow2"/>
<source file="/var/lib/libvirt/images/vm1.qcow2"/><target dev="vda" bus="virtio"/></disk>
<graphics type="spice" autoport="yes"><listen type="none"/></graphics>
<channel type="spicevmc"><target type="virtio" name="com.redhat.spice.0"/></channel>
<video><model type="cirrus"/></video></devices></domain>"""


@pytest.mark.parametrize("name", _names(".xsl"))
def test_xslt_applies_to_provider_domain(name: str, tmp_path: Path) -> None:
    (tmp_path / "t.xsl").write_text(ARTIFACTS[name])
    (tmp_path / "d.xml").write_text(PROVIDER_LIKE)
    res = _run("xsltproc", str(tmp_path / "t.xsl"), str(tmp_path / "d.xml"))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "<graphics" not in out and "<video" not in out and "spicevmc" not in out
    assert "<acpi/>" in out
    assert out.count("<serial type=\"pty\">") == 1 and out.count("<console type=\"pty\">") == 1
    vm = name.removeprefix("domain-").removesuffix(".xsl")
    port = next(v.ssh_port for v in TOPOLOGY.vms if v.name == vm)
    if port is None:
        assert "qemu:commandline" not in out
    else:
        assert f"hostfwd=tcp:127.0.0.1:{port}-:22" in out
    (tmp_path / "out.xml").write_text(out)
    valid = _run("virt-xml-validate", str(tmp_path / "out.xml"), "domain")
    assert valid.returncode == 0, valid.stderr + valid.stdout


# ---- AppArmor -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", _names(contains="/etc/apparmor.d/"))
def test_apparmor_profile_parses(name: str, tmp_path: Path) -> None:
    f = tmp_path / "profile"
    f.write_text(ARTIFACTS[name])
    res = _run("apparmor_parser", "-Q", "-K", str(f))
    assert res.returncode == 0, res.stderr


def test_apparmor_parser_rejects_a_broken_profile(tmp_path: Path) -> None:
    """The validator itself is live: a profile with an unclosed brace fails."""
    f = tmp_path / "profile"
    f.write_text("profile broken {\n  /etc/hostname r,\n")
    assert _run("apparmor_parser", "-Q", "-K", str(f)).returncode != 0


# ---- systemd --------------------------------------------------------------------------------

LIBEXEC = "/usr/local/libexec/ringzero/"


def _unit_tree(tmp_path: Path) -> Path:
    """The node's /etc/systemd/system as rendered (the demo service the drop-ins target included)."""
    root = tmp_path / "system"
    # ringzero's own programs (Landlock's launcher) are not installed on this machine: written
    # to a temp dir, executable, and the units pointed there, so verify checks them too
    programs = tmp_path / "libexec"
    programs.mkdir()
    for name in _names(contains=LIBEXEC):
        (programs / name.split(LIBEXEC, 1)[1]).write_text(ARTIFACTS[name])
        (programs / name.split(LIBEXEC, 1)[1]).chmod(0o755)
    for name in _names(contains="/etc/systemd/system/"):
        rel = name.split("/etc/systemd/system/", 1)[1]
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(ARTIFACTS[name].replace(LIBEXEC, f"{programs}/"))
    assert (root / "ringzero-demo-web.service").exists(), "the reference stack declares the service it confines"
    return root


def _verify(root: Path, unit: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{root}:", "SYSTEMD_LOG_LEVEL": "warning"}
    return _run("systemd-analyze", "verify", "--man=no", str(root / unit), env=env)


UNITS = sorted({n.split("/etc/systemd/system/", 1)[1].split("/")[0].removesuffix(".d")
                for n in _names(contains="/etc/systemd/system/")})


@pytest.mark.parametrize("unit", UNITS)
def test_units_verify(unit: str, tmp_path: Path) -> None:
    root = _unit_tree(tmp_path)
    res = _verify(root, unit)
    problems = [ln for ln in (res.stderr + res.stdout).splitlines() if unit.split(".")[0] in ln or "ringzero" in ln]
    assert res.returncode == 0 and not problems, res.stderr + res.stdout


def test_systemd_verify_rejects_a_bad_directive(tmp_path: Path) -> None:
    root = tmp_path / "system"
    root.mkdir()
    (root / "bad.slice").write_text("[Slice]\nCPUWeight=banana\n")
    res = _verify(root, "bad.slice")
    assert "banana" in res.stderr + res.stdout


def test_dropins_apply_to_the_service(tmp_path: Path) -> None:
    tree = tmp_path / "root"
    shutil.copytree(_unit_tree(tmp_path), tree / "etc" / "systemd" / "system")
    root = tree / "etc" / "systemd" / "system"
    res = _run("systemd-analyze", f"--root={tree}", "cat-config", "--no-pager",
               "systemd/system/ringzero-demo-web.service")
    dropins = sorted(p.name for p in (root / "ringzero-demo-web.service.d").iterdir())
    assert dropins == [f"ringzero-{part}.conf" for part in (
        "apparmor-ringzero-demo-web", "fsview-demo-web", "namespaces-demo-web", "seccomp-no-mkdir", "slice",
        "sockfilter-demo-web")], res.stderr
    assert all(f"# {root}/ringzero-demo-web.service.d/{d}" in res.stdout for d in dropins), res.stdout + res.stderr


# ---- seccomp (libseccomp) ---------------------------------------------------------------------

class _Libseccomp:
    def __init__(self) -> None:
        self.lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
        self.lib.seccomp_init.restype = ctypes.c_void_p
        self.lib.seccomp_init.argtypes = [ctypes.c_uint32]
        self.lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        self.lib.seccomp_arch_remove.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        self.lib.seccomp_arch_native.restype = ctypes.c_uint32
        self.lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
        self.lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.lib.seccomp_release.argtypes = [ctypes.c_void_p]
        self.lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]


ACT = {"SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
       "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_TRAP": 0x00030000}


def _action(name: str, errno: int | None) -> int:
    return 0x00050000 | (errno or 1) if name == "SCMP_ACT_ERRNO" else ACT[name]


@pytest.mark.parametrize("name", _names(".json", "/etc/ringzero/seccomp/"))
def test_oci_profile_compiles_to_bpf(name: str, tmp_path: Path) -> None:
    profile = json.loads(ARTIFACTS[name])
    arch = {"SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_AARCH64": "aarch64"}[profile["architectures"][0]]
    ls = _Libseccomp()
    ctx = ls.lib.seccomp_init(_action(profile["defaultAction"], profile.get("defaultErrnoRet")))
    assert ctx
    try:
        token = ARCH_TOKENS[arch]
        native = ls.lib.seccomp_arch_native()
        if token != native:
            assert ls.lib.seccomp_arch_add(ctx, token) == 0
            assert ls.lib.seccomp_arch_remove(ctx, native) == 0
        for rule in profile["syscalls"]:
            act = _action(rule["action"], rule.get("errnoRet"))
            for sc in rule["names"]:
                nr = ls.lib.seccomp_syscall_resolve_name_arch(token, sc.encode())
                assert nr >= 0, sc
                assert ls.lib.seccomp_rule_add(ctx, act, nr, 0) == 0, sc
        with open(tmp_path / "filter.bpf", "wb") as out:
            assert ls.lib.seccomp_export_bpf(ctx, out.fileno()) == 0
    finally:
        ls.lib.seccomp_release(ctx)
    size = (tmp_path / "filter.bpf").stat().st_size
    assert size > 0 and size % 8 == 0  # struct sock_filter instructions


@pytest.mark.parametrize("name", _names(".conf", "ringzero-seccomp-"))
def test_systemd_syscall_filter_names_resolve(name: str) -> None:
    line = next(ln for ln in ARTIFACTS[name].splitlines() if ln.startswith("SystemCallFilter="))
    for sc in line.split("=", 1)[1].lstrip("~").split():
        res = _run("scmp_sys_resolver", "-a", "x86_64", sc)
        assert res.returncode == 0 and int(res.stdout.strip()) >= 0, (sc, res.stdout, res.stderr)


# ---- eBPF (bpftrace) ----------------------------------------------------------------------

AGENTS = [a for n in TOPOLOGY.nodes for a in n.ebpf]


def _program_text(agent: EbpfAgentSpec) -> str:
    return agent.program if agent.program is not None else Path(agent.program_path).read_text()


@pytest.mark.parametrize("agent", AGENTS, ids=[a.name for a in AGENTS])
def test_bpftrace_parses_agent_program(agent: EbpfAgentSpec, tmp_path: Path) -> None:
    f = tmp_path / "p.bt"
    f.write_text(_program_text(agent))
    res = _run("bpftrace", "-d", str(f))
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("agent", AGENTS, ids=[a.name for a in AGENTS])
def test_bpftrace_attaches_agent_briefly(agent: EbpfAgentSpec, tmp_path: Path) -> None:
    """Attach the agent's probes on this machine for a moment (needs root and tracefs)."""
    assert os.geteuid() == 0, "the validate tier runs as root to attach BPF programs"
    assert Path("/sys/kernel/tracing/events").is_dir(), "tracefs not mounted: run `make setup`"
    f = tmp_path / "p.bt"
    f.write_text(_program_text(agent) + "\ninterval:s:2 { exit(); }\n")
    res = _run("bpftrace", str(f), timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Attaching" in res.stdout and "probes" in res.stdout, res.stdout[:500]


def test_bpftrace_parser_rejects_garbage(tmp_path: Path) -> None:
    f = tmp_path / "p.bt"
    f.write_text("BEGIN { printf( }")
    assert _run("bpftrace", "-d", str(f)).returncode != 0


# ---- hypervisor host preparation ------------------------------------------------------------

@pytest.mark.parametrize("name", _names(contains="/etc/modprobe.d/"))
def test_modprobe_options_parse(name: str, tmp_path: Path) -> None:
    """modprobe's own parser reads the file and reports the options it sets."""
    conf = tmp_path / "ringzero-kvm.conf"
    conf.write_text(ARTIFACTS[name])
    res = _run("modprobe", "--config", str(conf), "--showconfig")
    assert res.returncode == 0, res.stderr
    options = sorted(ln for ln in res.stdout.splitlines() if ln.startswith("options kvm_"))
    assert options == ["options kvm_amd nested=0", "options kvm_intel nested=0"], res.stdout


@pytest.mark.parametrize("name", _names(contains="/etc/default/grub.d/"))
def test_grub_defaults_source_as_grub_mkconfig_does(name: str, tmp_path: Path) -> None:
    """The file is valid sh (grub-mkconfig sources it) and sets the Xen entry and dom0 memory."""
    cfg = tmp_path / "ringzero-xen.cfg"
    cfg.write_text(ARTIFACTS[name])
    assert _run("sh", "-n", str(cfg)).returncode == 0
    res = _run("sh", "-c", f'. {cfg}; printf "%s\\n%s\\n" "$GRUB_DEFAULT" "$GRUB_CMDLINE_XEN_DEFAULT"')
    assert res.stdout.splitlines() == ["Debian GNU/Linux, with Xen hypervisor", "dom0_mem=2048M,max:2048M"]

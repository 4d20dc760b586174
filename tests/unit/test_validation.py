"""Every bad input fails at construction with resource, field, value and what is allowed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ringzero.spec import (
    AppArmorProfileSpec,
    BaseImageSpec,
    EbpfAgentSpec,
    FileRule,
    FirewallRule,
    FirewallSpec,
    HostSpec,
    LandlockSpec,
    NetworkRule,
    NodePolicies,
    SeccompProfileSpec,
    ServiceSpec,
    SliceSpec,
    SocketFilterSpec,
    SpecError,
    SyscallRule,
    Topology,
    VmSpec,
    from_data,
)

HOST = HostSpec("local", vcpus=2, memory_mib=2048)
IMAGE = BaseImageSpec("debian", "local", "/srv/base.qcow2", kernel="/srv/vmlinuz")
RAW_IMAGE = BaseImageSpec("debian", "local", "/srv/base.img", format="raw", kernel="/srv/vmlinuz")
DENY_MKDIR = (SyscallRule(("mkdir",), "SCMP_ACT_ERRNO"),)


def topo(*vms: VmSpec, nodes: tuple[NodePolicies, ...] = (), host: HostSpec = HOST) -> Topology:
    return Topology(hosts=(host,), images=(IMAGE,), vms=vms, nodes=nodes)


# (id, constructor, the message must contain each of these)
CASES: list[tuple[str, Callable[[], Any], tuple[str, ...]]] = [
    # cgroup v2 slices
    ("memory_max-bad-unit", lambda: SliceSpec("web.slice", memory_max="12XB"),
     ("CgroupSlice 'web.slice'", "memory_max='12XB'", "K, M, G or T suffix")),
    ("cpu_weight-zero", lambda: SliceSpec("web.slice", cpu_weight=0),
     ("CgroupSlice 'web.slice'", "cpu_weight=0", "an integer from 1 to 10000")),
    ("cpu_weight-too-big", lambda: SliceSpec("web.slice", cpu_weight=10001),
     ("cpu_weight=10001", "an integer from 1 to 10000")),
    ("cpu_weight-bool", lambda: SliceSpec("web.slice", cpu_weight=True),  # type: ignore[arg-type]
     ("cpu_weight=True", "an integer from 1 to 10000")),
    ("memory_high-above-max", lambda: SliceSpec("web.slice", memory_high="1G", memory_max="512M"),
     ("memory_high='1G'", "at most memory_max ('512M')")),
    ("memory_min-above-low", lambda: SliceSpec("web.slice", memory_min="2G", memory_low="1G"),
     ("memory_min='2G'", "at most memory_low")),
    ("memory_max-trailing-newline", lambda: SliceSpec("web.slice", memory_max="512M\n"),
     ("memory_max='512M\\n'", "K, M, G or T suffix")),
    ("memory_min-max-keyword", lambda: SliceSpec("web.slice", memory_min="max"),
     ("memory_min='max'", "byte count")),
    ("io_weight-range", lambda: SliceSpec("web.slice", io_weight=0), ("io_weight=0", "1 to 10000")),
    ("tasks_max-zero", lambda: SliceSpec("web.slice", tasks_max=0), ("tasks_max=0", "an integer from 1")),
    ("cpu_quota-zero", lambda: SliceSpec("web.slice", cpu_quota_percent=0), ("cpu_quota_percent=0",)),
    ("slice-name-no-suffix", lambda: SliceSpec("web"), ("name='web'", "ending in '.slice'")),
    ("slice-name-uppercase", lambda: SliceSpec("Web.slice"), ("name='Web.slice'", "lowercase")),
    ("slice-name-system", lambda: SliceSpec("system.slice"), ("name='system.slice'", "systemd does not own")),
    ("slice-description-newline",
     lambda: SliceSpec("web.slice", description="x\n[Service]\nExecStart=/bin/sh"),
     ("description=", "no newline or control characters")),
    ("slice-service-name", lambda: SliceSpec("web.slice", services=("nginx",)),
     ("services[0]='nginx'", "ending in '.service'")),
    ("slice-parent-undeclared",
     lambda: NodePolicies("vm1", slices=(SliceSpec("web-api.slice"),)),
     ("CgroupSlice 'web-api.slice'", "parent 'web.slice' is declared")),
    ("slice-service-twice",
     lambda: NodePolicies("vm1", slices=(SliceSpec("a.slice", services=("x.service",)),
                                         SliceSpec("b.slice", services=("x.service",)))),
     ("services='x.service'", "already in 'a.slice'")),
    # seccomp
    ("syscall-unknown", lambda: SeccompProfileSpec("p", rules=(SyscallRule(("mkdirr",), "SCMP_ACT_ALLOW"),)),
     ("SeccompProfile 'p'", "rules[0].names[0]='mkdirr'", "libseccomp knows on x86_64")),
    ("syscall-unknown-on-arch",
     lambda: SeccompProfileSpec("p", architecture="aarch64", rules=(SyscallRule(("open",), "SCMP_ACT_ALLOW"),)),
     ("names[0]='open'", "libseccomp knows on aarch64")),
    ("seccomp-action", lambda: SeccompProfileSpec("p", rules=(SyscallRule(("read",), "ALLOW"),)),
     ("rules[0].action='ALLOW'", "'SCMP_ACT_ALLOW'")),
    ("seccomp-arch", lambda: SeccompProfileSpec("p", architecture="mips", rules=DENY_MKDIR),
     ("architecture='mips'", "'x86_64'")),
    ("seccomp-errno", lambda: SeccompProfileSpec("p", default_errno="EWHATEVER", rules=DENY_MKDIR),
     ("default_errno='EWHATEVER'", "'EPERM'")),
    ("seccomp-systemd-mixed",
     lambda: SeccompProfileSpec("p", default_action="SCMP_ACT_LOG", rules=DENY_MKDIR, services=("a.service",)),
     ("services=('a.service',)", "a deny list")),
    ("seccomp-no-rules", lambda: SeccompProfileSpec("p"), ("rules=()", "at least one SyscallRule")),
    # Landlock rulesets
    ("landlock-relative-path", lambda: LandlockSpec("l", read_only=("etc",)),
     ("Landlock 'l'", "read_only[0]='etc'", "an absolute path")),
    ("landlock-dotdot-path", lambda: LandlockSpec("l", read_write=("/srv/../etc",)),
     ("Landlock 'l'", "read_write[0]='/srv/../etc'", "without '..'")),
    ("landlock-trailing-slash", lambda: LandlockSpec("l", execute=("/usr/",)),
     ("Landlock 'l'", "execute[0]='/usr/'", "without a trailing '/'")),
    ("landlock-port-range", lambda: LandlockSpec("l", bind_tcp=(70000,)),
     ("Landlock 'l'", "bind_tcp[0]=70000", "an integer from 1 to 65535")),
    ("landlock-port-zero", lambda: LandlockSpec("l", connect_tcp=(0,)),
     ("Landlock 'l'", "connect_tcp[0]=0", "an integer from 1 to 65535")),
    ("landlock-unknown-right", lambda: LandlockSpec("l", read_only=("/etc",), handled_fs=("read_files",)),
     ("Landlock 'l'", "handled_fs[0]='read_files'", "one of 'execute', 'write_file'", "'ioctl_dev'")),
    ("landlock-net-right-in-fs", lambda: LandlockSpec("l", read_only=("/etc",), handled_fs=("bind_tcp",)),
     ("Landlock 'l'", "handled_fs[0]='bind_tcp'", "declaring bind_tcp / connect_tcp ports")),
    ("landlock-mode", lambda: LandlockSpec("l", mode="permissive", read_only=("/etc",)),
     ("Landlock 'l'", "mode='permissive'", "one of 'strict', 'best_effort'")),
    ("landlock-empty", lambda: LandlockSpec("l"), ("Landlock 'l'", "read_only=()", "at least one path")),
    ("landlock-service-name", lambda: LandlockSpec("l", read_only=("/etc",), services=("web",)),
     ("Landlock 'l'", "services[0]='web'", "ending in '.service'")),
    ("landlock-service-not-installed",
     lambda: NodePolicies("vm1", landlock=(LandlockSpec("l", read_only=("/etc",), services=("web.service",)),)),
     ("Node 'vm1'", "services='web.service'", "a ServiceSpec", "Landlock 'l'")),
    # AppArmor
    ("apparmor-name-slash", lambda: AppArmorProfileSpec("../evil"), ("AppArmorProfile '../evil'", "no '/'")),
    ("apparmor-name-brace", lambda: AppArmorProfileSpec("x}"), ("name='x}'", "braces")),
    ("apparmor-path-relative", lambda: AppArmorProfileSpec("p", files=(FileRule("etc/passwd", "r"),)),
     ("files[0].path='etc/passwd'", "an absolute path")),
    ("apparmor-path-rule-injection",
     lambda: AppArmorProfileSpec("p", files=(FileRule("/tmp/x r,\n  /** rwx", "r"),)),
     ("files[0].path=", "no spaces, quotes, braces, commas, '#' or newlines")),
    ("apparmor-path-comment", lambda: AppArmorProfileSpec("p", files=(FileRule("/tmp/#x", "r"),)),
     ("files[0].path='/tmp/#x'",)),
    ("apparmor-path-dotdot", lambda: AppArmorProfileSpec("p", attach="/usr/bin/../../etc/x"),
     ("attach='/usr/bin/../../etc/x'", "without '..'")),
    ("apparmor-perms", lambda: AppArmorProfileSpec("p", files=(FileRule("/tmp/x", "rr"),)),
     ("files[0].perms='rr'", "each once")),
    ("apparmor-mode", lambda: AppArmorProfileSpec("p", mode="audit"), ("mode='audit'", "'enforce', 'complain'")),
    ("apparmor-capability", lambda: AppArmorProfileSpec("p", capabilities=("god_mode",)),
     ("capabilities[0]='god_mode'", "'net_bind_service'")),
    ("apparmor-network", lambda: AppArmorProfileSpec("p", network=(NetworkRule("ipx"),)),
     ("network[0].family='ipx'", "'inet'")),
    ("apparmor-raw-name", lambda: AppArmorProfileSpec("p", raw="profile other { }"),
     ("raw='other'", "profile p")),
    # eBPF
    ("bpftrace-syntax", lambda: EbpfAgentSpec("a", program='BEGIN { printf("x\\n" exit(); }'),
     ("EbpfAgent 'a'", "a program bpftrace parses", "syntax error")),
    ("bpftrace-both", lambda: EbpfAgentSpec("a", program="BEGIN { exit(); }", tool="execsnoop.bt"),
     ("exactly one of program",)),
    ("bpftrace-tool-path", lambda: EbpfAgentSpec("a", tool="../../bin/sh"), ("tool='../../bin/sh'",)),
    ("ebpf-output-relative", lambda: EbpfAgentSpec("a", tool="execsnoop.bt", output="log.txt"),
     ("output='log.txt'", "an absolute path")),
    ("ebpf-restart", lambda: EbpfAgentSpec("a", tool="execsnoop.bt", restart="sometimes"),
     ("restart='sometimes'", "'always'")),
    # hosts
    ("host-kind", lambda: HostSpec("h", kind="vmware"),
     ("HypervisorHost 'h'", "kind='vmware'", "'kvm', 'xen', 'hyperv', 'bhyve'")),
    ("host-uri-scheme", lambda: HostSpec("h", uri="http://example/system"),
     ("uri='http://example/system'", "scheme one of qemu")),
    ("host-uri-kind-mismatch", lambda: HostSpec("h", kind="xen", uri="qemu:///system"),
     ("uri='qemu:///system'", "for a xen host")),
    ("host-uri-ssh-no-host", lambda: HostSpec("h", uri="qemu+ssh:///system"), ("ssh transports need a host",)),
    ("host-uri-newline", lambda: HostSpec("h", uri="qemu:///system\n"), ("uri='qemu:///system\\n'",)),
    ("host-domain-type", lambda: HostSpec("h", kind="xen", uri="xen:///system", domain_type="kvm"),
     ("domain_type='kvm'", "'xen'")),
    ("host-vcpus-zero", lambda: HostSpec("h", vcpus=0), ("vcpus=0", "an integer from 1")),
    ("host-overcommit", lambda: HostSpec("h", cpu_overcommit=0.5), ("cpu_overcommit=0.5", "1.0 to 16.0")),
    ("host-via-vm-uri", lambda: HostSpec("h", uri="qemu:///system", via_vm="vm1"),
     ("uri='qemu:///system'", "with via_vm")),
    ("host-via-vm-unknown",
     lambda: Topology(hosts=(HOST, HostSpec("inner", uri="qemu+ssh://root@127.0.0.1:2201/system", via_vm="vm9")),
                      images=(IMAGE,), vms=(VmSpec("vm1", "local", "debian", ssh_port=2201),)),
     ("HypervisorHost 'inner'", "via_vm='vm9'", "declared VMs: 'vm1'")),
    ("host-via-vm-port",
     lambda: Topology(hosts=(HOST, HostSpec("inner", uri="qemu+ssh://root@127.0.0.1:2299/system", via_vm="vm1")),
                      images=(IMAGE,), vms=(VmSpec("vm1", "local", "debian", ssh_port=2201),)),
     ("uri='qemu+ssh://root@127.0.0.1:2299/system'", "port 2201")),
    # VMs, images, scheduling
    ("vm-hostname", lambda: VmSpec("Web_1", "local", "debian"), ("VirtualMachine 'Web_1'", "RFC 1123")),
    ("vm-hostname-dash", lambda: VmSpec("-web", "local", "debian"), ("name='-web'", "RFC 1123")),
    ("vm-vcpus-zero", lambda: VmSpec("vm1", "local", "debian", vcpus=0), ("vcpus=0", "an integer from 1")),
    ("vm-memory-zero", lambda: VmSpec("vm1", "local", "debian", memory_mib=0), ("memory_mib=0", "from 128")),
    ("vm-kernel-args", lambda: VmSpec("vm1", "local", "debian", kernel_args="quiet; rm -rf /"),
     ("kernel_args='quiet; rm -rf /'",)),
    ("vm-ssh-port-privileged", lambda: VmSpec("vm1", "local", "debian", ssh_port=22), ("ssh_port=22", "1024")),
    ("vm-name-collision", lambda: topo(VmSpec("vm1", "local", "debian"), VmSpec("vm1", "local", "debian")),
     ("VirtualMachine 'vm1'", "not yet used on host 'local'")),
    ("vm-unknown-host", lambda: topo(VmSpec("vm1", "other", "debian")),
     ("host='other'", "one of the declared hosts: 'local'")),
    ("vm-unknown-image", lambda: topo(VmSpec("vm1", "local", "ubuntu")),
     ("image='ubuntu'", "images declared on host 'local': 'debian'")),
    ("vm-port-collision",
     lambda: topo(VmSpec("vm1", "local", "debian", ssh_port=2201), VmSpec("vm2", "local", "debian", ssh_port=2201)),
     ("VirtualMachine 'vm2'", "ssh_port=2201", "used by 'vm1'")),
    ("schedule-vcpus",
     lambda: topo(VmSpec("vm1", "local", "debian", vcpus=2), VmSpec("vm2", "local", "debian", vcpus=1)),
     ("VirtualMachine 'vm2'", "vcpus=1", "at most 0 on host 'local'", "cpu_overcommit 1", "vm1")),
    ("schedule-memory", lambda: topo(VmSpec("vm1", "local", "debian", memory_mib=4096)),
     ("memory_mib=4096", "at most 2048 on host 'local'")),
    ("image-source-relative", lambda: BaseImageSpec("debian", "local", "base.qcow2"), ("source='base.qcow2'",)),
    ("image-format", lambda: BaseImageSpec("debian", "local", "/srv/b.vmdk", format="vmdk"), ("format='vmdk'",)),
    ("node-unknown", lambda: topo(nodes=(NodePolicies("ghost"),)),
     ("Node 'ghost'", "one of the declared hosts and VMs")),
    ("config-unknown-field", lambda: from_data({"hosts": [{"name": "h", "cpus": 4}]}),
     ("HostSpec 'h'", "cpus=4", "the fields name, kind, uri, vcpus")),
    # workload services: nothing in exec_start may start a new directive or a shell
    ("service-exec-newline", lambda: ServiceSpec("web.service", "/bin/sleep 1\nExecStartPre=/bin/rm -rf /"),
     ("Service 'web.service'", "exec_start=", "no quotes, '$', '%', ';', '#', backslashes or newlines")),
    ("service-exec-relative", lambda: ServiceSpec("web.service", "sleep infinity"),
     ("exec_start='sleep infinity'", "the first an absolute path")),
    ("service-exec-shell", lambda: ServiceSpec("web.service", "/bin/sh -c 'rm; ls'"), ("exec_start=",)),
    ("service-exec-specifier", lambda: ServiceSpec("web.service", "/bin/echo %h"), ("exec_start='/bin/echo %h'",)),
    ("service-name", lambda: ServiceSpec("web", "/bin/true"), ("name='web'", "ending in '.service'")),
    ("service-agent-name", lambda: ServiceSpec("ringzero-ebpf-x.service", "/bin/true"),
     ("outside 'ringzero-ebpf-*'",)),
    ("service-user", lambda: ServiceSpec("web.service", "/bin/true", user="Root User"),
     ("user='Root User'", "a POSIX user name")),
    ("service-restart", lambda: ServiceSpec("web.service", "/bin/true", restart="sometimes"),
     ("restart='sometimes'", "'always', 'on-failure', 'no'")),
    ("service-description-newline", lambda: ServiceSpec("web.service", "/bin/true", description="a\n[Service]"),
     ("description=", "no newline")),
    ("service-max-exposure-above-10", lambda: ServiceSpec("web.service", "/bin/true", max_exposure=10.5),
     ("Service 'web.service'", "max_exposure=10.5", "a number from 0.0 to 10.0")),
    ("service-max-exposure-negative", lambda: ServiceSpec("web.service", "/bin/true", max_exposure=-1),
     ("max_exposure=-1", "a number from 0.0 to 10.0")),
    ("service-max-exposure-string", lambda: ServiceSpec("web.service", "/bin/true", max_exposure="5"),  # type: ignore[arg-type]
     ("max_exposure='5'", "a number from 0.0 to 10.0")),
    ("service-max-exposure-bool", lambda: ServiceSpec("web.service", "/bin/true", max_exposure=True),
     ("max_exposure=True", "a number from 0.0 to 10.0")),
    ("service-max-exposure-nan", lambda: ServiceSpec("web.service", "/bin/true", max_exposure=float("nan")),
     ("max_exposure=nan", "a number from 0.0 to 10.0")),
    ("service-duplicate",
     lambda: NodePolicies("vm1", services=(ServiceSpec("a.service", "/bin/true"),) * 2),
     ("Node 'vm1'", "services='a.service'", "each services name once per node")),
    # --- issue 12 part 3: what would fail or harm, refused at preview -------------------------
    # sizes systemd 252 ignores ("out of range, ignoring"), leaving the slice without a limit
    ("memory_max-zero", lambda: SliceSpec("web.slice", memory_max=0),
     ("CgroupSlice 'web.slice'", "memory_max=0", "from 1 to 18446744073709551614 bytes", "systemd ignores 0")),
    ("memory_high-zero-string", lambda: SliceSpec("web.slice", memory_high="0"),
     ("memory_high='0'", "systemd ignores 0", "or 'max'")),
    ("memory_max-zero-percent", lambda: SliceSpec("web.slice", memory_max="0%"),
     ("memory_max='0%'", "from 0.01% to 100%")),
    ("memory_max-uint64-max", lambda: SliceSpec("web.slice", memory_max=2**64 - 1),
     ("memory_max=18446744073709551615", "to 18446744073709551614 bytes")),
    ("memory_max-terabytes-overflow", lambda: SliceSpec("web.slice", memory_max="16777216T"),
     ("memory_max='16777216T'", "to 18446744073709551614 bytes")),
    ("memory_max-percent-over-100", lambda: SliceSpec("web.slice", memory_max="101%"),
     ("memory_max='101%'", "to 100% with at most two decimals")),
    ("memory_low-percent-three-decimals", lambda: SliceSpec("web.slice", memory_low="1.234%"),
     ("memory_low='1.234%'", "at most two decimals")),
    ("memory-percent-order", lambda: SliceSpec("web.slice", memory_high="60%", memory_max="50%"),
     ("memory_high='60%'", "at most memory_max ('50%')")),
    ("tasks_max-zero-percent", lambda: SliceSpec("web.slice", tasks_max="0%"),
     ("tasks_max='0%'", "'infinity'", "from 0.01% to 100%")),
    ("tasks_max-max-keyword", lambda: SliceSpec("web.slice", tasks_max="max"),
     ("tasks_max='max'", "'infinity'")),
    ("cpu_weight-idle-uppercase", lambda: SliceSpec("web.slice", cpu_weight="IDLE"),
     ("cpu_weight='IDLE'", "an integer from 1 to 10000, or 'idle'")),
    # an agent's output: bpftrace truncates it on every start
    ("ebpf-output-etc-passwd", lambda: EbpfAgentSpec("a", tool="execsnoop.bt", output="/etc/passwd"),
     ("EbpfAgent 'a'", "output='/etc/passwd'", "directly in /var/log/ringzero", "ending in '.log'")),
    ("ebpf-output-dotdot",
     lambda: EbpfAgentSpec("a", tool="execsnoop.bt", output="/var/log/ringzero/../../../etc/shadow.log"),
     ("output='/var/log/ringzero/../../../etc/shadow.log'", "no '..'")),
    ("ebpf-output-subdirectory",
     lambda: EbpfAgentSpec("a", tool="execsnoop.bt", output="/var/log/ringzero/x/y.log"),
     ("output='/var/log/ringzero/x/y.log'", "no subdirectories")),
    ("ebpf-program-include",
     lambda: EbpfAgentSpec("a", program='#include "/tmp/fifo"\nBEGIN { exit(); }'),
     ("program='#include \"/tmp/fifo\"'", "no #include")),
    ("ebpf-two-agents-one-output",
     lambda: NodePolicies("vm1", ebpf=(
         EbpfAgentSpec("a", tool="execsnoop.bt", output="/var/log/ringzero/x.log"),
         EbpfAgentSpec("b", tool="opensnoop.bt", output="/var/log/ringzero/x.log"))),
     ("Node 'vm1'", "files='/var/log/ringzero/x.log'", "written by both EbpfAgent 'a' (its output) and EbpfAgent 'b'")),
    # raw AppArmor text: one profile, in the declared mode
    ("apparmor-raw-second-profile",
     lambda: AppArmorProfileSpec("p", raw="profile p {\n}\nprofile sshd /usr/sbin/sshd {\n}\n"),
     ("raw='profile sshd /usr/sbin/sshd {'", "exactly one top-level profile block", "'profile p ...'")),
    ("apparmor-raw-path-profile",
     lambda: AppArmorProfileSpec("p", raw="profile p {\n}\n/usr/sbin/cupsd {\n  /** rwl,\n}\n"),
     ("raw='/usr/sbin/cupsd {'", "a path-named block would define another profile")),
    ("apparmor-raw-flags-contradict-mode",
     lambda: AppArmorProfileSpec("p", mode="enforce", raw="profile p flags=(attach_disconnected,complain) {\n}\n"),
     ("raw='profile p flags=(attach_disconnected,complain) {'", "flags that agree with mode='enforce'",
      "no complain")),
    ("apparmor-raw-unconfined-in-complain",
     lambda: AppArmorProfileSpec("p", mode="complain", raw="profile p flags=(unconfined) {\n}\n"),
     ("flags that agree with mode='complain'", "no unconfined")),
    ("apparmor-raw-include-profile",
     lambda: AppArmorProfileSpec("p", raw="include <usr.bin.man>\nprofile p {\n}\n"),
     ("raw='include <usr.bin.man>'", "only of <tunables/...>")),
    ("apparmor-perms-write-and-append", lambda: AppArmorProfileSpec("p", files=(FileRule("/tmp/x", "wa"),)),
     ("files[0].perms='wa'", "not both w and a")),
    ("apparmor-perms-bare-x", lambda: AppArmorProfileSpec("p", files=(FileRule("/tmp/x", "rx"),)),
     ("files[0].perms='rx'", "x without an exec qualifier")),
    ("apparmor-perms-deny-qualified",
     lambda: AppArmorProfileSpec("p", files=(FileRule("/tmp/x", "ix", deny=True),)),
     ("files[0].perms='ix'", "an exec qualifier in a deny rule")),
    ("apparmor-perms-two-exec-modes", lambda: AppArmorProfileSpec("p", files=(FileRule("/tmp/x", "ixpx"),)),
     ("files[0].perms='ixpx'", "at most one exec mode")),
    # names the OS or its packages own: refused unless adopted
    ("apparmor-debian-path-name", lambda: AppArmorProfileSpec("usr.sbin.cupsd"),
     ("AppArmorProfile 'usr.sbin.cupsd'", "name='usr.sbin.cupsd'",
      "set adopt: true to take it over (the original is saved and restored on removal)")),
    ("apparmor-debian-short-name", lambda: AppArmorProfileSpec("lsb_release"),
     ("name='lsb_release'", "set adopt: true")),
    ("apparmor-directory-name", lambda: AppArmorProfileSpec("abstractions", adopt=True),
     ("name='abstractions'", "not a directory of /etc/apparmor.d")),
    ("service-os-ssh", lambda: ServiceSpec("ssh.service", "/usr/sbin/sshd -D"),
     ("Service 'ssh.service'", "name='ssh.service'", "'ssh.service'",
      "set adopt: true to take it over (the original is saved and restored on removal)")),
    ("service-os-systemd", lambda: ServiceSpec("systemd-journald.service", "/bin/true"),
     ("name='systemd-journald.service'", "'systemd-*'", "set adopt: true")),
    ("service-os-getty", lambda: ServiceSpec("getty@tty1.service", "/bin/true"),
     ("name='getty@tty1.service'", "'getty@*'")),
    ("service-adopt-not-bool", lambda: ServiceSpec("web.service", "/bin/true", adopt="yes"),  # type: ignore[arg-type]
     ("adopt='yes'", "true or false")),
    # libvirt URI parameters that switch off checks or run programs
    ("host-uri-no-verify", lambda: HostSpec("h", uri="qemu+ssh://root@h.example/system?no_verify=1"),
     ("HypervisorHost 'h'", "uri='qemu+ssh://root@h.example/system?no_verify=1'", "without no_verify=",
      "host key")),
    ("host-uri-known-hosts-ignore",
     lambda: HostSpec("h", uri="qemu+ssh://root@h.example/system?known_hosts_verify=ignore"),
     ("known_hosts_verify= 'normal'", "weaken host-key checking")),
    ("host-uri-known-hosts-auto",
     lambda: HostSpec("h", uri="qemu+ssh://root@h.example/system?known_hosts_verify=auto"),
     ("known_hosts_verify= 'normal'",)),
    ("host-uri-command", lambda: HostSpec("h", uri="qemu+ssh://root@h.example/system?command=/tmp/evil"),
     ("without command=", "runs a local program")),
    ("host-uri-netcat", lambda: HostSpec("h", uri="qemu+ssh://root@h.example/system?netcat=/tmp/nc"),
     ("without netcat=", "on the remote host")),
    ("host-uri-socket", lambda: HostSpec("h", uri="qemu+ssh://root@h.example/system?socket=/tmp/s"),
     ("without socket=",)),
    ("host-uri-unknown-param", lambda: HostSpec("h", uri="qemu+ssh://root@h.example/system?foo=1"),
     ("uri='qemu+ssh://root@h.example/system?foo=1'", "URI parameters among keyfile")),
    ("host-uri-param-twice",
     lambda: HostSpec("h", uri="qemu+ssh://root@h.example/system?keyfile=/a&keyfile=/b"), ("each once",)),
    # Hyper-V hosts: hyperv://[user@]host[:port]/[?transport=https|http] (client-side driver)
    ("hyperv-uri-transport-scheme", lambda: HostSpec("h", kind="hyperv", uri="hyperv+ssh://hv1.example/"),
     ("HypervisorHost 'h'", "uri='hyperv+ssh://hv1.example/'", "for a hyperv host", "hyperv://[user@]host")),
    ("hyperv-uri-qemu", lambda: HostSpec("h", kind="hyperv", uri="qemu:///system"),
     ("uri='qemu:///system'", "scheme one of hyperv")),
    ("hyperv-uri-no-host", lambda: HostSpec("h", kind="hyperv", uri="hyperv:///"),
     ("uri='hyperv:///'", "a host is required")),
    ("hyperv-uri-path", lambda: HostSpec("h", kind="hyperv", uri="hyperv://hv1.example/system"),
     ("uri='hyperv://hv1.example/system'", "the path is empty or '/'")),
    ("hyperv-uri-port", lambda: HostSpec("h", kind="hyperv", uri="hyperv://hv1.example:70000/"),
     ("uri='hyperv://hv1.example:70000/'", "port from 1 to 65535")),
    ("hyperv-uri-transport", lambda: HostSpec("h", kind="hyperv", uri="hyperv://hv1.example/?transport=ftp"),
     ("uri='hyperv://hv1.example/?transport=ftp'", "transport=https or transport=http")),
    ("hyperv-uri-transport-twice",
     lambda: HostSpec("h", kind="hyperv", uri="hyperv://hv1.example/?transport=http&transport=https"),
     ("transport=https or transport=http, once",)),
    ("hyperv-uri-unknown-param", lambda: HostSpec("h", kind="hyperv", uri="hyperv://hv1.example/?no_verify=1"),
     ("uri='hyperv://hv1.example/?no_verify=1'", "the one URI parameter the hyperv driver reads",
      "ignores every other parameter")),
    ("hyperv-domain-type", lambda: HostSpec("h", kind="hyperv", uri="hyperv://hv1.example/", domain_type="kvm"),
     ("domain_type='kvm'", "one of 'hyperv'")),
    ("hyperv-vm-kernel-boot",
     lambda: Topology(hosts=(HostSpec("local", kind="hyperv", uri="hyperv://hv1.example/", vcpus=2),),
                      images=(IMAGE,), vms=(VmSpec("vm1", "local", "debian"),)),
     ("VirtualMachine 'vm1'", "boot='kernel'", "'bootloader' on hyperv host 'local'", "boots the VM's disk")),
    ("hyperv-vm-ssh-port",
     lambda: Topology(hosts=(HostSpec("local", kind="hyperv", uri="hyperv://hv1.example/", vcpus=2),),
                      images=(IMAGE,), vms=(VmSpec("vm1", "local", "debian", boot="bootloader", ssh_port=2201),)),
     ("VirtualMachine 'vm1'", "ssh_port=2201", "none on hyperv host 'local'", "QEMU user networking")),
    # bhyve hosts: bhyve[+ssh|+tls|+unix]://…/system (FreeBSD)
    ("bhyve-uri-qemu", lambda: HostSpec("h", kind="bhyve", uri="qemu:///system"),
     ("uri='qemu:///system'", "for a bhyve host", "scheme one of bhyve, bhyve+ssh")),
    ("bhyve-uri-session", lambda: HostSpec("h", kind="bhyve", uri="bhyve:///session"),
     ("uri='bhyve:///session'", "the bhyve driver opens /system only")),
    ("bhyve-uri-local-with-host", lambda: HostSpec("h", kind="bhyve", uri="bhyve://freebsd1.example/system"),
     ("uri='bhyve://freebsd1.example/system'", "a host goes with bhyve+ssh or bhyve+tls")),
    ("bhyve-uri-ssh-no-host", lambda: HostSpec("h", kind="bhyve", uri="bhyve+ssh:///system"),
     ("ssh transports need a host",)),
    ("bhyve-uri-no-verify", lambda: HostSpec("h", kind="bhyve", uri="bhyve+ssh://root@f.example/system?no_verify=1"),
     ("without no_verify=", "host key")),
    ("bhyve-domain-type", lambda: HostSpec("h", kind="bhyve", uri="bhyve:///system", domain_type="qemu"),
     ("domain_type='qemu'", "one of 'bhyve'")),
    ("bhyve-image-qcow2",
     lambda: Topology(hosts=(HostSpec("local", kind="bhyve", uri="bhyve:///system", vcpus=2),), images=(IMAGE,)),
     ("BaseImage 'debian'", "format='qcow2'", "'raw' on bhyve host 'local'", "no qcow2")),
    ("bhyve-vm-kernel-boot",
     lambda: Topology(hosts=(HostSpec("local", kind="bhyve", uri="bhyve:///system", vcpus=2),),
                      images=(RAW_IMAGE,), vms=(VmSpec("vm1", "local", "debian"),)),
     ("VirtualMachine 'vm1'", "boot='kernel'", "'bootloader' on bhyve host 'local'")),
    ("bhyve-vm-ssh-port",
     lambda: Topology(hosts=(HostSpec("local", kind="bhyve", uri="bhyve:///system", vcpus=2),),
                      images=(RAW_IMAGE,), vms=(VmSpec("vm1", "local", "debian", boot="bootloader", ssh_port=2201),)),
     ("ssh_port=2201", "none on bhyve host 'local'")),
    # image paths: no '.' or '..' components
    ("image-source-dot", lambda: BaseImageSpec("debian", "local", "/srv/./base.qcow2"),
     ("BaseImage 'debian'", "source='/srv/./base.qcow2'", "without '.' or '..' components")),
    ("image-kernel-dotdot", lambda: BaseImageSpec("debian", "local", "/srv/b.qcow2", kernel="/srv/../etc/vmlinuz"),
     ("kernel='/srv/../etc/vmlinuz'", "without '..'")),
    ("image-initrd-trailing-dotdot",
     lambda: BaseImageSpec("debian", "local", "/srv/b.qcow2", kernel="/srv/k", initrd="/srv/x/.."),
     ("initrd='/srv/x/..'", "without '..'")),
    # wrong shapes in stack config / Python dicts: a SpecError naming the field, no traceback
    ("config-null-list", lambda: from_data({"hosts": [], "nodes": [{"node": "vm1", "slices": None}]}),
     ("NodePolicies 'vm1'", "slices=None", "a list")),
    ("config-string-for-list",
     lambda: from_data({"nodes": [{"node": "vm1", "slices": [{"name": "a.slice", "services": "x.service"}]}]}),
     ("SliceSpec 'a.slice'", "services='x.service'", "a list")),
    ("config-string-for-bool", lambda: from_data({"vms": [{"name": "v", "host": "h", "image": "i", "running": "no"}]}),
     ("VmSpec 'v'", "running='no'", "true or false")),
    ("config-number-for-object", lambda: from_data({"hosts": [5]}),
     ("hosts[0]=5", "a mapping (HostSpec)")),
    # network policy: Firewall (nftables) and SocketFilter (systemd cgroup eBPF)
    ("firewall-port-zero", lambda: FirewallSpec("web", rules=(FirewallRule("in", ports=(0,)),)),
     ("Firewall 'web'", "rules[0].ports[0]=0", "a port from 1 to 65535")),
    ("firewall-port-too-big", lambda: FirewallSpec("web", rules=(FirewallRule("in", ports=(8080, 70000)),)),
     ("Firewall 'web'", "rules[0].ports[1]=70000", "a port from 1 to 65535")),
    ("firewall-port-range-backwards", lambda: FirewallSpec("web", rules=(FirewallRule("in", ports=("90-80",)),)),
     ("rules[0].ports[0]='90-80'", "1 <= LO <= HI <= 65535")),
    ("firewall-port-bool", lambda: FirewallSpec("web", rules=(FirewallRule("in", ports=(True,)),)),
     ("rules[0].ports[0]=True", "a port from 1 to 65535")),
    ("firewall-address-host-bits", lambda: FirewallSpec("web", rules=(FirewallRule("in", addresses=("10.0.0.1/8",)),)),
     ("Firewall 'web'", "rules[0].addresses[0]='10.0.0.1/8'", "no host bits set")),
    ("firewall-address-bad-octet",
     lambda: FirewallSpec("web", rules=(FirewallRule("out", addresses=("300.0.0.0/8",)),)),
     ("rules[0].addresses[0]='300.0.0.0/8'", "IPv4 or IPv6 address or network prefix")),
    ("firewall-address-bad-prefix",
     lambda: FirewallSpec("web", rules=(FirewallRule("out", addresses=("fd00::/129",)),)),
     ("rules[0].addresses[0]='fd00::/129'", "IPv4 or IPv6")),
    ("firewall-address-hostname", lambda: FirewallSpec("web", rules=(FirewallRule("out", addresses=("example.org",)),)),
     ("rules[0].addresses[0]='example.org'", "IPv4 or IPv6")),
    ("firewall-direction", lambda: FirewallSpec("web", rules=(FirewallRule("forward"),)),
     ("Firewall 'web'", "rules[0].direction='forward'", "one of 'in', 'out'")),
    ("firewall-protocol", lambda: FirewallSpec("web", rules=(FirewallRule("in", protocol="sctp"),)),
     ("rules[0].protocol='sctp'", "one of 'tcp', 'udp', 'icmp', 'icmpv6', 'any'")),
    ("firewall-action", lambda: FirewallSpec("web", rules=(FirewallRule("in", action="allow"),)),
     ("rules[0].action='allow'", "one of 'accept', 'drop', 'reject'")),
    ("firewall-policy", lambda: FirewallSpec("web", input_policy="reject"),
     ("input_policy='reject'", "one of 'accept', 'drop'")),
    ("firewall-ports-with-icmp", lambda: FirewallSpec("web", rules=(FirewallRule("in", protocol="icmp", ports=(7,)),)),
     ("rules[0].ports=(7,)", "ports only with 'tcp' or 'udp'")),
    ("firewall-icmp-v6-address", lambda: FirewallSpec("web", rules=(FirewallRule("in", protocol="icmp",
                                                                                 addresses=("fd00::/8",)),)),
     ("rules[0].addresses=('fd00::/8',)", "IPv4 addresses only with protocol 'icmp'")),
    ("firewall-name-dash", lambda: FirewallSpec("my-fw", input_policy="drop"),
     ("Firewall 'my-fw'", "name='my-fw'", "a-z, 0-9 and '_'")),
    ("firewall-management-port", lambda: FirewallSpec("web", input_policy="drop", management_port=0),
     ("management_port=0", "an integer from 1 to 65535")),
    ("firewall-nothing-declared", lambda: FirewallSpec("web"),
     ("Firewall 'web'", "rules=()", "at least one FirewallRule, or a default policy of 'drop'")),
    ("firewall-slice-name", lambda: FirewallSpec("web", rules=(FirewallRule("out", slice="web"),)),
     ("rules[0].slice='web'", "ending in '.slice'")),
    ("firewall-two-claim-one-slice", lambda: NodePolicies("vm1", firewall=(
        FirewallSpec("a", rules=(FirewallRule("out", slice="web.slice"),)),
        FirewallSpec("b", rules=(FirewallRule("in", ports=(80,)), FirewallRule("out", slice="web.slice"))))),
     ("Firewall 'b'", "rules[1].slice='web.slice'", "one Firewall per node (already by Firewall 'a'")),
    ("firewall-same-table-twice", lambda: NodePolicies("vm1", firewall=(
        FirewallSpec("a", input_policy="drop"), FirewallSpec("a", output_policy="drop"))),
     ("Node 'vm1'", "firewall='a'", "each firewall name once per node")),
    ("sockfilter-ip-host-bits", lambda: SocketFilterSpec("f", ("web.service",), ip_allow=("10.0.0.1/8",)),
     ("SocketFilter 'f'", "ip_allow[0]='10.0.0.1/8'", "'localhost'")),
    ("sockfilter-ip-word", lambda: SocketFilterSpec("f", ("web.service",), ip_deny=("everything",)),
     ("ip_deny[0]='everything'", "one of 'any', 'localhost', 'link-local', 'multicast'")),
    ("sockfilter-bind-port-zero", lambda: SocketFilterSpec("f", ("web.service",), bind_allow=("tcp:0",)),
     ("bind_allow[0]='tcp:0'", "[ipv4:|ipv6:][tcp:|udp:]PORTS")),
    ("sockfilter-bind-protocol", lambda: SocketFilterSpec("f", ("web.service",), bind_deny=("sctp:80",)),
     ("bind_deny[0]='sctp:80'", "[ipv4:|ipv6:][tcp:|udp:]PORTS")),
    ("sockfilter-bind-range-backwards", lambda: SocketFilterSpec("f", ("web.service",), bind_deny=("9000-8000",)),
     ("bind_deny[0]='9000-8000'", "a range 'LO-HI'")),
    ("sockfilter-empty", lambda: SocketFilterSpec("f", ("web.service",)),
     ("SocketFilter 'f'", "at least one entry in ip_allow, ip_deny, bind_allow or bind_deny")),
    ("sockfilter-service-name", lambda: SocketFilterSpec("f", ("web",), ip_deny=("any",)),
     ("services[0]='web'",)),
    ("sockfilter-two-claim-one-service", lambda: NodePolicies("vm1", sockfilter=(
        SocketFilterSpec("a", ("web.service",), ip_deny=("any",)),
        SocketFilterSpec("b", ("db.service", "web.service"), bind_deny=("any",)))),
     ("SocketFilter 'b'", "services[1]='web.service'", "one SocketFilter per node (already in 'a'")),
]


@pytest.mark.parametrize(("build", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_names_resource_field_and_allowed(build: Callable[[], Any], expected: tuple[str, ...]) -> None:
    with pytest.raises(SpecError) as err:
        build()
    for text in expected:
        assert text in str(err.value), f"{text!r} not in {err.value}"
    assert "allowed: " in str(err.value)


def test_at_least_thirty_distinct_cases() -> None:
    assert len({c[0] for c in CASES}) == len(CASES) >= 30


def test_good_specs_construct() -> None:
    t = topo(VmSpec("vm1", "local", "debian", vcpus=1, memory_mib=1024, ssh_port=2201),
             nodes=(NodePolicies("vm1", slices=(SliceSpec("web.slice"), SliceSpec("web-api.slice"))),))
    assert t.allocations[0].vcpus == 1 and t.allocations[0].vms == ("vm1",)


def test_overcommit_allows_more_vcpus() -> None:
    host = HostSpec("local", vcpus=1, memory_mib=4096, cpu_overcommit=2.0)
    t = topo(VmSpec("vm1", "local", "debian"), VmSpec("vm2", "local", "debian"), host=host)
    assert t.allocations[0].vcpus == 2 and t.allocations[0].vcpu_limit == 2.0


def test_sizes_normalise() -> None:
    s = SliceSpec("web.slice", memory_high="384M", memory_max=536870912)
    assert s.bytes("memory_high") == 384 * 1024**2 and s.bytes("memory_max") == 512 * 1024**2
    assert SliceSpec("x.slice", memory_max="max").bytes("memory_max") is None


def test_slice_parent_and_cgroup_path() -> None:
    s = SliceSpec("web-api-v2.slice")
    assert s.parent == "web-api.slice"
    assert s.cgroup_path == "/sys/fs/cgroup/web.slice/web-api.slice/web-api-v2.slice"
    assert SliceSpec("web.slice").parent is None


# ---- valid but unusual: accepted, and rendered to what systemd / apparmor_parser expect --------

def render_any(spec: Any) -> dict[str, str]:
    """The files a single spec renders (the validate tier feeds them to the real tools)."""
    from ringzero.kinds.apparmor.render import render_apparmor
    from ringzero.kinds.ebpf.render import render_ebpf
    from ringzero.kinds.service.render import render_service
    from ringzero.kinds.slice.render import render_slice

    for kind, fn in ((SliceSpec, render_slice), (AppArmorProfileSpec, render_apparmor),
                     (ServiceSpec, render_service), (EbpfAgentSpec, render_ebpf)):
        if isinstance(spec, kind):
            return fn(spec)  # type: ignore[operator]
    raise TypeError(spec)


RAW_WITH_CHILD = """abi <abi/3.0>,
include <tunables/global>
# a comment, a variable and a child profile are all fine
@{WWW}=/srv/www
profile p /usr/bin/python3.11 flags=(attach_disconnected) {
  include <abstractions/base>
  /etc/{passwd,group} r,
  @{WWW}/** r,
  /usr/bin/env Cx -> helper,
  profile helper {
    /usr/bin/env mr,
  }
}
"""

# (id, constructor, file the directive lands in, each text that file must contain)
ACCEPTED: list[tuple[str, Callable[[], Any], str, tuple[str, ...]]] = [
    ("memory_max-percent", lambda: SliceSpec("web.slice", memory_max="50%"),
     "/etc/systemd/system/web.slice", ("MemoryMax=50%",)),
    ("memory-all-percent",
     lambda: SliceSpec("web.slice", memory_min="5%", memory_low="10%", memory_high="40%", memory_max="50%"),
     "/etc/systemd/system/web.slice", ("MemoryMin=5%", "MemoryLow=10%", "MemoryHigh=40%", "MemoryMax=50%")),
    ("memory_max-percent-decimals", lambda: SliceSpec("web.slice", memory_max="12.5%"),
     "/etc/systemd/system/web.slice", ("MemoryMax=12.5%",)),
    ("memory_max-fraction", lambda: SliceSpec("web.slice", memory_max="1.5G"),
     "/etc/systemd/system/web.slice", ("MemoryMax=1610612736",)),
    ("memory-bytes-and-percent", lambda: SliceSpec("web.slice", memory_high="1G", memory_max="50%"),
     "/etc/systemd/system/web.slice", ("MemoryHigh=1073741824", "MemoryMax=50%")),
    ("memory-min-low-zero", lambda: SliceSpec("web.slice", memory_min=0, memory_low="0"),
     "/etc/systemd/system/web.slice", ("MemoryMin=0", "MemoryLow=0")),
    ("memory_max-largest", lambda: SliceSpec("web.slice", memory_max="16777215T"),
     "/etc/systemd/system/web.slice", ("MemoryMax=18446742974197923840",)),
    ("cpu_weight-idle", lambda: SliceSpec("web.slice", cpu_weight="idle"),
     "/etc/systemd/system/web.slice", ("CPUWeight=idle",)),
    ("tasks_max-infinity", lambda: SliceSpec("web.slice", tasks_max="infinity"),
     "/etc/systemd/system/web.slice", ("TasksMax=infinity",)),
    ("tasks_max-percent", lambda: SliceSpec("web.slice", tasks_max="10%"),
     "/etc/systemd/system/web.slice", ("TasksMax=10%",)),
    ("apparmor-raw-child-profile-and-flags", lambda: AppArmorProfileSpec("p", raw=RAW_WITH_CHILD),
     "/etc/apparmor.d/p", ("profile p /usr/bin/python3.11 flags=(attach_disconnected) {", "profile helper {")),
    ("apparmor-raw-complain-flag-in-complain",
     lambda: AppArmorProfileSpec("p", mode="complain", raw="profile p flags=(complain) {\n  /tmp/x r,\n}\n"),
     "/etc/apparmor.d/p", ("profile p flags=(complain) {",)),
    ("apparmor-exec-qualifiers",
     lambda: AppArmorProfileSpec("p", files=(FileRule("/usr/bin/env", "rPix"), FileRule("/tmp/y", "x", deny=True),
                                             FileRule("/srv/log", "ak"))),
     "/etc/apparmor.d/p", ("/usr/bin/env rPix,", "deny /tmp/y x,", "/srv/log ak,")),
    ("apparmor-adopted-debian-name", lambda: AppArmorProfileSpec("usr.sbin.cupsd", adopt=True),
     "/etc/apparmor.d/usr.sbin.cupsd", ("profile usr.sbin.cupsd {",)),
    ("service-adopted-ssh", lambda: ServiceSpec("ssh.service", "/usr/sbin/sshd -D", adopt=True),
     "/etc/systemd/system/ssh.service", ("ExecStart=/usr/sbin/sshd -D",)),
    ("ebpf-output-dotted-name",
     lambda: EbpfAgentSpec("a", tool="execsnoop.bt", output="/var/log/ringzero/exec-snoop.v2.log"),
     "/etc/systemd/system/ringzero-ebpf-a.service", ("-o /var/log/ringzero/exec-snoop.v2.log",)),
]


@pytest.mark.parametrize(("build", "path", "expected"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_unusual_but_valid_input_is_accepted_and_rendered(build: Callable[[], Any], path: str,
                                                          expected: tuple[str, ...]) -> None:
    files = render_any(build())
    assert path in files, sorted(files)
    for text in expected:
        assert text in files[path], f"{text!r} not in {path}:\n{files[path]}"


def test_at_least_twenty_new_refusals_and_eight_unusual_acceptances() -> None:
    assert len(CASES) >= 79 + 20  # 79 before issue 12 part 3
    assert len({c[0] for c in ACCEPTED}) == len(ACCEPTED) >= 8


def test_libvirt_uri_parameters_that_keep_checks_on_are_accepted() -> None:
    uri = ("qemu+ssh://root@h.example:2222/system?keyfile=/root/.ssh/id_ed25519&known_hosts=/root/.ssh/known_hosts"
           "&known_hosts_verify=normal&no_tty=1&sshauth=privkey,agent&proxy=native&mode=direct")
    assert HostSpec("h", uri=uri).uri_port == 2222
    assert HostSpec("t", uri="qemu+tls://h.example/system?pkipath=/etc/pki/libvirt").uri_port is None


# What the hyperv and bhyve drivers accept (docs/drvhyperv.rst, docs/drvbhyve.rst, hypervParseUri,
# bhyveConnectOpen) is accepted: the parameter name case-blind as hypervParseUri compares it.
DRIVER_URIS = [
    ("hyperv", "hyperv://hv1.example", None), ("hyperv", "hyperv://hv1.example/", None),
    ("hyperv", "hyperv://hv1.example/?transport=http", None),
    ("hyperv", "hyperv://Administrator@hv1.example:5986/?transport=https", 5986),
    ("hyperv", "hyperv://hv1.example:5985?Transport=http", 5985),
    ("hyperv", "HYPERV://hv1.example/", None), ("hyperv", "hyperv://CORP%5Cadmin@hv1.example/", None),
    ("hyperv", "hyperv://svc%40corp.example@hv1.example/", None), ("hyperv", "hyperv://[2001:db8::1]/", None),
    ("bhyve", "bhyve:///system", None), ("bhyve", "bhyve+unix:///system", None),
    ("bhyve", "bhyve+ssh://root@freebsd1.example/system", None),
    ("bhyve", "bhyve+ssh://root@freebsd1.example:2222/system?keyfile=/root/.ssh/id_ed25519&no_tty=1", 2222),
    ("bhyve", "bhyve+tls://freebsd1.example/system?pkipath=/etc/pki/libvirt", None),
]


@pytest.mark.parametrize(("kind", "uri", "port"), DRIVER_URIS, ids=[u for _, u, _ in DRIVER_URIS])
def test_hyperv_and_bhyve_uris_the_drivers_accept_are_accepted(kind: str, uri: str, port: int | None) -> None:
    host = HostSpec("h", kind=kind, uri=uri)
    assert host.uri_port == port
    assert host.effective_domain_type == kind and not host.boots_kernel


def test_vms_on_hyperv_and_bhyve_hosts_boot_their_disk() -> None:
    for host, image in ((HostSpec("local", kind="bhyve", uri="bhyve:///system", vcpus=2), RAW_IMAGE),
                        (HostSpec("local", kind="hyperv", uri="hyperv://hv1.example/", vcpus=2), IMAGE)):
        t = Topology(hosts=(host,), images=(image,), vms=(VmSpec("vm1", "local", "debian", boot="bootloader"),))
        assert t.allocations[0].vms == ("vm1",)


def test_adopt_is_accepted_from_stack_config() -> None:
    t = from_data({"hosts": [{"name": "h"}], "nodes": [{"node": "h", "services": [
        {"name": "ssh.service", "exec_start": "/usr/sbin/sshd -D", "adopt": True}],
        "apparmor": [{"name": "usr.sbin.cupsd", "adopt": True}]}]})
    assert t.nodes[0].services[0].adopt and t.nodes[0].apparmor[0].adopt


def test_memory_percentages_are_not_bytes_yet() -> None:
    s = SliceSpec("web.slice", memory_high="1.5G", memory_max="12.5%")
    assert s.percent("memory_max") == 1250 and s.percent("memory_high") is None
    assert s.bytes("memory_high") == 1610612736
    with pytest.raises(ValueError, match="percentage"):
        s.bytes("memory_max")


def test_relative_image_paths_may_not_leave_the_project(tmp_path: Any) -> None:
    """Stack config paths are resolved against the project: '..' is refused before resolving
    (resolved, `../../etc/shadow` would be an absolute path the spec accepts)."""
    from ringzero.stack import resolve_image_paths

    images: list[Any] = [{"name": "debian", "source": "../../etc/shadow"}]
    with pytest.raises(SpecError, match=r"BaseImage 'debian': source='../../etc/shadow' is invalid; allowed: a path "
                                        r"inside the project"):
        resolve_image_paths(images, tmp_path)
    ok: list[Any] = [{"name": "debian", "source": ".image/base.qcow2", "kernel": "/srv/vmlinuz"}]
    resolve_image_paths(ok, tmp_path)
    assert ok[0]["source"] == str(tmp_path.resolve() / ".image/base.qcow2") and ok[0]["kernel"] == "/srv/vmlinuz"

"""Network policy on a real guest: a Firewall (nftables table of ringzero's own) and a
SocketFilter (systemd's cgroup eBPF filters), applied with the playbooks and proven with real
connections inside the guest only (loopback, and a network namespace this module creates).

In file order: a user's table made first; apply → idempotence → the listing is the declaration
→ allowed/denied connections (loopback, the slice's sockets, a veth peer in a namespace against
a drop policy) → the socket filter's denied/allowed connect and bind inside the service's cgroup
→ every check passes, and each fails under its own mutation (negative controls) → removal
restores `nft -j list ruleset` exactly and the user's table throughout.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ringzero.checks import Probe
from ringzero.checks.run import judge
from ringzero.kinds.firewall.checks import checks as firewall_checks
from ringzero.kinds.sockfilter.checks import checks as sockfilter_checks
from ringzero.plan import policies_plan
from ringzero.playbook import run_playbook
from ringzero.spec import FirewallRule, FirewallSpec, HostSpec, NodePolicies, ServiceSpec, SliceSpec, SocketFilterSpec
from tests.handboot import HandGuest

NODE = "rznet"
NS = "rznet-ns"
HOST_IP, PEER_IP = "10.213.0.1", "10.213.0.2"
# Listeners the module starts on the guest (all its own ports)
OPEN, REJECTED_TO_2, SLICE_REJECTED, NS_OPEN, NS_DROPPED, WEB, BIND_DENIED, BIND_ALLOWED = (
    18090, 18091, 18092, 18093, 18094, 18095, 18096, 18097)
FIREWALL = FirewallSpec("rznet", input_policy="drop", rules=(
    FirewallRule("out", "reject", "tcp", ports=(REJECTED_TO_2,), addresses=("127.0.0.2",)),
    FirewallRule("out", "reject", "tcp", ports=(SLICE_REJECTED,), slice="rznet.slice"),
    FirewallRule("in", "accept", "tcp", ports=(NS_OPEN,), addresses=(f"{PEER_IP}/32",)),
))
WEB_SERVICE = ServiceSpec("rznet-web.service", f"/usr/bin/python3 -m http.server {WEB} --bind 127.0.0.1")
SOCKFILTER = SocketFilterSpec("rznet-web", (WEB_SERVICE.name,), ip_allow=("127.0.0.1",), ip_deny=("any",))
# SocketBindAllow=/SocketBindDeny= on a service of their own: systemd enforces them only when built
# with +BPF_FRAMEWORK (Debian 12's is not); the kernel tier proves what the node really does.
BIND_SERVICE = ServiceSpec("rznet-bind.service", "/bin/sleep infinity")
BIND_FILTER = SocketFilterSpec("rznet-bind", (BIND_SERVICE.name,), bind_allow=(f"tcp:{BIND_ALLOWED}",),
                               bind_deny=("any",))
POLICIES = NodePolicies(NODE, slices=(SliceSpec("rznet.slice"),), services=(WEB_SERVICE, BIND_SERVICE),
                        firewall=(FIREWALL,), sockfilter=(SOCKFILTER, BIND_FILTER))
# `nft` on its command line wants `add` and a ";" after a block (the file syntax needs neither)
USER_TABLE = "add table inet rznet_user { chain c { type filter hook output priority 10; policy accept; }; }"
# Connect and print ok or the error name; bounded by its own timeout.
CONNECT = ("import socket,sys\ns=socket.socket();s.settimeout(3)\n"
           "try:\n s.connect((sys.argv[1],int(sys.argv[2])));print('ok')\n"
           "except OSError as e:\n"
           " print(type(e).__name__ if e.errno is None else __import__('errno').errorcode[e.errno])")
BIND = ("import socket,sys\ns=socket.socket()\n"
        "try:\n s.bind(('127.0.0.1',int(sys.argv[1])));print('ok')\n"
        "except OSError as e:\n print(__import__('errno').errorcode[e.errno])")


@dataclass
class Net:
    guest: HandGuest
    before: str = ""  # `nft -j list ruleset` before the policies (the user's table in it)
    bind_enforced: bool = False  # systemd built with +BPF_FRAMEWORK (SocketBind* enforced)

    def sh(self, command: str, timeout: int = 60) -> str:
        return self.guest.ssh(f"timeout {timeout} sh -c {shlex.quote(command)}", timeout=timeout + 30)

    def apply(self, state: str = "present") -> int:
        plan = policies_plan(POLICIES, HostSpec(NODE))
        r = run_playbook({**self.guest.node, "name": NODE}, self.guest.private_key,
                         {"ringzero_plan": plan, "ringzero_state": state}, playbook="site.yml")
        assert r.ok, r.failures
        return r.changed

    def connect(self, addr: str, port: int, prefix: str = "") -> str:
        return self.sh(f"{prefix} python3 -c {shlex.quote(CONNECT)} {addr} {port}").strip()

    def ruleset(self) -> str:
        return self.sh("nft -j list ruleset")

    def judge_all(self) -> dict[str, str]:
        import testinfra

        host = testinfra.get_host(self.guest.url, ssh_identity_file=str(self.guest.key_file),
                                  ssh_extra_args=f"-o UserKnownHostsFile={self.guest.known_hosts}")
        probe = Probe(host, NODE)
        cs = firewall_checks(NODE, FIREWALL)
        cs += [c for f in (SOCKFILTER, BIND_FILTER) for c in sockfilter_checks(NODE, f)]
        probe.fetch(k for c in cs for k in c.reads)
        return {c.aspect: judge(c, probe, {}, {})[0] for c in cs}


@pytest.fixture(scope="module")
def net(shared_guest: HandGuest) -> Iterator[Net]:
    with contextlib.nullcontext(shared_guest) as guest:  # the tier's shared guest
        n = Net(guest)
        n.sh("command -v nft")  # the image has nftables
        try:
            n.sh(f"nft {shlex.quote(USER_TABLE)}")
            n.sh(f"ip netns add {NS} && ip link add rznet-h type veth peer name rznet-p netns {NS} && "
                 f"ip addr add {HOST_IP}/24 dev rznet-h && ip link set rznet-h up && "
                 f"ip -n {NS} addr add {PEER_IP}/24 dev rznet-p && ip -n {NS} link set rznet-p up && "
                 f"ip -n {NS} link set lo up")
            ports = " ".join(map(str, (OPEN, REJECTED_TO_2, SLICE_REJECTED, NS_OPEN, NS_DROPPED)))
            n.sh("systemd-run --unit rznet-listeners --collect python3 -c " + shlex.quote(
                "import socket,select,sys\nss=[]\n"
                "for p in sys.argv[1:]:\n s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                "s.bind(('0.0.0.0',int(p)));s.listen(64);ss.append(s)\n"
                "while True:\n for s in select.select(ss,[],[])[0]: s.accept()[0].close()") + f" {ports}")
            n.before = n.ruleset()
            n.bind_enforced = "+BPF_FRAMEWORK" in n.sh("systemctl --version").split()
            yield n
        finally:
            n.apply("absent")
            # each step on its own: a setup that stopped half-way still leaves nothing of ours behind
            n.sh(f"systemctl stop rznet-listeners; ip netns del {NS}; nft delete table inet rznet_user; "
                 "ip link del rznet-h; true", timeout=60)


def test_apply_converges_then_changes_nothing(net: Net) -> None:
    net.apply()
    assert net.apply() == 0


def test_nft_lists_the_declared_table_and_the_users_table_untouched(net: Net) -> None:
    doc = json.loads(net.ruleset())["nftables"]
    tables = [o["table"]["name"] for o in doc if "table" in o]
    assert "ringzero_rznet" in tables and "rznet_user" in tables
    assert net.judge_all()["table"] == "pass"


def test_allowed_connections_succeed_and_denied_ones_fail_on_loopback(net: Net) -> None:
    assert net.connect("127.0.0.1", OPEN) == "ok"
    assert net.connect("127.0.0.1", REJECTED_TO_2) == "ok"  # the rule names 127.0.0.2 only
    assert net.connect("127.0.0.2", REJECTED_TO_2) == "ECONNREFUSED"  # reject with tcp reset
    assert net.connect("127.0.0.1", SLICE_REJECTED) == "ok"  # outside the slice
    in_slice = "systemd-run --quiet --wait --pipe --collect --slice rznet.slice"
    assert net.connect("127.0.0.1", SLICE_REJECTED, in_slice) == "ECONNREFUSED"
    assert net.connect("127.0.0.1", OPEN, in_slice) == "ok"


def test_the_drop_policy_admits_only_the_declared_peer_port(net: Net) -> None:
    in_ns = f"ip netns exec {NS}"
    assert net.connect(HOST_IP, NS_OPEN, in_ns) == "ok"
    assert net.connect(HOST_IP, NS_DROPPED, in_ns) == "TimeoutError"  # dropped: no answer at all
    assert net.sh("systemctl is-active ssh.service").strip() == "active"


def inside(net: Net, service: str) -> str:
    """A shell prefix that moves the command into the running service's cgroup first."""
    cg = net.sh(f"systemctl show -p ControlGroup --value {service}").strip()
    assert cg, f"{service} is not running"
    return f"echo $$ > /sys/fs/cgroup{cg}/cgroup.procs && exec"


def test_the_address_filter_denies_inside_the_services_cgroup_only(net: Net) -> None:
    web = inside(net, WEB_SERVICE.name)
    assert net.sh(f"{web} python3 -c {shlex.quote(CONNECT)} 127.0.0.1 {OPEN}").strip() == "ok"
    denied = net.sh(f"{web} python3 -c {shlex.quote(CONNECT)} 127.0.0.2 {OPEN}").strip()
    assert denied in ("EPERM", "TimeoutError"), denied
    assert net.connect("127.0.0.2", OPEN) == "ok"  # outside the cgroup: not filtered
    assert net.connect("127.0.0.1", WEB) == "ok"  # the service itself answers on its allowed address


def test_the_bind_filter_is_enforced_exactly_when_systemd_can_and_the_check_says_which(net: Net) -> None:
    box = inside(net, BIND_SERVICE.name)
    assert net.sh(f"{box} python3 -c {shlex.quote(BIND)} {BIND_ALLOWED}").strip() == "ok"
    denied = net.sh(f"{box} python3 -c {shlex.quote(BIND)} {BIND_DENIED}").strip()
    assert denied == ("EPERM" if net.bind_enforced else "ok"), denied
    assert net.sh(f"python3 -c {shlex.quote(BIND)} {BIND_DENIED}").strip() == "ok"  # outside: not filtered
    verdict = net.judge_all()[f"{BIND_SERVICE.name}:bpf-attached"]
    assert verdict == ("pass" if net.bind_enforced else "fail"), verdict


def test_every_check_passes_and_each_fails_under_its_own_mutation(net: Net) -> None:
    # the one check that must fail on a node whose systemd does not enforce SocketBind* (above)
    unenforced = set() if net.bind_enforced else {f"{BIND_SERVICE.name}:bpf-attached"}
    assert {a for a, s in net.judge_all().items() if s != "pass"} == unenforced
    unit = "ringzero-firewall-rznet.service"
    svc = WEB_SERVICE.name
    mutations = {
        "table": ("nft add rule inet ringzero_rznet output meta l4proto udp drop", f"systemctl reload {unit}"),
        "active": (f"systemctl stop {unit}", f"systemctl start {unit}"),
        f"{svc}:properties": (f"systemctl set-property --runtime {svc} IPAddressDeny=",
                              f"rm -rf /run/systemd/system.control/{svc}.d; systemctl daemon-reload; "
                              f"systemctl restart {svc}"),
        f"{svc}:bpf-attached": (f"systemctl stop {svc}", f"systemctl start {svc}"),
    }
    for aspect, (breaks, repairs) in mutations.items():
        net.sh(breaks)
        try:
            failed = {a for a, s in net.judge_all().items() if s == "fail"}
            assert aspect in failed, (aspect, failed)
        finally:
            net.sh(repairs)
    assert {a for a, s in net.judge_all().items() if s != "pass"} == unenforced


def test_removal_restores_the_ruleset_exactly(net: Net) -> None:
    net.apply("absent")
    assert net.ruleset() == net.before
    assert net.connect("127.0.0.2", REJECTED_TO_2) == "ok"

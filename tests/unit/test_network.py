"""Network policy kinds without a node: the firewall's table file, unit and plan; its checks on
canned `nft -j` listings; the socket filter's drop-ins and checks on canned `systemctl show` and
`bpftool cgroup show` output (captured formats: tests/unit/facts/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ringzero.checks import Check
from ringzero.facts import bpftool_cgroup, nft_table, nft_tables
from ringzero.kinds.firewall.checks import checks as firewall_checks
from ringzero.kinds.firewall.checks import list_command
from ringzero.kinds.firewall.expect import listed, table_path, unit_name
from ringzero.kinds.firewall.render import render_firewall
from ringzero.kinds.sockfilter.checks import cgroup_command, show_command
from ringzero.kinds.sockfilter.checks import checks as sockfilter_checks
from ringzero.kinds.sockfilter.render import render_sockfilter
from ringzero.plan import policies_plan
from ringzero.spec import FirewallRule, FirewallSpec, HostSpec, NodePolicies, SliceSpec, SocketFilterSpec
from tests.unit.canned import verify

FACTS = Path(__file__).parent / "facts"
FW = FirewallSpec("web", input_policy="drop", rules=(
    FirewallRule("in", "accept", "tcp", ports=(8080, "9000-9100"), addresses=("10.0.0.0/8", "fd00::/64")),
    FirewallRule("out", "reject", "tcp", ports=(25,), slice="web-api.slice"),
))
SF = SocketFilterSpec("web-net", ("web.service",), ip_allow=("localhost",), ip_deny=("any",),
                      bind_allow=("tcp:8080",), bind_deny=("any",))


def _listing(spec: FirewallSpec) -> str:
    """What nft -j prints for the declared table (handles included, as on a node)."""
    objs: list[dict[str, object]] = [{"metainfo": {"version": "1.0.6"}},
                                     {"table": {"family": "inet", "name": spec.table, "handle": 3}}]
    handle = 1
    for name, chain in listed(spec).items():
        objs.append({"chain": {"family": "inet", "table": spec.table, "name": name, "handle": handle,
                               **{k: v for k, v in chain.items() if k != "rules"}}})
        for rule in chain["rules"]:
            handle += 1
            objs.append({"rule": {"family": "inet", "table": spec.table, "chain": name, "handle": handle, **rule}})
    return json.dumps({"nftables": objs})


def _judge(check: Check, values: dict[str, str]) -> str:
    try:
        verify(check, values)
    except AssertionError as e:
        return f"fail: {e}"
    except Exception as e:
        return f"error: {e}"
    return "pass"


def test_the_table_file_replaces_only_its_own_table_in_one_transaction() -> None:
    text = render_firewall(FW)[table_path(FW)]
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines[:3] == ["table inet ringzero_web {}", "delete table inet ringzero_web", "table inet ringzero_web {"]
    body = "\n".join(lines)
    assert "flush" not in body and body.count("table inet") == 3
    assert 'tcp dport 22 accept comment "ringzero: management port"' in text
    assert "tcp dport 25 socket cgroupv2 level 2 \"web.slice/web-api.slice\" reject with tcp reset" in text


def test_the_unit_loads_after_the_slices_it_matches_and_deletes_only_its_table_when_stopped() -> None:
    unit = render_firewall(FW)[f"/etc/systemd/system/{unit_name(FW)}"]
    assert "\nRequires=web-api.slice\nAfter=web-api.slice\n" in unit
    assert "\nExecStart=/usr/sbin/nft -f /etc/ringzero/nftables/web.nft\n" in unit
    assert "\nExecStop=-/usr/sbin/nft delete table inet ringzero_web\n" in unit
    assert "nftables.service" not in unit


def test_the_plan_owns_the_unit_and_restarts_it_when_the_table_file_changes() -> None:
    plan = policies_plan(NodePolicies("vm1", slices=(SliceSpec("web.slice"), SliceSpec("web-api.slice")),
                                      firewall=(FW,), sockfilter=(SF,)), HostSpec("vm1"))
    units = {u["unit"]: u for u in plan["units"]}
    fw = units[unit_name(FW)]
    assert fw["owned"] and fw["feature"] == "firewall" and table_path(FW) in fw["files"]
    web = units["web.service"]
    assert not web["owned"] and web["files"] == ["/etc/systemd/system/web.service.d/ringzero-sockfilter-web-net.conf"]
    assert plan["files"][table_path(FW)]["feature"] == "firewall"


def test_a_drop_policy_keeps_the_management_port_unless_told_not_to() -> None:
    assert "tcp dport 22 accept" in render_firewall(FirewallSpec("a", input_policy="drop"))[
        "/etc/ringzero/nftables/a.nft"]
    assert "tcp dport 2222 accept" in render_firewall(FirewallSpec("a", input_policy="drop", management_port=2222))[
        "/etc/ringzero/nftables/a.nft"]
    off = render_firewall(FirewallSpec("a", input_policy="drop", management_port=None))["/etc/ringzero/nftables/a.nft"]
    assert "dport" not in off and "ct state established,related accept" in off


@pytest.mark.parametrize("spec", [
    FirewallSpec("a", rules=(FirewallRule("in", "accept", "udp", ports=("1-65535",), addresses=("::/0",)),)),
    FirewallSpec("a", rules=(FirewallRule("out", "drop", "any", addresses=("0.0.0.0/0", "::1")),)),
    FirewallSpec("a", input_policy="drop", output_policy="drop", management_port=None),
    FirewallSpec("a", rules=(FirewallRule("in", "accept", "tcp", ports=(80, 80, "80-81")),)),
], ids=["all-ports-all-v6", "any-protocol-both-families", "drop-everything-explicitly", "overlapping-ports"])
def test_unusual_but_valid_declarations_are_accepted_and_rendered(spec: FirewallSpec) -> None:
    assert render_firewall(spec)[table_path(spec)].endswith("}\n")


def test_firewall_checks_pass_on_the_declared_table_and_fail_on_drift() -> None:
    active, table = firewall_checks("vm1", FW)
    key = f"shell:{list_command(FW)}"
    unit = f"unit:{unit_name(FW)}"
    assert _judge(active, {unit: "ActiveState=active\n"}) == "pass"
    assert _judge(active, {unit: "ActiveState=inactive\n"}).startswith("fail")
    good = _listing(FW)
    assert _judge(table, {key: good}) == "pass"
    # a rule added by hand, a policy changed, the table deleted: each a failure naming it
    doc = json.loads(good)
    doc["nftables"].append({"rule": {"family": "inet", "table": FW.table, "chain": "input", "handle": 99,
                                     "expr": [{"drop": None}]}})
    assert "chain input rule 6" in _judge(table, {key: json.dumps(doc)})
    assert "policy 'accept', declared 'drop'" in _judge(table, {key: good.replace('"policy": "drop"',
                                                                                     '"policy": "accept"')})
    missing = "Error: No such file or directory\nlist table inet ringzero_web\n                 ^^^^^^^^^^^^"
    assert _judge(table, {key: missing}) == "fail: table inet ringzero_web is not loaded"
    # nft not there, or nothing read: undecided, never a pass or a failure
    assert _judge(table, {key: "sh: 1: nft: not found"}).startswith("error")
    assert _judge(table, {}).startswith("error")


def test_the_firewall_table_check_passes_on_the_table_a_guest_loaded() -> None:
    """The listing captured on the guest for tests/kernel/test_network.py's FIREWALL (same spec here)."""
    spec = FirewallSpec("rznet", input_policy="drop", rules=(
        FirewallRule("out", "reject", "tcp", ports=(18091,), addresses=("127.0.0.2",)),
        FirewallRule("out", "reject", "tcp", ports=(18092,), slice="rznet.slice"),
        FirewallRule("in", "accept", "tcp", ports=(18093,), addresses=("10.213.0.2/32",)),
    ))
    _, table = firewall_checks("vm1", spec)
    text = (FACTS / "nft-list-table-rznet.json").read_text()
    assert _judge(table, {f"shell:{list_command(spec)}": text}) == "pass"
    drifted = text.replace('"right": 18092', '"right": 18099')
    assert drifted != text and _judge(table, {f"shell:{list_command(spec)}": drifted}).startswith("fail")


def test_the_listing_of_a_real_table_parses() -> None:
    text = (FACTS / "nft-list-table.json").read_text()
    assert nft_tables(text) == [("inet", "ringzero_t")]
    table = nft_table(text)
    assert table is not None and set(table) == {"input", "output"}
    assert table["input"]["policy"] == "drop"


def test_the_socket_filter_dropin_lists_each_entry_on_its_own_line() -> None:
    (path, text), = render_sockfilter(SF).items()
    assert path == "/etc/systemd/system/web.service.d/ringzero-sockfilter-web-net.conf"
    assert text.endswith("[Service]\nIPAddressAllow=localhost\nIPAddressDeny=any\nSocketBindAllow=tcp:8080\n"
                         "SocketBindDeny=any\n")


# The captured unit (tests/unit/facts/SOURCE.md) was started with these settings.
CAPTURED = SocketFilterSpec("captured", ("web.service",), ip_allow=("127.0.0.1", "10.0.0.0/8", "localhost"),
                            ip_deny=("any",), bind_allow=("tcp:18095", "ipv6:udp:5000-5100"), bind_deny=("any",))


def test_socket_filter_properties_check_on_what_systemd_252_shows() -> None:
    props, _ = sockfilter_checks("vm1", CAPTURED)
    show = f"shell:{show_command('web.service')}"
    shown = (FACTS / "systemctl-show-sockfilter.txt").read_text()
    assert _judge(props, {show: shown}) == "pass"
    # each property differing from the declaration fails, naming it
    for line, other in (("IPAddressAllow=127.0.0.0/8 ::1/128 10.0.0.0/8", "IPAddressAllow=127.0.0.0/8 ::1/128"),
                        ("IPAddressDeny=::/0 0.0.0.0/0", "IPAddressDeny=::/0"),
                        ("SocketBindAllow=tcp18095\n", ""),
                        ("SocketBindDeny=any", "SocketBindDeny=tcp22")):
        assert line in shown
        verdict = _judge(props, {show: shown.replace(line, other)})
        assert verdict.startswith("fail") and line.split("=")[0] in verdict, verdict
    unfiltered = (FACTS / "systemctl-show-unfiltered.txt").read_text()  # no SocketBind* line at all
    assert _judge(props, {show: unfiltered}).startswith("fail")
    assert "not loaded" in _judge(props, {show: "LoadState=not-found\n"})
    assert _judge(props, {show: ""}).startswith("error")


def test_socket_filter_bpf_check_on_what_bpftool_lists() -> None:
    _, ip_only = sockfilter_checks("vm1", SocketFilterSpec("ip", ("web.service",), ip_deny=("any",)))
    _, with_bind = sockfilter_checks("vm1", SF)
    cg = f"shell:{cgroup_command('web.service')}"
    captured = (FACTS / "bpftool-cgroup-sockfilter.json").read_text()  # systemd 252 -BPF_FRAMEWORK
    assert bpftool_cgroup(captured) == [("cgroup_inet_ingress", "sd_fw_ingress"),
                                        ("cgroup_inet_egress", "sd_fw_egress")]
    assert _judge(ip_only, {cg: captured}) == "pass"
    # declared bind filters without their programs: not enforced, a failure that says why
    verdict = _judge(with_bind, {cg: captured})
    assert verdict.startswith("fail") and "cgroup_inet4_bind" in verdict and "BPF_FRAMEWORK" in verdict, verdict
    # systemd's socket-bind programs (a +BPF_FRAMEWORK build; not captured: no such node here)
    binds = [{"id": 43, "attach_type": "cgroup_inet4_bind", "name": "sd_bind4"},
             {"id": 44, "attach_type": "cgroup_inet6_bind", "name": "sd_bind6"}]
    assert _judge(with_bind, {cg: json.dumps([*json.loads(captured), *binds])}) == "pass"
    assert "no BPF program at cgroup_inet_egress, cgroup_inet_ingress" in _judge(ip_only, {cg: "[]"})
    assert "not running" in _judge(ip_only, {cg: "not running"})
    assert _judge(ip_only, {cg: "bpftool failed"}).startswith("error")
    assert _judge(ip_only, {}).startswith("error")

"""The firewall table through the real nft: the rendered file loads (twice: it replaces its table
in one transaction), and `nft -j list table` shows exactly what `expect.listed` predicts, which is
what the firewall check compares on a node. Run in a private network and mount namespace (the
machine's own ruleset is never touched) with a cgroup2 hierarchy mounted for `socket cgroupv2`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ringzero.facts import nft_table, nft_tables
from ringzero.kinds.firewall.expect import listed, table_path
from ringzero.kinds.firewall.render import render_firewall
from ringzero.spec import FirewallRule, FirewallSpec

SPECS = {
    "every-construct": FirewallSpec("web", input_policy="drop", output_policy="drop", rules=(
        FirewallRule("in", "accept", "tcp", ports=(8080, "9000-9100", 8080, "9050-9200", 7),
                     addresses=("10.0.0.0/8", "10.1.0.0/16", "fd00::/64", "192.0.2.7/32", "::1")),
        FirewallRule("out", "reject", "tcp", ports=(25,), slice="rzt_validate-a.slice"),
        FirewallRule("in", "drop", "udp", slice="rzt_validate.slice"),
        FirewallRule("in", "reject", "udp", ports=(53,), addresses=("192.0.2.0/24",)),
        FirewallRule("out", "reject", "any", addresses=("2001:db8::/32",)),
        FirewallRule("out", "reject", "icmp"),
        FirewallRule("out", "accept", "icmpv6", addresses=("::/0",)),
        FirewallRule("in", "accept", "udp", ports=("1-65535",), addresses=("0.0.0.0/0",)),
    )),
    "accept-policies-no-management": FirewallSpec("t2", management_port=None, rules=(
        FirewallRule("out", "drop", "tcp", ports=(9,), addresses=("127.0.0.2",)),)),
    "drop-policy-other-port": FirewallSpec("t3", input_policy="drop", management_port=2222),
}
# The cgroups are made in the machine's own cgroup2 hierarchy (a fresh mount of it): removed again
# once the table that references them is gone, whatever happened before.
SCRIPT = """mount -t cgroup2 none /sys/fs/cgroup || exit 1
mkdir -p /sys/fs/cgroup/rzt_validate.slice/rzt_validate-a.slice || exit 1
nft -f {path} && nft -f {path} && nft -j list table inet {table}; rc=$?
nft flush ruleset
rmdir /sys/fs/cgroup/rzt_validate.slice/rzt_validate-a.slice /sys/fs/cgroup/rzt_validate.slice
exit $rc
"""


@pytest.mark.parametrize("name", list(SPECS))
def test_the_table_nft_lists_is_the_one_predicted(name: str, tmp_path: Path) -> None:
    spec = SPECS[name]
    path = tmp_path / "t.nft"
    path.write_text(render_firewall(spec)[table_path(spec)])
    res = subprocess.run(["unshare", "-m", "-n", "sh", "-c", SCRIPT.format(path=path, table=spec.table)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert nft_tables(res.stdout) == [("inet", spec.table)]
    assert nft_table(res.stdout) == json.loads(json.dumps(listed(spec)))

"""The exposure gate without systemd: the parser on captured `systemd-analyze security` output,
the gate and the node check on canned scores, and a machine without the tool.

The real tool scores in tests/validate/test_exposure.py (offline, at plan time) and
tests/kernel/test_exposure.py (on a node, with its negative control).
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringzero.checks import Check
from ringzero.facts import SecurityAssessment, systemd_security
from ringzero.kinds.service import exposure
from ringzero.kinds.service.checks import checks as service_checks
from ringzero.kinds.service.checks import security_read
from ringzero.plan import policies_plan
from ringzero.spec import HostSpec, NodePolicies, SeccompProfileSpec, ServiceSpec, SpecError, SyscallRule
from tests.unit.canned import verify

FACTS = Path(__file__).resolve().parent / "facts"
OFFLINE = (FACTS / "systemd-analyze-security-offline.txt").read_text()
OFFLINE_C = (FACTS / "systemd-analyze-security-offline-c-locale.txt").read_text()
# the node check's read on the guest: rz-gate-web.service, User=www-data, with a seccomp drop-in
NODE_OUT = (FACTS / "systemd-analyze-security-node.txt").read_text()
NODE_OUT_C = (FACTS / "systemd-analyze-security-node-c-locale.txt").read_text()
NODE_NOT_FOUND = (FACTS / "systemd-analyze-security-node-not-found.txt").read_text()
WEB = ServiceSpec("rz-web.service", "/usr/bin/python3 -m http.server 8080", user="www-data")
BATCH = ServiceSpec("rz-batch.service", "/usr/bin/sleep infinity")
SECCOMP = SeccompProfileSpec("no-mkdir", default_action="SCMP_ACT_ALLOW",
                             rules=(SyscallRule(("mkdir", "sethostname"), "SCMP_ACT_ERRNO", "EACCES"),),
                             services=("rz-web.service",))


# ---- the parser ---------------------------------------------------------------------------------
def test_offline_output_of_two_units_gives_each_its_score_and_offending_settings() -> None:
    got = systemd_security(OFFLINE)
    assert set(got) == {"rz-web.service", "rz-batch.service"}
    web, batch = got["rz-web.service"], got["rz-batch.service"]
    assert (web.exposure, web.level) == (9.0, "UNSAFE") and (batch.exposure, batch.level) == (9.6, "UNSAFE")
    # largest first; a setting in place (✓, no exposure column) is not an offender
    assert web.offending[0] == ("PrivateNetwork=", 0.5, "Service has access to the host's network")
    assert [v for _n, v, _d in web.offending] == sorted((v for _n, v, _d in web.offending), reverse=True)
    names = {n for n, _v, _d in web.offending}
    assert "SystemCallArchitectures=" not in names and "AmbientCapabilities=" not in names
    assert "SystemCallArchitectures=" in {n for n, _v, _d in batch.offending}  # the seccomp drop-in is web's only
    assert len(web.offending) == 74 and len(batch.offending) == 75
    assert web.top(2) == ("PrivateNetwork= 0.5 (Service has access to the host's network), "
                          "RestrictNamespaces=~user 0.3 (Service may create user namespaces)")


def test_the_c_locale_output_parses_alike() -> None:
    assert systemd_security(OFFLINE_C) == {"rz-web.service": systemd_security(OFFLINE)["rz-web.service"]}


def test_the_node_output_parses_like_the_offline_output_of_the_same_unit_shape() -> None:
    got = systemd_security(NODE_OUT)
    assert set(got) == {"rz-gate-web.service"}
    node, offline = got["rz-gate-web.service"], systemd_security(OFFLINE)["rz-web.service"]
    assert (node.exposure, node.level) == (9.0, "UNSAFE")
    # the same settings (a static non-root user, a seccomp deny list) weigh alike online and offline
    assert node.offending == offline.offending
    assert systemd_security(NODE_OUT_C) == got  # a node without a UTF-8 locale: '-' marks, '->'


@pytest.mark.parametrize("text", [None, "", "Unit nothere.service not found.\n", NODE_NOT_FOUND,
                                  "System has not been booted with systemd as init system (PID 1). Can't operate.\n",
                                  "sh: 1: systemd-analyze: not found\n", OFFLINE.split("→")[0]])
def test_output_without_an_overall_line_gives_no_score(text: str | None) -> None:
    assert systemd_security(text) == {}


# ---- the gate, with a stand-in systemd-analyze that prints the captured output ----------------
@pytest.fixture
def fake_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A `systemd-analyze` on PATH printing OFFLINE for `security` and systemd 252's version;
    the arguments it got are written beside it."""
    tool = tmp_path / "systemd-analyze"
    tool.write_text("#!/bin/sh\n"
                    f'echo "$@" > {tmp_path}/args\n'
                    'if [ "$1" = --version ]; then echo "systemd 252 (252.39-1~deb12u2)"; exit 0; fi\n'
                    f"cat {FACTS}/systemd-analyze-security-offline.txt\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    exposure._score.cache_clear()
    exposure._version.cache_clear()
    yield tmp_path
    exposure._score.cache_clear()
    exposure._version.cache_clear()


def _node(web_max: float | None, batch_max: float | None = None) -> NodePolicies:
    return NodePolicies("vm1", services=(ServiceSpec(WEB.name, WEB.exec_start, user=WEB.user, max_exposure=web_max),
                                         ServiceSpec(BATCH.name, BATCH.exec_start, max_exposure=batch_max)),
                        seccomp=(SECCOMP,))


def test_a_score_above_max_exposure_refuses_the_plan_naming_node_service_score_max_and_offenders(
        fake_tool: Path) -> None:
    with pytest.raises(SpecError) as e:
        policies_plan(_node(8.5), HostSpec("vm1"))
    msg = str(e.value)
    for part in ("Service 'rz-web.service'", "max_exposure=8.5", "node 'vm1'", "scores 9.0 UNSAFE",
                 "1 drop-in(s)", "systemd 252", "PrivateNetwork= 0.5", "RestrictNamespaces=~user 0.3"):
        assert part in msg, (part, msg)
    args = (fake_tool / "args").read_text().split()
    assert args[:3] == ["security", "--offline=true", args[2]] and args[2].startswith("--root=")
    assert args[-2:] == ["--", "rz-web.service"]  # the services declaring a max_exposure


def test_a_score_at_or_below_max_exposure_plans(fake_tool: Path) -> None:
    plan = policies_plan(_node(9.0, 10.0), HostSpec("vm1"))
    assert (fake_tool / "args").read_text().split()[-3:] == ["--", "rz-batch.service", "rz-web.service"]  # one run
    assert exposure.gate(_node(9.0, 10.0), plan) == systemd_security(OFFLINE)


def test_without_max_exposure_nothing_is_scored_at_plan_time(fake_tool: Path) -> None:
    policies_plan(_node(None), HostSpec("vm1"))
    assert not (fake_tool / "args").exists()


def test_a_machine_without_systemd_analyze_refuses_a_max_exposure_naming_the_tool(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    exposure._score.cache_clear()
    with pytest.raises(SpecError) as e:
        policies_plan(_node(9.0), HostSpec("vm1"))
    msg = str(e.value)
    for part in ("Service 'rz-web.service'", "max_exposure=9.0", "node 'vm1'",
                 "`systemd-analyze` is not installed on this machine", "systemd >= 250"):
        assert part in msg, (part, msg)
    # a node declaring none plans as before, unscored
    assert policies_plan(_node(None), HostSpec("vm1"))["files"]
    with pytest.raises(exposure.ScoringUnavailable, match="not installed"):
        exposure.exposures(_node(None), policies_plan(_node(None), HostSpec("vm1")))


def test_a_tool_that_gives_no_score_refuses_with_what_it_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "systemd-analyze"
    tool.write_text("#!/bin/sh\n[ \"$1\" = --version ] && { echo 'systemd 245 (245.4)'; exit 0; }\n"
                    "echo \"systemd-analyze: unrecognized option '--offline=true'\" >&2; exit 1\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    exposure._score.cache_clear()
    exposure._version.cache_clear()
    with pytest.raises(SpecError, match=r"systemd 245 .*needs systemd >= 250.*unrecognized option '--offline=true'"):
        policies_plan(_node(9.0), HostSpec("vm1"))
    exposure._version.cache_clear()


@pytest.mark.parametrize("value", [0, 0.0, 7, 9.55, 10, 10.0])
def test_every_number_from_0_to_10_is_a_max_exposure(value: float) -> None:
    assert ServiceSpec("web.service", "/bin/true", max_exposure=value).max_exposure == value


# ---- the node check ------------------------------------------------------------------------------
def _exposure_check(limit: float, name: str = WEB.name) -> Check:
    spec = ServiceSpec(name, WEB.exec_start, max_exposure=limit)
    (check,) = [c for c in service_checks("vm1", spec) if c.aspect == "exposure"]
    assert check.id == f"vm1::service:{name}::exposure"
    return check


def test_no_exposure_check_without_max_exposure() -> None:
    assert [c.aspect for c in service_checks("vm1", WEB)] == ["active", "enabled"]


GATE = "rz-gate-web.service"  # the unit of the captured node output


@pytest.mark.parametrize("out", [NODE_OUT, NODE_OUT_C])
def test_the_node_check_passes_at_or_below_the_max_and_fails_above_naming_offenders(out: str) -> None:
    node = {f"unit:{GATE}": "LoadState=loaded\nActiveState=active\n", security_read(GATE): out}
    verify(_exposure_check(9.0, GATE), node)
    with pytest.raises(AssertionError, match=r"scores 9.0 UNSAFE on the node, above max_exposure 8.9; what adds "
                                             r"most: PrivateNetwork= 0.5"):
        verify(_exposure_check(8.9, GATE), node)


def test_the_node_check_fails_without_the_unit_and_errs_without_a_score() -> None:
    with pytest.raises(AssertionError, match="not loaded on the node"):
        verify(_exposure_check(9.0, GATE), {f"unit:{GATE}": "LoadState=not-found\n", security_read(GATE): NODE_OUT})
    with pytest.raises(RuntimeError, match=r"gave no score for rz-web\.service: sh: 1: systemd-analyze: not found"):
        verify(_exposure_check(9.0), {f"unit:{WEB.name}": "LoadState=loaded\n",
                                      security_read(WEB.name): "sh: 1: systemd-analyze: not found\n"})
    # what the node's systemd-analyze says for a unit it does not have (captured for another name): an error
    with pytest.raises(RuntimeError, match=r"no score for rz-web\.service: Unit rz-gate-absent\.service not found"):
        verify(_exposure_check(9.0), {f"unit:{WEB.name}": "LoadState=loaded\n",
                                      security_read(WEB.name): NODE_NOT_FOUND})


def test_the_node_read_is_quoted_and_only_asks_systemd() -> None:
    assert security_read("a@b.service") == ("shell:env SYSTEMD_COLORS=0 SYSTEMD_URLIFY=0 systemd-analyze security "
                                            "--no-pager -- a@b.service")


def test_assessment_top_lists_the_largest_first() -> None:
    a = SecurityAssessment("x.service", 1.0, "OK", (("A=", 0.3, "a"), ("B=", 0.2, "b"), ("C=", 0.1, "c")))
    assert a.top(2) == "A= 0.3 (a), B= 0.2 (b)"

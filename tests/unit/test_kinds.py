"""One place per policy kind: the registry, and the slice table driving all three translations.

Adding a field to a slice is adding a row to `ringzero.kinds.slice.expect.ROWS` (README,
"Adding a field to a policy kind"). These tests show that a row reaches the unit file, the
plan's `systemctl show` expectations and the checks, with nothing else to edit, and that a
check built from it passes on a node holding the value and fails on one that does not.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import pytest

from ringzero.checks import Check
from ringzero.kinds import registry
from ringzero.kinds.hostprep.checks import checks as hostprep_checks
from ringzero.kinds.hostprep.expect import grub, module_params
from ringzero.kinds.hostprep.render import render_host_prep
from ringzero.kinds.slice import expect
from ringzero.kinds.slice.checks import checks as slice_checks
from ringzero.kinds.slice.render import render_slice
from ringzero.plan import FEATURES, policies_plan
from ringzero.spec import HostPrepSpec, HostSpec, NodePolicies, SliceSpec, SpecError
from tests.unit.canned import verify

# One byte-valued sample per row: a new row without a sample fails test_every_row_has_a_sample.
SAMPLE: dict[str, Any] = {
    "cpu_weight": 300, "cpu_quota_percent": 40, "memory_min": "16M", "memory_low": "32M",
    "memory_high": "64M", "memory_max": "128M", "io_weight": 200, "tasks_max": 99,
}


def _passes(check: Check, values: dict[str, str]) -> bool:
    try:
        verify(check, values)
    except AssertionError:
        return False
    return True


def _translations(spec: SliceSpec) -> tuple[str, dict[str, str], set[str]]:
    """(the .slice unit, the plan's `expect` for it, the aspects of its checks)."""
    unit = render_slice(spec)[f"/etc/systemd/system/{spec.name}"]
    plan = policies_plan(NodePolicies("vm1", slices=(spec,)), HostSpec("vm1"))
    (entry,) = plan["slices"]
    return unit, entry["expect"], {c.aspect for c in slice_checks("vm1", spec)}


def test_registry_lists_every_kind_in_plan_order_with_its_folder() -> None:
    assert [k.feature for k in registry()] == list(FEATURES)
    for kind in registry():
        for part in ("spec", "render", "checks", "kind"):
            module = importlib.import_module(f"ringzero.kinds.{kind.name}.{part}")
            assert module.__file__ and f"/kinds/{kind.name}/" in module.__file__


def test_every_row_has_a_sample() -> None:
    assert [r.field for r in expect.ROWS] == list(SAMPLE)
    assert {r.field for r in expect.ROWS} <= {f.name for f in dataclasses.fields(SliceSpec)}


@pytest.mark.parametrize("row", expect.ROWS, ids=[r.field for r in expect.ROWS])
def test_each_row_reaches_the_unit_the_plan_and_the_checks(row: expect.Row) -> None:
    spec = SliceSpec("t.slice", **{row.field: SAMPLE[row.field]})
    unit, shown, aspects = _translations(spec)
    value = row.value(spec)
    assert f"\n{row.directive}={value}\n" in unit
    assert expect.slice_directives(spec) == [(row.directive, value)]
    assert shown == {row.prop: row.shown(value)}
    cgroup = row.cgroup(spec)
    assert cgroup is not None and cgroup[0] in row.files
    assert aspects == {"active", cgroup[0]}
    # the check built from the row: passes on a node holding the value, fails on one that does not
    (check,) = [c for c in slice_checks("vm1", spec) if c.aspect == cgroup[0]]
    path = f"file:{spec.cgroup_path}/{cgroup[0]}"
    assert _passes(check, {path: cgroup[1]})
    assert not _passes(check, {path: "12345"})
    assert not _passes(check, {})


def test_a_slice_declaring_every_field_has_every_row_in_all_three() -> None:
    spec = SliceSpec("all.slice", **SAMPLE)
    unit, shown, aspects = _translations(spec)
    for row in expect.ROWS:
        assert f"\n{row.directive}=" in unit, row.field
        assert row.prop in shown, row.field
        assert aspects & set(row.files), row.field


def test_a_row_removed_from_the_table_is_gone_from_all_three(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SliceSpec("all.slice", **SAMPLE)
    monkeypatch.setattr(expect, "ROWS", tuple(r for r in expect.ROWS if r.field != "io_weight"))
    unit, shown, aspects = _translations(spec)
    assert "\nIOWeight=" not in unit and "IOWeight" not in shown and "io.weight" not in aspects
    assert "\nTasksMax=99\n" in unit and shown["TasksMax"] == "99" and "pids.max" in aspects


def test_a_row_added_to_the_table_appears_in_all_three(monkeypatch: pytest.MonkeyPatch) -> None:
    # Illustration only (not a real mapping): one more row, fed from an existing field.
    extra = expect.Row("io_weight", "StartupIOWeight", "StartupIOWeight", ("io.example",),
                       lambda s: str(s.io_weight), lambda v: v, lambda s: ("io.example", str(s.io_weight)))
    monkeypatch.setattr(expect, "ROWS", (*expect.ROWS, extra))
    unit, shown, aspects = _translations(SliceSpec("t.slice", io_weight=70))
    assert "\nStartupIOWeight=70\n" in unit and shown["StartupIOWeight"] == "70" and "io.example" in aspects


@pytest.mark.parametrize("percent", [1, 37, 50, 100, 150, 400])
def test_cpu_quota_arithmetic_agrees_across_the_three(percent: int) -> None:
    spec = SliceSpec("t.slice", cpu_quota_percent=percent)
    quota, period = expect.cgroup_files(spec)["cpu.max"].split()
    assert int(quota) * 1_000_000 // int(period) == expect.quota_usec_per_sec(percent) == percent * 10_000
    shown = expect.shown_properties(dict(expect.slice_directives(spec)))["CPUQuotaPerSecUSec"]
    assert shown == expect.timespan(percent * 10_000)


def test_memory_limits_round_down_to_the_spec_page_size(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SliceSpec("t.slice", memory_max=3 * 4096 + 5)
    assert expect.cgroup_files(spec) == {"memory.max": str(3 * 4096)}
    monkeypatch.setattr(expect, "PAGE_SIZE", 16384)  # one constant: spec.PAGE_SIZE, not a literal
    assert expect.cgroup_files(spec) == {"memory.max": "0"}


def test_host_prep_has_its_spec_with_the_host_settings() -> None:
    spec = HostPrepSpec.of("kvm", "kvm1", HostSpec("kvm1", nested_virt=True))
    assert spec == HostPrepSpec(kind="kvm", node="kvm1", nested_virt=True, dom0_memory_mib=2048)
    with pytest.raises(SpecError, match=r"HostPrep 'n1': kind='hyperv' is invalid; allowed: .*'kvm'.*'xen'"):
        HostPrepSpec(kind="hyperv", node="n1")
    with pytest.raises(SpecError, match="dom0_memory_mib=256"):
        HostPrepSpec(kind="xen", node="n1", dom0_memory_mib=256)


def test_host_prep_table_drives_file_plan_and_checks() -> None:
    kvm = HostPrepSpec("kvm", "kvm1", nested_virt=True)
    (text,) = render_host_prep(kvm).values()
    plan = policies_plan(NodePolicies("kvm1", host_prep="kvm"), HostSpec("kvm1", nested_virt=True))
    params = module_params(kvm)
    assert [(m["module"], m["param"], m["value"]) for m in plan["module_params"]] == params
    for module, param, value in params:
        assert f"options {module} {param}={value}\n" in text
    (nested,) = [c for c in hostprep_checks("kvm1", kvm) if c.aspect == "nested-virt"]
    modprobe = "\n".join(sorted(f"options {m} {p}={v}" for m, p, v in params))
    assert _passes(nested, {nested.reads[0]: modprobe})
    assert not _passes(nested, {nested.reads[0]: modprobe.replace("=1", "=0")})

    xen = HostPrepSpec("xen", "xen1", dom0_memory_mib=4096)
    (text,) = render_host_prep(xen).values()
    values = grub(xen)
    assert values["GRUB_CMDLINE_XEN_DEFAULT"] == "dom0_mem=4096M,max:4096M"
    for var, value in values.items():
        assert f'{var}="{value}"\n' in text
    (boot,) = [c for c in hostprep_checks("xen1", xen) if c.aspect == "grub"]
    assert _passes(boot, {boot.reads[0]: "\n".join(values.values())})
    assert not _passes(boot, {boot.reads[0]: "\n".join([values["GRUB_DEFAULT"], "dom0_mem=2048M,max:2048M"])})

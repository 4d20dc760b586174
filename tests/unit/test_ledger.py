"""The node module's ownership ledger, on files in a temp directory (the kernel tier proves
the same on a real guest with units and profiles): foreign files stop apply, adopted ones come
back, hand edits survive removal, only created directories go, writes never follow links,
and a missing or corrupt ledger is an error."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.node_module import load_node_module

rz = load_node_module()


class Failed(Exception):
    pass


class FakeModule:
    """What Node needs of AnsibleModule: check mode, fail_json, run_command (no units here)."""

    def __init__(self, check: bool = False) -> None:
        self.check_mode = check
        self._diff = False

    def fail_json(self, **kw: Any) -> None:
        raise Failed(kw["msg"])

    def run_command(self, argv: list[str], **_: Any) -> tuple[int, str, str]:
        raise AssertionError(f"no command expected in a files-only plan: {argv}")


def plan(node: str, files: dict[str, str], adopt: bool = False) -> dict[str, Any]:
    entries = {p: {"content": c, "mode": "0644", "feature": "services", "adopt": adopt} for p, c in files.items()}
    return {"node": node, "units": [], "slices": [], "apparmor": [], "packages": [], "hooks": [], "module_params": [],
            "files": entries}


def run(state_dir: Path, p: dict[str, Any], state: str = "present", check: bool = False) -> Any:
    return rz.converge(FakeModule(check), p, None, None, state, str(state_dir))


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "etc").mkdir()
    return tmp_path / "state", tmp_path / "etc"


def test_apply_records_then_removal_takes_back_exactly_what_it_created(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    (etc / "existing.d").mkdir()
    f1, f2 = etc / "new.d" / "deep" / "a.conf", etc / "existing.d" / "b.conf"
    p = plan("vm1", {str(f1): "a\n", str(f2): "b\n"})
    node = run(state, p)
    assert f1.read_text() == "a\n" and f2.read_text() == "b\n"
    ledger = json.loads((state / "ledger.json").read_text())
    assert set(ledger["files"]) == {str(f1), str(f2)}
    assert set(ledger["dirs"]) == {str(etc / "new.d"), str(etc / "new.d" / "deep")}
    assert oct((state / "ledger.json").stat().st_mode & 0o777) == "0o600"
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    assert run(state, p).changes == [], "a second apply changed something"
    node = run(state, p, "absent")
    assert not f1.exists() and not f2.exists() and node.kept == []
    assert not (etc / "new.d").exists(), "a directory ringzero created stayed"
    assert (etc / "existing.d").is_dir(), "a directory ringzero did not create was removed"
    assert json.loads((state / "ledger.json").read_text())["files"] == {}


def test_a_foreign_file_at_a_planned_path_stops_apply_naming_it(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    theirs = etc / "ssh.service"
    theirs.write_text("admin's own\n")
    other = etc / "fine.conf"
    with pytest.raises(Failed, match=f"node vm1: refusing .*{theirs} exists and ringzero did not create it"):
        run(state, plan("vm1", {str(other): "x\n", str(theirs): "ours\n"}))
    assert theirs.read_text() == "admin's own\n" and not other.exists(), "apply changed something before refusing"


def test_adopt_keeps_the_original_and_restores_it_on_removal(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    theirs = etc / "usr.sbin.libvirtd"
    theirs.write_text("package's profile\n")
    theirs.chmod(0o640)
    p = plan("vm1", {str(theirs): "ringzero's\n"}, adopt=True)
    assert any("adopt" in c for c in run(state, p).changes)
    assert theirs.read_text() == "ringzero's\n"
    run(state, p, "absent")
    assert theirs.read_text() == "package's profile\n" and oct(theirs.stat().st_mode & 0o777) == "0o640"
    assert list((state / "adopted").iterdir()) == []


def test_a_file_edited_by_hand_survives_removal_and_is_reported(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    f = etc / "web.slice"
    p = plan("vm1", {str(f): "[Slice]\n"})
    run(state, p)
    f.write_text("[Slice]\nCPUWeight=5\n")
    node = run(state, p, "absent")
    assert f.read_text() == "[Slice]\nCPUWeight=5\n"
    assert node.kept == [f"{f}: edited since ringzero wrote it; kept"]


def test_a_run_cut_after_recording_does_not_make_ringzeros_old_content_look_edited(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    f = etc / "a.conf"
    run(state, plan("vm1", {str(f): "v1\n"}))
    # v2 recorded, the write never happened (the run was killed in between)
    ledger = json.loads((state / "ledger.json").read_text())
    ledger["files"][str(f)].update(prior=ledger["files"][str(f)]["sha256"], sha256=rz.sha256(b"v2\n"))
    (state / "ledger.json").write_text(json.dumps(ledger))
    node = run(state, plan("vm1", {str(f): "v2\n"}), "absent")
    assert not f.exists() and node.kept == []


def test_writes_never_follow_links(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    target = etc / "shadow"
    target.write_text("secret\n")
    target.chmod(0o600)
    link = etc / "planted.conf"
    link.symlink_to(target)
    with pytest.raises(Failed, match="is a symbolic link"):
        run(state, plan("vm1", {str(link): "x\n"}, adopt=True))
    assert target.read_text() == "secret\n" and oct(target.stat().st_mode & 0o777) == "0o600"
    # a link planted where the temp file would go cannot redirect the write either
    f = etc / "b.conf"
    rz.write_atomic(str(f), b"new\n", 0o644)
    assert f.read_text() == "new\n" and target.read_text() == "secret\n"


def test_one_nodes_plan_never_takes_another_nodes_file(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    f = etc / "shared.conf"
    run(state, plan("vm1", {str(f): "vm1\n"}))
    with pytest.raises(Failed, match="belongs to ringzero node plan 'vm1'"):
        run(state, plan("vm2", {str(f): "vm2\n"}))
    run(state, plan("vm2", {}), "absent")
    assert f.read_text() == "vm1\n"


def test_a_missing_or_corrupt_ledger_is_an_error_not_an_empty_one(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    f = etc / "a.conf"
    p = plan("vm1", {str(f): "x\n"})
    run(state, p)
    (state / "ledger.json").write_text("{not json")
    with pytest.raises(Failed, match=r"ledger\.json is corrupt"):
        run(state, p, "absent")
    (state / "ledger.json").write_text(json.dumps({"version": 1, "files": []}))
    with pytest.raises(Failed, match="not a version-1 ringzero ledger"):
        run(state, p, "absent")
    (state / "ledger.json").unlink()
    (state / "adopted").mkdir()
    with pytest.raises(Failed, match=r"ledger\.json is missing but .* holds ringzero state"):
        run(state, p, "absent")
    assert f.exists(), "a lost ledger made removal delete a file"


def test_removal_of_what_the_plan_no_longer_declares_goes_by_the_ledger(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    a, b = etc / "a.conf", etc / "b.conf"
    run(state, plan("vm1", {str(a): "a\n", str(b): "b\n"}))
    run(state, plan("vm1", {str(a): "a\n"}))  # no `previous` given: the ledger knows b
    assert a.exists() and not b.exists()


def test_one_run_per_node_at_a_time(tree: tuple[Path, Path]) -> None:
    state, _ = tree
    first = rz.Ledger(str(state))
    first.lock("vm1")
    errors: list[str] = []

    def second() -> None:
        try:
            rz.Ledger(str(state)).lock("vm1", timeout=1)
        except rz.LedgerError as e:
            errors.append(str(e))

    t = threading.Thread(target=second)
    start = time.monotonic()
    t.start()
    t.join()
    assert time.monotonic() - start >= 1
    assert errors and f"pid {os.getpid()}, node vm1" in errors[0], errors
    os.close(first.lock_fd)
    second_ledger = rz.Ledger(str(state))
    second_ledger.lock("vm1", timeout=1)  # free again once the holder is gone
    os.close(second_ledger.lock_fd)


def test_a_node_applied_before_the_ledger_existed_is_taken_over_not_refused(tree: tuple[Path, Path]) -> None:
    """Upgrade path: no ledger yet, a planned file already holds exactly the plan's content
    (an earlier ringzero wrote it): taken over as adopted, so removal keeps it; a file that
    differs is still refused."""
    state, etc = tree
    same, other = etc / "web.slice", etc / "batch.slice"
    same.write_text("[Slice]\n")
    node = run(state, plan("vm1", {str(same): "[Slice]\n"}))
    assert node.changes == [f"take over {same} (as planned, written before this node had a ledger; kept on removal)"]
    assert run(state, plan("vm1", {str(same): "[Slice]\n"})).changes == []
    run(state, plan("vm1", {str(same): "[Slice]\n"}), "absent")
    assert same.read_text() == "[Slice]\n", "a file ringzero cannot prove it created was deleted"
    other.write_text("[Slice]\nCPUWeight=5\n")
    (state / "ledger.json").unlink()
    for leftover in (state / "adopted").iterdir():
        leftover.unlink()
    (state / "adopted").rmdir()
    with pytest.raises(Failed, match=r"batch\.slice exists and ringzero did not create it"):
        run(state, plan("vm1", {str(other): "[Slice]\n"}))


def test_two_stacks_on_one_node_own_and_remove_only_their_own(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    a, b = etc / "a.conf", etc / "b.conf"
    pa = {**plan("vm1", {str(a): "a\n"}), "owner": "proj/stack-a/vm1"}
    pb = {**plan("vm1", {str(b): "b\n"}), "owner": "proj/stack-b/vm1"}
    run(state, pa)
    run(state, pb)
    owners = {p: e["owner"] for p, e in json.loads((state / "ledger.json").read_text())["files"].items()}
    assert owners == {str(a): "proj/stack-a/vm1", str(b): "proj/stack-b/vm1"}
    with pytest.raises(Failed, match="belongs to ringzero node plan 'proj/stack-a/vm1'"):
        run(state, {**plan("vm1", {str(a): "mine\n"}), "owner": "proj/stack-b/vm1"})
    run(state, pb, "absent")
    assert a.read_text() == "a\n" and not b.exists()


def test_entries_of_a_plan_without_owner_are_taken_over_by_its_stack(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    f = etc / "new.d" / "a.conf"
    run(state, plan("vm1", {str(f): "a\n"}))  # applied before plans named their stack
    run(state, {**plan("vm1", {str(f): "a\n"}), "owner": "proj/stack/vm1"}, check=True)
    assert {e["owner"] for e in json.loads((state / "ledger.json").read_text())["files"].values()} == {"vm1"}
    node = run(state, {**plan("vm1", {str(f): "a\n"}), "owner": "proj/stack/vm1"})
    assert node.changes == []
    ledger = json.loads((state / "ledger.json").read_text())
    assert {e["owner"] for e in ledger["files"].values()} == {"proj/stack/vm1"}
    assert set(ledger["dirs"].values()) == {"proj/stack/vm1"}
    run(state, {**plan("vm1", {str(f): "a\n"}), "owner": "proj/stack/vm1"}, "absent")
    assert not f.exists() and not f.parent.exists()


def test_temp_files_of_an_interrupted_write_are_removed_by_the_next(tree: tuple[Path, Path]) -> None:
    state, etc = tree
    f = etc / "a.conf"
    stale = etc / ".a.conf.ringzero-0123456789ab"
    stale.write_text("half of it")
    foreign = etc / ".a.conf.ringzero-admin-notes"  # not of ringzero's pattern: left alone
    foreign.write_text("mine")
    run(state, plan("vm1", {str(f): "a\n"}))
    assert f.read_text() == "a\n" and not stale.exists() and foreign.read_text() == "mine"
    assert sorted(p.name for p in etc.iterdir()) == [".a.conf.ringzero-admin-notes", "a.conf"]

#!/usr/bin/python3
"""Apply (or remove) a ringzero node plan in one module run.

Under TCG every module run costs 2-3 s, so a node's whole plan (files, systemd units,
slices, AppArmor profiles, packages) is converged here in one run instead of a task per
file. The plan is rendered on the controller by `ringzero.plan.node_plan` from the policy
manifest; this module only compares and converges. Check mode reports what would change,
including runtime drift (a unit stopped, a profile unloaded or in the wrong mode).
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ringzero_node
short_description: Converge a node to a ringzero plan (files, units, slices, AppArmor, packages)
description:
  - Writes the plan's files, reloads systemd, loads AppArmor profiles in their declared mode,
    starts slices, enables and (re)starts units whose files changed, checks packages.
  - With I(state=absent) removes what the plan put there: stops and disables owned units,
    unloads profiles, removes files. Packages and units ringzero does not own are left alone.
  - Files of I(previous) that are no longer in I(plan) are removed the same way.
options:
  plan:
    description: The node plan (ringzero.plan.node_plan).
    type: dict
    required: true
  previous:
    description: The plan applied before, to remove what is no longer declared.
    type: dict
  features:
    description: Apply only these features of the plan (the feature playbooks); all when omitted.
    type: list
    elements: str
  state:
    description: present or absent.
    type: str
    default: present
    choices: [present, absent]
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

APPARMOR_PROFILES = "/sys/kernel/security/apparmor/profiles"
SYSTEMD_PREFIXES = ("/etc/systemd/system/", "/usr/lib/systemd/system/")
AGENT_ATTACH_TIMEOUT_S = 120


class Node:
    def __init__(self, module):
        self.module = module
        self.check = module.check_mode
        self.changes = []
        self.reboot_notes = []

    # ---- small helpers ------------------------------------------------------------------
    def run(self, *argv, ok=(0,)):
        rc, out, err = self.module.run_command(list(argv))
        if rc not in ok:
            self.module.fail_json(msg=f"{' '.join(argv)} failed (rc={rc}): {(err or out).strip()}",
                                  changes=self.changes)
        return rc, out

    def change(self, what):
        self.changes.append(what)

    @staticmethod
    def read(path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def unit_state(self, unit):
        _, out = self.run("systemctl", "show", unit, "-p", "ActiveState,UnitFileState,LoadState", ok=(0, 1))
        props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return props.get("ActiveState", ""), props.get("UnitFileState", ""), props.get("LoadState", "")

    @staticmethod
    def loaded_profiles():
        try:
            with open(APPARMOR_PROFILES) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        out = {}
        for line in lines:
            name, _, mode = line.rpartition(" ")
            out[name] = mode.strip("()")
        return out

    # ---- files ----------------------------------------------------------------------------
    def write_files(self, files):
        changed = set()
        for path, spec in sorted(files.items()):
            want = spec["content"].encode()
            mode = int(spec.get("mode", "0644"), 8)
            have = self.read(path)
            have_mode = os.stat(path).st_mode & 0o7777 if have is not None else None
            if have == want and have_mode == mode:
                continue
            changed.add(path)
            self.change(f"file {path}")
            if self.check:
                continue
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            tmp = f"{path}.ringzero-tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(want)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        return changed

    def remove_files(self, paths):
        removed = set()
        for path in sorted(paths):
            if os.path.lexists(path):
                removed.add(path)
                self.change(f"remove {path}")
                if not self.check:
                    os.remove(path)
                    parent = os.path.dirname(path)
                    if parent.endswith(".d") and os.path.isdir(parent) and not os.listdir(parent):
                        os.rmdir(parent)  # a drop-in directory ringzero made for its drop-in
        return removed

    # ---- AppArmor -------------------------------------------------------------------------
    def load_profiles(self, profiles, changed_files):
        if not profiles:
            return
        loaded = self.loaded_profiles()
        if loaded is None:
            self.module.fail_json(msg=f"AppArmor is not enabled on this node ({APPARMOR_PROFILES} unreadable)")
        for p in profiles:
            if p["path"] not in changed_files and loaded.get(p["name"]) == p["mode"]:
                continue
            self.change(f"apparmor {p['name']} ({p['mode']})")
            if not self.check:
                argv = ["apparmor_parser", "-r", "-W"] + (["-C"] if p["mode"] == "complain" else []) + [p["path"]]
                self.run(*argv)

    def unload_profiles(self, profiles):
        loaded = self.loaded_profiles() or {}
        for p in profiles:
            if p["name"] in loaded:
                self.change(f"unload apparmor {p['name']}")
                if self.check:
                    continue
                if os.path.exists(p["path"]):
                    self.run("apparmor_parser", "-R", p["path"])
                else:  # the file is gone already: unload by name
                    with open("/sys/kernel/security/apparmor/.remove", "w") as f:
                        f.write(p["name"])

    # ---- systemd --------------------------------------------------------------------------
    def daemon_reload(self):
        self.change("systemd daemon-reload")
        if not self.check:
            self.run("systemctl", "daemon-reload")

    def converge_slices(self, slices, changed_files):
        for s in slices:
            active, enabled, _ = self.unit_state(s["unit"])
            if enabled != "enabled":
                # enabled: the slice (and its cgroup) exists from boot, even before a unit runs in it
                self.change(f"enable {s['unit']}")
                if not self.check:
                    self.run("systemctl", "enable", s["unit"])
            # Overrides of settings ringzero declares (`systemctl set-property` writes them as
            # system.control drop-ins) are drift: they go, and daemon-reload applies the unit's
            # own values to the live cgroup again.
            overrides = self.overrides(s)
            drift = self.slice_drift(s) if active == "active" else []
            if overrides or drift:
                self.change(f"slice {s['unit']} drift: {', '.join(drift or overrides)}")
                if not self.check:
                    self.remove_overrides(overrides)
                    still = self.slice_drift(s)
                    if still:
                        _, out = self.run("systemctl", "show", s["unit"], "-p", "DropInPaths")
                        self.module.fail_json(
                            msg=f"{s['unit']}: {', '.join(still)} set by a drop-in ringzero did not create "
                                f"({out.strip()}); remove or change it, ringzero never deletes it",
                            changes=self.changes)
            if active != "active":
                self.change(f"start {s['unit']}")
                if not self.check:
                    self.run("systemctl", "start", s["unit"])

    def slice_drift(self, s):
        expect = s.get("expect", {})
        if not expect:
            return []
        _, out = self.run("systemctl", "show", s["unit"], "-p", ",".join(expect), ok=(0, 1))
        have = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return [f"{k}={have.get(k, '?')} (declared {v})" for k, v in expect.items() if have.get(k) != v]

    @staticmethod
    def overrides(s):
        found = []
        for base in ("/etc/systemd/system.control", "/run/systemd/system.control"):
            for key in s["properties"]:
                path = f"{base}/{s['unit']}.d/50-{key}.conf"
                if os.path.exists(path):
                    found.append(path)
        return found

    def remove_overrides(self, paths):
        for path in paths:
            os.remove(path)
        if paths:
            self.run("systemctl", "daemon-reload")

    def converge_units(self, units, changed_files):
        for u in units:
            name = u["unit"]
            active, enabled, load = self.unit_state(name)
            touched = any(f in changed_files for f in u["files"])
            if u["owned"]:
                if enabled not in ("enabled", "static") or load != "loaded":
                    self.change(f"enable {name}")
                    if not self.check:
                        self.run("systemctl", "enable", name)
                if touched or active != "active":
                    self.change(f"{'restart' if active == 'active' else 'start'} {name}")
                    if not self.check:
                        self.run("systemctl", "restart", name)
                        if u["feature"] == "ebpf":
                            self.wait_attached(name)
            elif touched and load == "loaded":
                # A unit ringzero only confines: restart it if it runs, never start or enable it.
                self.change(f"try-restart {name}")
                if not self.check:
                    self.run("systemctl", "try-restart", name)

    def wait_attached(self, unit, timeout=AGENT_ATTACH_TIMEOUT_S):
        """An eBPF agent is up once its process holds attached BPF programs (bpftrace compiles
        its program first: seconds on a slow machine). Wait for that, bounded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, out = self.run("systemctl", "show", "-p", "MainPID", "--value", unit, ok=(0, 1))
            pid = int(out.strip() or 0)
            if pid:
                _, perf = self.run("bpftool", "-j", "perf", ok=(0, 1, 255))
                try:
                    if any(int(e.get("pid", 0)) == pid for e in json.loads(perf or "[]")):
                        return
                except ValueError:
                    pass
            time.sleep(1)
        _, log = self.run("journalctl", "-u", unit, "-n", "15", "--no-pager", "-q", ok=(0, 1))
        self.module.fail_json(msg=f"{unit}: no BPF program attached within {timeout} s; its journal:\n{log}",
                              changes=self.changes)

    def stop_units(self, units):
        for u in units:
            active, enabled, load = self.unit_state(u["unit"])
            if load != "loaded":
                continue
            if u["owned"]:
                if active in ("active", "activating", "reloading") or enabled == "enabled":
                    self.change(f"stop and disable {u['unit']}")
                    if not self.check:
                        self.run("systemctl", "disable", "--now", u["unit"])
            elif active == "active":
                self.change(f"try-restart {u['unit']}")
                if not self.check:
                    self.run("systemctl", "try-restart", u["unit"])

    def disable_slices(self, slices):
        """Before their files go: `systemctl disable` needs the unit file to find its links."""
        for s in slices:
            if self.unit_state(s["unit"])[1] == "enabled":
                self.change(f"disable {s['unit']}")
                if not self.check:
                    self.run("systemctl", "disable", s["unit"])

    def stop_slices(self, slices):
        for s in slices:
            active, _, load = self.unit_state(s["unit"])
            if active == "active" and load != "masked":
                self.change(f"stop {s['unit']}")
                if not self.check:
                    self.run("systemctl", "stop", s["unit"])

    # ---- packages -------------------------------------------------------------------------
    def ensure_packages(self, packages):
        if not packages:
            return
        _, out = self.run("dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages, ok=(0, 1))
        installed = {ln.split()[0] for ln in out.splitlines() if ln.endswith(" installed")}
        missing = [p for p in packages if p not in installed]
        if not missing:
            return
        self.change("install " + " ".join(missing))
        if not self.check:
            env = {"DEBIAN_FRONTEND": "noninteractive"}
            rc, out, err = self.module.run_command(
                ["apt-get", "install", "-y", "--no-install-recommends", *missing], environ_update=env)
            if rc != 0:
                self.module.fail_json(
                    msg=f"packages {', '.join(missing)} are not installed and apt-get could not install them "
                        f"(no network on this node?): {(err or out).strip()[-400:]}", changes=self.changes)

    def converge_module_params(self, params):
        """Loaded kernel modules whose live parameter differs from the declared one are
        reloaded; a module in use (guests running) cannot be, and a reboot is noted instead."""
        for p in params:
            live_path = f"/sys/module/{p['module']}/parameters/{p['param']}"
            live = self.read(live_path)
            if live is None:
                continue  # not loaded: modprobe.d applies when it is
            have = {"Y": "1", "N": "0"}.get(live.decode().strip(), live.decode().strip())
            if have == p["value"]:
                continue
            self.change(f"reload {p['module']} ({p['param']}={have}, declared {p['value']})")
            if self.check:
                continue
            rc, _, err = self.module.run_command(["modprobe", "-r", p["module"]])
            if rc != 0:
                self.reboot_notes.append(f"{p['module']} is in use ({err.strip()}): {p['param']}={p['value']} "
                                         "takes effect after a reboot")
                continue
            self.run("modprobe", p["module"])

    def run_hooks(self, hooks, changed_files):
        for h in hooks:
            if not any(f in changed_files for f in h["files"]):
                continue
            exe = h["argv"][0]
            if not os.path.exists(exe):
                self.reboot_notes.append(f"{exe} is not installed here: run it after installing it ({h['why']})")
                continue
            self.change(f"run {' '.join(h['argv'])}")
            if not self.check:
                self.run(*h["argv"])
            if h.get("reboot"):
                self.reboot_notes.append(h["why"])

    # ---- the two states ---------------------------------------------------------------------
    def present(self, plan, previous):
        gone = _gone(previous or {}, plan)
        self.stop_units(gone["units"])
        self.unload_profiles(gone["apparmor"])
        self.disable_slices(gone["slices"])
        removed = self.remove_files(gone["files"])
        changed = self.write_files(plan["files"])
        if any(p.startswith(SYSTEMD_PREFIXES) for p in changed | removed):
            self.daemon_reload()
        self.stop_slices(gone["slices"])
        self.ensure_packages(plan.get("packages", []))
        self.load_profiles(plan["apparmor"], changed)
        self.converge_slices(plan["slices"], changed)
        self.converge_units(plan["units"], changed | removed)
        self.converge_module_params(plan.get("module_params", []))
        self.run_hooks(plan.get("hooks", []), changed)

    def absent(self, plan):
        self.stop_units([u for u in plan["units"] if u["owned"]])
        self.unload_profiles(plan["apparmor"])
        self.disable_slices(plan["slices"])
        removed = self.remove_files(plan["files"])
        if any(p.startswith(SYSTEMD_PREFIXES) for p in removed):
            self.daemon_reload()
        # Units ringzero only confined go back to their own settings.
        self.converge_units([u for u in plan["units"] if not u["owned"]], removed)
        self.stop_slices(plan["slices"])


def select(plan, features):
    """The part of `plan` that belongs to `features`. A unit another feature installs stays in
    when a selected feature's file changes it, but only as confined (restarted if running)."""
    if plan is None or features is None:
        return plan
    want = set(features)
    files = {p: f for p, f in plan.get("files", {}).items() if f.get("feature") in want}
    units = []
    for u in plan.get("units", []):
        if u["feature"] in want:
            units.append(u)
        elif any(p in files for p in u["files"]):
            units.append({**u, "owned": False, "files": [p for p in u["files"] if p in files]})
    return {
        **plan,
        "files": files,
        "units": units,
        "apparmor": [p for p in plan.get("apparmor", []) if p["feature"] in want],
        "slices": [s for s in plan.get("slices", []) if s["feature"] in want],
        "hooks": [h for h in plan.get("hooks", []) if h["feature"] in want],
        "module_params": [m for m in plan.get("module_params", []) if m["feature"] in want],
        "packages": plan.get("packages", []) if "host_prep" in want else [],
    }


def _gone(previous, plan):
    """What `previous` declared that `plan` no longer does."""
    files = set(plan.get("files", {}))
    units = {u["unit"] for u in plan.get("units", [])}
    profiles = {p["name"] for p in plan.get("apparmor", [])}
    slices = {s["unit"] for s in plan.get("slices", [])}
    return {
        "files": [p for p in previous.get("files", {}) if p not in files],
        "units": [u for u in previous.get("units", []) if u["unit"] not in units],
        "apparmor": [p for p in previous.get("apparmor", []) if p["name"] not in profiles],
        "slices": [s for s in previous.get("slices", []) if s["unit"] not in slices],
    }


def main():
    module = AnsibleModule(
        argument_spec={
            # Not no_log: Ansible would then mask every value of the plan wherever it appears in
            # the result, unit and profile names in `changes` included.
            "plan": {"type": "dict", "required": True},
            "previous": {"type": "dict", "required": False, "default": None},
            "features": {"type": "list", "elements": "str", "required": False, "default": None},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        },
        supports_check_mode=True,
    )
    node = Node(module)
    features = module.params["features"]
    plan = select(module.params["plan"], features)
    if module.params["state"] == "present":
        node.present(plan, select(module.params["previous"], features))
    else:
        node.absent(plan)
    module.exit_json(changed=bool(node.changes), changes=node.changes,
                     reboot_required=bool(node.reboot_notes), reboot_notes=node.reboot_notes)


if __name__ == "__main__":
    main()

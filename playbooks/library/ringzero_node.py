#!/usr/bin/python
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
  - Converges a node to its ringzero plan in one module run, the plan being what
    C(ringzero plan --node NODE) writes (or C(ringzero.plan.node_plan) returns).
  - Writes the plan's files, reloads systemd, loads AppArmor profiles in their declared mode,
    starts slices, enables and (re)starts units whose files changed, checks packages and
    kernel module options.
  - Touches only what ringzero owns. Every file, directory, unit and profile it creates is
    recorded first in a root-only ledger (O(state_dir)/ledger.json). A planned file, unit or
    profile that exists and is not in the ledger stops the run naming it, unless the plan
    entry says C(adopt), in which case the original is saved and restored on removal.
  - With O(state=absent) removes only the ledger entries of this plan's node. It stops and
    disables units it installed, unloads its profiles, removes its files (a file edited by hand
    since is kept and reported), removes only directories it created, restarts units it only
    confined, and leaves a slice running while units ringzero did not place there run in it.
  - What the ledger owns for this node and the plan no longer declares is removed the same way.
  - One run per node at a time (an exclusive lock in O(state_dir)). Writes are atomic and
    never follow symbolic links. A missing or corrupt ledger is an error.
author:
  - ringzero maintainers (@ringzero)
options:
  plan:
    description:
      - The node plan, a mapping with C(node), C(files), C(units), C(slices), C(apparmor),
        C(packages), C(hooks) and C(module_params).
      - Written by C(ringzero plan --node NODE --out FILE); pass it with C(-e @FILE) as
        C(ringzero_plan).
    type: dict
    required: true
  previous:
    description:
      - The plan applied before. Units it only confined and this plan does not are restarted
        on their own settings.
    type: dict
  features:
    description:
      - Apply only these features of the plan (what the feature playbooks do); all when omitted.
    type: list
    elements: str
    choices: [services, slices, apparmor, seccomp, ebpf, host_prep, namespaces, fsview, landlock, firewall, sockfilter]
  state:
    description:
      - V(present) converges the node to the plan; V(absent) removes what the ledger says
        this plan's node owns.
    type: str
    default: present
    choices: [present, absent]
  state_dir:
    description:
      - Where the ledger, its lock and adopted originals live (root only).
    type: path
    default: /var/lib/ringzero
attributes:
  check_mode:
    support: full
    description: Reports what would change, runtime drift included (a unit stopped, a profile
      unloaded or in the wrong mode, a slice setting overridden with C(systemctl set-property)).
  diff_mode:
    support: full
    description: Returns the before and after content of every file the run changes.
  platform:
    support: full
    platforms: posix
    description: Debian 12 with systemd; AppArmor for profiles, bpftrace for eBPF agents.
notes:
  - Needs root (C(become)). Packages the plan lists are installed with C(apt-get), never removed.
requirements:
  - systemd
"""

EXAMPLES = r"""
# ringzero plan --manifest manifest.json --node vm1 --out vm1.yml
# ansible-playbook -i inventory apply.yml -e @vm1.yml --limit vm1 [--check --diff]
- name: Ensure the node matches its ringzero plan
  ringzero.node.ringzero_node:
    plan: "{{ ringzero_plan }}"
  become: true
  register: __ringzero_register_node

- name: Apply only the slices and AppArmor profiles of the plan
  ringzero.node.ringzero_node:
    plan: "{{ ringzero_plan }}"
    features: [slices, apparmor]
  become: true

- name: Remove everything the plan put on the node (only what the ledger owns)
  ringzero.node.ringzero_node:
    plan: "{{ ringzero_plan }}"
    state: absent
  become: true
"""

RETURN = r"""
changes:
  description: What the run changed (or, in check mode, would change), one line each.
  returned: always
  type: list
  elements: str
  sample: ["file /etc/systemd/system/web.slice", "systemd daemon-reload", "start web.slice"]
kept:
  description: What ringzero left in place on purpose (edited by hand since it wrote it, or not its own).
  returned: always
  type: list
  elements: str
  sample: ["/etc/systemd/system/web.slice.d: holds files ringzero did not create; kept"]
reboot_required:
  description: Whether part of the plan takes effect only after a reboot.
  returned: always
  type: bool
  sample: false
landlock_dropped:
  description: What best_effort Landlock rulesets cannot enforce on this node's Landlock ABI, one line each
    (a strict one fails the run instead, before anything changes).
  returned: always
  type: list
  elements: str
  sample: ["Landlock 'web' (best_effort): the node's Landlock ABI is 2; dropped truncate (ABI 3), bind_tcp (ABI 4)"]
reboot_notes:
  description: Why a reboot is required, one line each.
  returned: always
  type: list
  elements: str
  sample: ["kvm_intel is in use: nested=1 takes effect after a reboot"]
"""

import errno
import fcntl
import hashlib
import json
import os
import secrets
import stat
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.ringzero_facts import (
    APPARMOR_PROFILES,
    DPKG_FORMAT,
    apparmor_profiles,
    bpf_attachments,
    cgroup_events,
    dpkg_packages,
    module_param,
    module_param_path,
    systemctl_show,
    systemctl_show_units,
)
from ansible.module_utils.ringzero_plan import plan_errors

SYSTEMD_DIR = "/etc/systemd/system"
SYSTEMD_PREFIXES = ("/etc/systemd/system/", "/usr/lib/systemd/system/")
AGENT_ATTACH_TIMEOUT_S = 120
STATE_DIR = "/var/lib/ringzero"
LEDGER_VERSION = 1
LOCK_TIMEOUT_S = 300
UNIT_PROPS = "ActiveState,UnitFileState,LoadState,FragmentPath"


class LedgerError(Exception):
    """The ledger cannot be trusted (missing where it must exist, corrupt): nothing is touched."""


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read_nofollow(path):
    """A file's bytes without following a symlink at `path`; None when absent. A symlink or
    anything but a regular file raises (ringzero never writes through or over links)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LedgerError(f"{path} is a symbolic link: ringzero does not write through or over links") from None
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise LedgerError(f"{path} is not a regular file")
        return f.read()


def _remove_stale_temp_files(parent, name):
    """Temp files of a write that a power cut (or a SIGKILL of the module) interrupted before
    its rename: `.<name>.ringzero-<12 hex>`, regular files, ringzero's by their name alone."""
    prefix = f".{name}.ringzero-"
    try:
        entries = os.listdir(parent)
    except FileNotFoundError:
        return
    for entry in entries:
        rest = entry[len(prefix):]
        if entry.startswith(prefix) and len(rest) == 12 and all(c in "0123456789abcdef" for c in rest):
            full = os.path.join(parent, entry)
            if stat.S_ISREG(os.lstat(full).st_mode):
                os.unlink(full)


def write_atomic(path, data, mode):
    """Write `data` to `path` so that a reader (or a run cut at any point) sees the old file
    or the new one, never half of it: a fresh temp file in the same directory, created with
    O_EXCL|O_NOFOLLOW (a planted link cannot redirect it), fsync'd, then renamed over `path`
    (rename replaces a link at `path` itself, never its target)."""
    parent = os.path.dirname(path)
    if os.path.islink(parent):
        raise LedgerError(f"{parent} is a symbolic link: ringzero does not write through links")
    _remove_stale_temp_files(parent, os.path.basename(path))
    tmp = os.path.join(parent, f".{os.path.basename(path)}.ringzero-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), mode)  # umask, and no path lookup
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class Ledger:
    """What ringzero owns on this node, kept in STATE_DIR/ledger.json (root only).

    - files: path -> {owner, feature, sha256 (of what ringzero wrote), mode, backup}
      (`backup`: where an adopted original is kept, restored on removal; None if ringzero
      created the file);
    - dirs: directories ringzero created (path -> owner); only these are ever removed;
    - units / profiles: systemd units and AppArmor profiles ringzero owns or adopted
      (name -> {owner, feature, adopted}).
    `owner` is the plan's `owner` (the declaring stack and node, "project/stack/node") or, for a
    plan without one, its node name: two plans applied to one machine own disjoint things.
    Entries are written *before* the change they describe (fsync'd, atomically), so a run cut
    at any point leaves a ledger that claims at most what a re-run converges.

    Missing: a node that never ran ringzero has neither STATE_DIR nor the ledger; STATE_DIR
    without a ledger means it was lost, and that is an error (never "own nothing, delete
    everything" or "own nothing, refuse everything" silently).
    """

    def __init__(self, state_dir=STATE_DIR):
        self.dir = state_dir
        self.path = os.path.join(state_dir, "ledger.json")
        self.backups = os.path.join(state_dir, "adopted")
        self.data = None
        self.lock_fd = None
        self.fresh = False  # no ledger existed on this node before this run

    def lock(self, node, timeout=LOCK_TIMEOUT_S):
        """One run per node at a time: an exclusive flock held for the whole module run (the
        kernel drops it when the run ends, however it ends)."""
        self._ensure_dir(self.dir)
        path = os.path.join(self.dir, "lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                    os.close(fd)
                    raise LedgerError(f"another ringzero run holds {path} ({holder}) for more than {timeout} s")
                time.sleep(1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, node {node}, since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
                  .encode(), 0)
        self.lock_fd = fd

    @staticmethod
    def _ensure_dir(path):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            os.mkdir(path, 0o700)
            st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise LedgerError(f"{path} is not a directory owned by uid {os.getuid()}")
        if st.st_mode & 0o077:
            os.chmod(path, 0o700)

    def load(self):
        raw = read_nofollow(self.path)
        if raw is None:
            if os.path.exists(self.dir) and os.listdir(self.dir) not in ([], ["lock"]):
                raise LedgerError(f"{self.path} is missing but {self.dir} holds ringzero state "
                                  f"({', '.join(sorted(os.listdir(self.dir)))}): restore the ledger before applying")
            self.data = {"version": LEDGER_VERSION, "files": {}, "dirs": {}, "units": {}, "profiles": {}}
            self.fresh = True
            return self.data
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise LedgerError(f"{self.path} is corrupt ({e}): fix or restore it; nothing was changed") from None
        if (not isinstance(data, dict) or data.get("version") != LEDGER_VERSION
                or not all(isinstance(data.get(k), dict) for k in ("files", "dirs", "units", "profiles"))):
            raise LedgerError(f"{self.path} is not a version-{LEDGER_VERSION} ringzero ledger: "
                              "fix or restore it; nothing was changed")
        self.data = data
        return data

    def save(self):
        self._ensure_dir(self.dir)
        write_atomic(self.path, (json.dumps(self.data, indent=1, sort_keys=True) + "\n").encode(), 0o600)

    # views
    def file(self, path):
        return self.data["files"].get(path)

    def entries(self, kind, owner, features=None):
        for key, e in sorted(self.data[kind].items()):
            who = e if isinstance(e, str) else e["owner"]
            if who == owner and (features is None or isinstance(e, str) or e.get("feature") in features):
                yield key, e


class Node:
    def __init__(self, module, ledger, owner, features):
        self.module = module
        self.check = module.check_mode
        self.changes = []
        self.kept = []
        self.reboot_notes = []
        self.landlock_dropped = []
        self.ledger = ledger
        self.owner = owner
        self.features = None if features is None else set(features) | {"confined"}
        self.diff_before = {}
        self.preexisting = set()  # owned units that existed before this run (claim)
        self.migrated = set()  # files identical to the plan on a node without a ledger yet (claim)
        self.diff_after = {}
        # Node state read once and reused until something changes it (Node.run drops it):
        # `systemctl show` of every unit the run looks at in one call, the loaded profiles.
        self.watched_units = []
        self.shown = {}
        self.batch_next = True
        self.profiles = None

    def take_over_unnamed(self, node_name):
        """Entries written before plans named their stack carry only the node's name: the first
        stack-owned plan for that node takes them over (one stack applied them then)."""
        moved = 0
        for kind in ("files", "dirs", "units", "profiles"):
            for key, e in list(self.ledger.entries(kind, node_name)):
                self.ledger.data[kind][key] = self.owner if isinstance(e, str) else {**e, "owner": self.owner}
                moved += 1
        if moved and not self.check:
            self.ledger.save()

    # ---- small helpers ------------------------------------------------------------------
    def fail(self, msg):
        self.module.fail_json(msg=f"node {self.owner}: {msg}", changes=self.changes, kept=self.kept)

    def run(self, *argv, ok=(0,)):
        self.forget_state(argv)
        rc, out, err = self.module.run_command(list(argv))
        if rc not in ok:
            self.fail(f"{' '.join(argv)} failed (rc={rc}): {(err or out).strip()}")
        return rc, out

    def change(self, what):
        self.changes.append(what)

    def keep(self, what):
        """Something ringzero leaves in place on purpose (not its own, or edited by hand)."""
        self.kept.append(what)

    @staticmethod
    def read(path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    # ---- node state, read once -------------------------------------------------------------
    def watch_units(self, names):
        """The units this run will look at: their state is read in one `systemctl show`."""
        self.watched_units = sorted(set(self.watched_units) | set(names))

    def forget_state(self, argv):
        """What a command is about to change is read again afterwards: any systemctl verb
        but `show` (a start or a daemon-reload can change other units too), any profile load."""
        if argv[0] == "systemctl" and argv[1:2] != ("show",):
            self.shown = {}
            self.batch_next = self.batch_next or argv[1:2] == ("daemon-reload",)
        elif argv[0] == "apparmor_parser":
            self.profiles = None

    def unit_props(self, unit):
        """ActiveState, UnitFileState, LoadState and FragmentPath of `unit`. At the start of a
        run and after a daemon-reload, every watched unit is read in the same call."""
        if unit not in self.shown:
            names = [unit]
            if self.batch_next:
                names = sorted(set(self.watched_units) | {unit})
                self.batch_next = False
            _, out = self.run("systemctl", "show", *names, "-p", UNIT_PROPS, ok=(0, 1))
            shown = systemctl_show_units(out, names)
            if any(not shown[n] for n in names):  # a short answer: read this unit alone
                _, out = self.run("systemctl", "show", unit, "-p", UNIT_PROPS, ok=(0, 1))
                shown = {unit: systemctl_show(out)}
            self.shown.update(shown)
        return self.shown[unit]

    def unit_state(self, unit):
        props = self.unit_props(unit)
        return props.get("ActiveState", ""), props.get("UnitFileState", ""), props.get("LoadState", "")

    def unit_fragment(self, unit):
        props = self.unit_props(unit)
        return props.get("FragmentPath", "") if props.get("LoadState") not in ("not-found", "") else ""

    def loaded_profiles(self):
        """Loaded AppArmor profiles (name -> mode), None where AppArmor is off."""
        if self.profiles is None:
            text = self.read(APPARMOR_PROFILES)
            if text is None:
                return None
            self.profiles = apparmor_profiles(text.decode(errors="replace"))
        return self.profiles

    # ---- ownership --------------------------------------------------------------------------
    def claim(self, plan):
        """Before anything changes: every planned file, owned unit and profile must be
        ringzero's (this node's), absent, or declared `adopt`. The first foreign one stops
        the run, naming it."""
        foreign = []
        for path, spec in sorted(plan["files"].items()):
            entry = self.ledger.file(path)
            if entry is not None and entry["owner"] != self.owner:
                foreign.append(f"{path} belongs to ringzero node plan '{entry['owner']}'")
                continue
            try:
                have = read_nofollow(path)
            except LedgerError as e:
                foreign.append(str(e))
                continue
            if entry is None and have is not None and self.ledger.fresh and have == spec["content"].encode():
                # A node applied before ringzero kept a ledger: a file that is exactly what the plan
                # says is taken over as adopted (kept, never deleted, on removal).
                self.migrated.add(path)
                continue
            if entry is None and have is not None and not spec.get("adopt"):
                foreign.append(f"{path} exists and ringzero did not create it (declare adopt: true to take it "
                               "over; the original is kept and restored on removal)")
        for u in plan["units"]:
            if not u["owned"]:
                continue
            entry = self.ledger.data["units"].get(u["unit"])
            if entry is not None:
                if entry["owner"] != self.owner:
                    foreign.append(f"unit {u['unit']} belongs to ringzero node plan '{entry['owner']}'")
                continue
            fragment = self.unit_fragment(u["unit"])
            if fragment:
                self.preexisting.add(u["unit"])
            ours = f"{SYSTEMD_DIR}/{u['unit']}"
            if fragment and fragment != ours and not u.get("adopt"):
                foreign.append(f"unit {u['unit']} already exists ({fragment}) and ringzero did not create it "
                               "(declare adopt: true to take it over)")
        for s in plan["slices"]:
            entry = self.ledger.data["units"].get(s["unit"])
            if entry is not None and entry["owner"] != self.owner:
                foreign.append(f"slice {s['unit']} belongs to ringzero node plan '{entry['owner']}'")
            elif entry is None:
                fragment = self.unit_fragment(s["unit"])
                if fragment and fragment != s["path"]:
                    foreign.append(f"slice {s['unit']} already exists ({fragment}) and ringzero did not create it")
        loaded = None
        for p in plan["apparmor"]:
            entry = self.ledger.data["profiles"].get(p["name"])
            if entry is not None:
                if entry["owner"] != self.owner:
                    foreign.append(f"AppArmor profile {p['name']} belongs to ringzero node plan '{entry['owner']}'")
                continue
            if loaded is None:
                loaded = self.loaded_profiles() or {}
            # Loaded from ringzero's own file: a run cut (a power cut, say) after the file was
            # written and before the load was recorded, and the boot loaded it from there.
            own_file = self.ledger.file(p["path"])
            ours = own_file is not None and own_file["owner"] == self.owner and \
                sha256(self.read(p["path"]) or b"") == own_file["sha256"]
            if p["name"] in loaded and not p.get("adopt") and p["path"] not in self.migrated and not ours:
                foreign.append(f"AppArmor profile {p['name']} is already loaded and ringzero did not load it "
                               "(declare adopt: true to take it over)")
        if foreign:
            self.fail("refusing to touch what ringzero does not own: " + "; ".join(foreign))

    def record(self, kind, key, entry, save=True):
        """Write an ownership entry (before the change it describes). save=False: the caller
        saves once for a batch, before any of the batch's changes."""
        if self.check:
            return
        self.ledger.data[kind][key] = entry
        if save:
            self.ledger.save()

    def forget(self, kind, key, save=True):
        """Drop an entry (after its thing is gone). save=False: the caller saves once after the
        batch; a run cut before that leaves entries for things already gone, which the next
        run forgets (a ledger claims at most what a re-run converges)."""
        if self.check or key not in self.ledger.data[kind]:
            return
        del self.ledger.data[kind][key]
        if save:
            self.ledger.save()

    # ---- files ----------------------------------------------------------------------------
    def missing_dirs(self, parent):
        """`parent` and its missing ancestors, outermost first."""
        missing = []
        d = parent
        while d not in ("/", "") and not os.path.lexists(d):
            missing.append(d)
            d = os.path.dirname(d)
        return list(reversed(missing))

    def write_files(self, files):
        """Every changed file: first all their ledger entries (and the directories they need), in
        one save, then the writes; a run cut in between leaves entries a re-run converges."""
        changed = set()
        writes = []  # (path, content, mode) in path order, after the ledger holds them all
        for path, spec in sorted(files.items()):
            want = spec["content"].encode()
            mode = int(spec.get("mode", "0644"), 8)
            have = read_nofollow(path)
            have_mode = os.lstat(path).st_mode & 0o7777 if have is not None else None
            entry = self.ledger.file(path)
            if have == want and have_mode == mode and entry is not None and entry["sha256"] == sha256(want):
                continue
            changed.add(path)
            self.diff_before[path] = have.decode(errors="replace") if have is not None else ""
            self.diff_after[path] = spec["content"]
            if path in self.migrated:
                self.change(f"take over {path} (as planned, written before this node had a ledger; kept on removal)")
            elif entry is None and have is not None:
                self.change(f"adopt {path} (original kept)")
            else:
                self.change(f"file {path}")
            if self.check:
                continue
            backup = entry["backup"] if entry is not None else None
            if entry is None and have is not None:  # adopt: keep the original first
                backup = self.save_backup(path, have, have_mode)
            for d in self.missing_dirs(os.path.dirname(path)):
                self.record("dirs", d, self.owner, save=False)
            # `prior`: what ringzero wrote before, so a run cut between this record and the write
            # below does not make ringzero's own old content look edited by hand.
            prior = entry["sha256"] if entry is not None else None
            self.record("files", path, {"owner": self.owner, "feature": spec.get("feature"), "sha256": sha256(want),
                                        "prior": prior, "mode": spec.get("mode", "0644"), "backup": backup},
                        save=False)
            writes.append((path, want, mode))
        if writes:
            self.ledger.save()
        for path, want, mode in writes:
            for d in self.missing_dirs(os.path.dirname(path)):
                os.mkdir(d, 0o755)
            write_atomic(path, want, mode)
        return changed

    def save_backup(self, path, data, mode):
        Ledger._ensure_dir(self.ledger.backups)
        backup = os.path.join(self.ledger.backups, sha256(path.encode())[:32])
        write_atomic(backup, data, 0o600)
        write_atomic(backup + ".mode", f"{mode:o}".encode(), 0o600)
        return backup

    def remove_files(self, paths):
        """Remove owned files: an adopted one gets its original back; one edited by hand since
        ringzero wrote it is kept (and reported); anything not in the ledger is never touched."""
        removed = set()
        for path in sorted(paths):
            entry = self.ledger.file(path)
            if entry is None or entry["owner"] != self.owner:
                continue
            try:
                have = read_nofollow(path)
            except LedgerError as e:
                self.keep(f"{path}: {e}; left in place")
                self.forget("files", path, save=False)
                continue
            if entry["backup"]:
                original = read_nofollow(entry["backup"])
                mode_text = read_nofollow(entry["backup"] + ".mode")
                if original is None:
                    self.fail(f"{path} was adopted but its saved original {entry['backup']} is gone")
                removed.add(path)
                self.change(f"restore {path} (the original ringzero adopted)")
                if not self.check:
                    write_atomic(path, original, int((mode_text or b"644").decode(), 8))
                    os.unlink(entry["backup"])
                    if mode_text is not None:
                        os.unlink(entry["backup"] + ".mode")
                self.forget("files", path)  # at once: its entry names a backup that is gone now
                continue
            if have is not None and sha256(have) not in (entry["sha256"], entry.get("prior")):
                self.keep(f"{path}: edited since ringzero wrote it; kept")
                self.forget("files", path, save=False)
                continue
            if have is not None:
                removed.add(path)
                self.change(f"remove {path}")
                if not self.check:
                    os.unlink(path)
            self.forget("files", path, save=False)
        if paths:
            self.save_ledger()
        return removed

    def save_ledger(self):
        if not self.check:
            self.ledger.save()

    def remove_dirs(self):
        """Directories ringzero created, deepest first, once empty; others are never removed."""
        if self.check:
            return
        for d, _ in sorted(self.ledger.entries("dirs", self.owner), key=lambda e: -len(e[0])):
            if any(f.startswith(d + "/") for f in self.ledger.data["files"]):
                continue
            if os.path.isdir(d) and not os.path.islink(d):
                if os.listdir(d):
                    self.keep(f"{d}: holds files ringzero did not create; kept")
                    self.forget("dirs", d)
                    continue
                self.change(f"remove directory {d}")
                if not self.check:
                    os.rmdir(d)
            self.forget("dirs", d)

    # ---- AppArmor -------------------------------------------------------------------------
    def load_profiles(self, profiles, changed_files):
        if not profiles:
            return
        loaded = self.loaded_profiles()
        if loaded is None:
            self.fail(f"AppArmor is not enabled on this node ({APPARMOR_PROFILES} unreadable)")
        for p in profiles:
            owned = self.ledger.data["profiles"].get(p["name"])
            if owned is not None and p["path"] not in changed_files and loaded.get(p["name"]) == p["mode"]:
                continue
            self.change(f"apparmor {p['name']} ({p['mode']})")
            if owned is None:
                self.record("profiles", p["name"], {"owner": self.owner, "feature": p.get("feature", "apparmor"),
                                                    "path": p["path"], "adopted": p["name"] in loaded})
            if not self.check:
                argv = ["apparmor_parser", "-r", "-W"] + (["-C"] if p["mode"] == "complain" else []) + [p["path"]]
                self.run(*argv)

    def unload_profiles(self, names):
        """Unload owned profiles (before their files go). Adopted ones are not unloaded: their
        original is reloaded once its file is restored (reload_adopted_profiles)."""
        loaded = self.loaded_profiles() or {}
        for name in names:
            entry = self.ledger.data["profiles"][name]
            if entry["adopted"]:
                continue
            if name in loaded:
                self.change(f"unload apparmor {name}")
                if not self.check:
                    if read_nofollow(entry["path"]) is not None:
                        self.run("apparmor_parser", "-R", entry["path"])
                    else:  # the file is gone already: unload by name
                        with open("/sys/kernel/security/apparmor/.remove", "w") as f:
                            f.write(name)
                        self.profiles = None
            self.forget("profiles", name)

    def reload_adopted_profiles(self, names):
        for name in names:
            entry = self.ledger.data["profiles"].get(name)
            if entry is None or not entry["adopted"]:
                continue  # unloaded and forgotten already (unload_profiles)
            if read_nofollow(entry["path"]) is not None:
                self.change(f"reload the original apparmor {name}")
                if not self.check:
                    self.run("apparmor_parser", "-r", "-W", entry["path"])
            self.forget("profiles", name)

    # ---- systemd --------------------------------------------------------------------------
    def daemon_reload(self):
        self.change("systemd daemon-reload")
        if not self.check:
            self.run("systemctl", "daemon-reload")

    def own_unit(self, unit, feature, adopt):
        """Record a unit as ringzero's; `adopted` when it existed before ringzero (claim saw it)."""
        if unit not in self.ledger.data["units"]:
            self.record("units", unit, {"owner": self.owner, "feature": feature,
                                        "adopted": bool(adopt and unit in self.preexisting)})

    def batch(self, verb, names):
        """One systemctl call for every unit that needs `verb`: each call reloads systemd's
        unit files, which costs seconds on a small node (hundreds of policies: minutes)."""
        if names and not self.check:
            self.run("systemctl", *verb.split(), *names)

    def converge_slices(self, slices):
        to_enable, to_start = [], []
        for s in slices:
            self.own_unit(s["unit"], s.get("feature", "slices"), False)
            active, enabled, _ = self.unit_state(s["unit"])
            if enabled != "enabled":
                # enabled: the slice (and its cgroup) exists from boot, even before a unit runs in it
                self.change(f"enable {s['unit']}")
                to_enable.append(s["unit"])
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
                        self.fail(f"{s['unit']}: {', '.join(still)} set by a drop-in ringzero did not create "
                                  f"({out.strip()}); remove or change it, ringzero never deletes it")
            if active != "active":
                self.change(f"start {s['unit']}")
                to_start.append(s["unit"])
        self.batch("enable", to_enable)
        self.batch("start", to_start)

    def slice_drift(self, s):
        expect = s.get("expect", {})
        if not expect:
            return []
        _, out = self.run("systemctl", "show", s["unit"], "-p", ",".join(expect), ok=(0, 1))
        have = systemctl_show(out)
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
        to_enable, to_restart, to_try, agents = [], [], [], []
        for u in units:
            name = u["unit"]
            if u["owned"]:
                self.own_unit(name, u["feature"], u.get("adopt"))
            active, enabled, load = self.unit_state(name)
            touched = any(f in changed_files for f in u["files"])
            if u["owned"]:
                if enabled not in ("enabled", "static") or load != "loaded":
                    self.change(f"enable {name}")
                    to_enable.append(name)
                if touched or active != "active":
                    self.change(f"{'restart' if active == 'active' else 'start'} {name}")
                    to_restart.append(name)
                    if u["feature"] == "ebpf":
                        agents.append(name)
            elif touched and load == "loaded":
                # A unit ringzero only confines: restart it if it runs, never start or enable it.
                self.change(f"try-restart {name}")
                to_try.append(name)
        self.batch("enable", to_enable)
        self.batch("restart", to_restart)
        if not self.check:
            for name in agents:
                self.wait_attached(name)
        self.batch("try-restart", to_try)

    def wait_attached(self, unit, timeout=AGENT_ATTACH_TIMEOUT_S):
        """An eBPF agent is up once its process holds attached BPF programs (bpftrace compiles
        its program first: seconds on a slow machine). Wait for that, bounded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, out = self.run("systemctl", "show", "-p", "MainPID", "--value", unit, ok=(0, 1))
            pid = int(out.strip() or 0)
            if pid:
                _, perf = self.run("bpftool", "-j", "perf", ok=(0, 1, 255))
                if pid in bpf_attachments(perf):
                    return
            time.sleep(1)
        _, log = self.run("journalctl", "-u", unit, "-n", "15", "--no-pager", "-q", ok=(0, 1))
        self.fail(f"{unit}: no BPF program attached within {timeout} s; its journal:\n{log}")

    def stop_owned_units(self, names):
        """Stop and disable the services ringzero installed (slices are handled apart). An
        adopted unit is not stopped: it is restarted on its original definition once its
        files are restored (restart_units)."""
        stopping = []
        for name in names:
            entry = self.ledger.data["units"][name]
            if entry["adopted"] or name.endswith(".slice"):
                continue
            active, enabled, load = self.unit_state(name)
            if load == "loaded" and (active in ("active", "activating", "reloading") or enabled == "enabled"):
                self.change(f"stop and disable {name}")
                stopping.append(name)
        self.batch("disable --now", stopping)
        # A stop that ended in SIGKILL (a workload that ignores SIGTERM, as PID 1 of its own pid
        # namespace does) leaves the unit `failed`, and systemd keeps that record after the unit
        # file is gone: clear it for the units ringzero stopped. A unit that stopped cleanly is
        # unloaded at once (systemd's garbage collection), and reset-failed says "not loaded"
        # for it (rc 1): nothing to clear there.
        if stopping and not self.check:
            self.run("systemctl", "reset-failed", *stopping, ok=(0, 1))
        for name in names:
            entry = self.ledger.data["units"][name]
            if not (entry["adopted"] or name.endswith(".slice")):
                self.forget("units", name)

    def restart_units(self, names):
        """Units ringzero only confined (or adopted) go back to their own settings: restarted
        if they run, never started, stopped or disabled."""
        running = []
        for name in names:
            active, _, load = self.unit_state(name)
            if load == "loaded" and active == "active":
                self.change(f"try-restart {name}")
                running.append(name)
        self.batch("try-restart", running)
        for name in names:
            if name in self.ledger.data["units"] and self.ledger.data["units"][name]["adopted"]:
                self.forget("units", name)

    def disable_slices(self, names):
        """Before their files go: `systemctl disable` needs the unit file to find its links."""
        enabled = [name for name in names if self.unit_state(name)[1] == "enabled"]
        for name in enabled:
            self.change(f"disable {name}")
        self.batch("disable", enabled)

    @staticmethod
    def slice_cgroup(name):
        stem = name[: -len(".slice")].split("-")
        return "/sys/fs/cgroup/" + "/".join("-".join(stem[: i + 1]) + ".slice" for i in range(len(stem)))

    def foreign_members(self, name, own=()):
        """Units still running in a slice once ringzero's own left it: not ringzero's to stop.
        `own`: this plan's units (stopped just before; stopping the slice ends whatever of
        them is still winding down)."""
        cg = self.slice_cgroup(name)
        if not cgroup_events(self.read(f"{cg}/cgroup.events")).get("populated"):
            return []
        members = []
        populated_own = False
        for root, dirs, _ in os.walk(cg):
            for d in dirs:
                if d.endswith(".slice") or not cgroup_events(self.read(f"{root}/{d}/cgroup.events")).get("populated"):
                    continue
                if d in own:
                    populated_own = True
                else:
                    members.append(d)
        return sorted(members) or ([] if populated_own else ["processes in the slice itself"])

    def stop_slices(self, names, own=()):
        """Stop the slices whose files went (their own units have left them)."""
        for name in names:
            active, _, load = self.unit_state(name)
            foreign = self.foreign_members(name, own) if active == "active" else []
            if foreign:
                # Still owned: a later removal stops it once those units have left.
                self.keep(f"{name}: left running, it holds units ringzero did not place there "
                          f"({', '.join(foreign)})")
                continue
            if active == "active" and load != "masked":
                self.change(f"stop {name}")
                if not self.check:
                    self.run("systemctl", "stop", name)
            self.forget("units", name)

    # ---- packages -------------------------------------------------------------------------
    def ensure_packages(self, packages):
        if not packages:
            return
        _, out = self.run("dpkg-query", "-W", "-f", DPKG_FORMAT, *packages, ok=(0, 1))
        installed = {name for name, p in dpkg_packages(out).items() if p.status == "installed"}
        missing = [p for p in packages if p not in installed]
        if not missing:
            return
        self.change("install " + " ".join(missing))
        if not self.check:
            env = {"DEBIAN_FRONTEND": "noninteractive"}
            rc, out, err = self.module.run_command(
                ["apt-get", "install", "-y", "--no-install-recommends", *missing], environ_update=env)
            if rc != 0:
                self.fail(f"packages {', '.join(missing)} are not installed and apt-get could not install them "
                          f"(no network on this node?): {(err or out).strip()[-400:]}")

    def converge_module_params(self, params):
        """Loaded kernel modules whose live parameter differs from the declared one are
        reloaded; a module in use (guests running) cannot be, and a reboot is noted instead."""
        for p in params:
            have = module_param(self.read(module_param_path(p["module"], p["param"])))
            if have is None:
                continue  # not loaded: modprobe.d applies when it is
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
    def owned(self, kind):
        return [k for k, _ in self.ledger.entries(kind, self.owner, self.features)]

    def remove(self, files, units, profiles, confined):
        """Take back what the ledger says this plan owns (and only that)."""
        services = [u for u in units if not u.endswith(".slice")]
        slices = [u for u in units if u.endswith(".slice")]
        adopted_units = [u for u in services if self.ledger.data["units"][u]["adopted"]]
        self.stop_owned_units(services)
        self.unload_profiles(profiles)
        self.disable_slices(slices)
        removed = self.remove_files(files)
        if any(p.startswith(SYSTEMD_PREFIXES) for p in removed):
            self.daemon_reload()
        self.reload_adopted_profiles(profiles)
        self.restart_units(sorted(set(confined) | set(adopted_units)))
        self.stop_slices(slices, own=set(services))
        self.remove_dirs()
        return removed

    def present(self, plan, previous):
        self.watch_units([u["unit"] for u in plan["units"] + (previous or {}).get("units", [])]
                         + [s["unit"] for s in plan["slices"]] + self.owned("units"))
        self.claim(plan)
        want_units = {u["unit"] for u in plan["units"] if u["owned"]} | {s["unit"] for s in plan["slices"]}
        gone_confined = [u["unit"] for u in (previous or {}).get("units", [])
                         if not u["owned"] and u["unit"] not in {x["unit"] for x in plan["units"]}]
        removed = self.remove(
            [p for p in self.owned("files") if p not in plan["files"]],
            [u for u in self.owned("units") if u not in want_units],
            [p for p in self.owned("profiles") if p not in {x["name"] for x in plan["apparmor"]}],
            gone_confined,
        )
        changed = self.write_files(plan["files"])
        if any(p.startswith(SYSTEMD_PREFIXES) for p in changed | removed):
            self.daemon_reload()
        self.ensure_packages(plan.get("packages", []))
        self.load_profiles(plan["apparmor"], changed)
        self.converge_slices(plan["slices"])
        self.converge_units(plan["units"], changed | removed)
        self.converge_module_params(plan.get("module_params", []))
        self.run_hooks(plan.get("hooks", []), changed)

    def check_landlock(self, entries):
        """Before anything changes: the node's Landlock ABI against each ruleset's rights. A strict
        ruleset it cannot enforce fails the run naming them; a best_effort one is reported."""
        if not entries:
            return
        abi = landlock_abi()
        refused = []
        for e in entries:
            needs = e["needs"]
            dropped = sorted((n for n, v in needs.items() if v > abi), key=lambda n: (needs[n], n))
            if not dropped:
                continue
            what = ", ".join(f"{n} (ABI {needs[n]})" for n in dropped)
            if e["mode"] == "strict":
                refused.append(f"Landlock {e['name']!r} is strict and the node's Landlock ABI is {abi}: "
                               f"it cannot enforce {what}")
            else:
                self.landlock_dropped.append(f"Landlock {e['name']!r} (best_effort): the node's Landlock ABI is "
                                             f"{abi}; dropped {what}")
        if refused:
            self.fail("; ".join(refused) + "; nothing was changed")

    def absent(self, plan):
        self.watch_units([u["unit"] for u in plan["units"]] + self.owned("units"))
        self.remove(self.owned("files"), self.owned("units"), self.owned("profiles"),
                    [u["unit"] for u in plan["units"] if not u["owned"]])


def landlock_abi():
    """The kernel's Landlock ABI (landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION));
    0 when it has none or Landlock is off. 444 is the syscall's number on every architecture but alpha."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return max(int(libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1))), 0)


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
        "landlock": [e for e in plan.get("landlock", []) if e["feature"] in want],
        "packages": plan.get("packages", []) if "host_prep" in want else [],
    }


def converge(module, plan, previous, features, state, state_dir):
    """The whole run, under the node's lock: ledger loaded (or refused), then present/absent."""
    plan = select(plan, features)
    ledger = Ledger(state_dir)
    # The owner of what the plan puts on the node: the stack that declared it ("project/stack/node",
    # set by PlaybookRun), so two stacks applying to one node never remove each other's objects;
    # a plan without one (`ringzero plan`, the Ansible-only way) is owned by its node name.
    owner = plan.get("owner") or plan["node"]
    node = Node(module, ledger, owner, features)
    if state == "present":
        node.check_landlock(plan.get("landlock", []))  # reads only: a refusal leaves the node as it was
    try:
        ledger.lock(owner)
        try:
            ledger.load()
            if owner != plan["node"]:
                node.take_over_unnamed(plan["node"])
            if state == "present":
                node.present(plan, select(previous, features))
            else:
                node.absent(plan)
        finally:
            os.close(ledger.lock_fd)
    except LedgerError as e:
        node.fail(str(e))
    return node


def main():
    module = AnsibleModule(
        argument_spec={
            # Not no_log: Ansible would then mask every value of the plan wherever it appears in
            # the result, unit and profile names in `changes` included.
            "plan": {"type": "dict", "required": True},
            "previous": {"type": "dict", "required": False, "default": None},
            "features": {"type": "list", "elements": "str", "required": False, "default": None,
                         "choices": ["services", "slices", "apparmor", "seccomp", "ebpf", "host_prep", "namespaces", "fsview",
                                     "landlock",
                                     "firewall", "sockfilter"]},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "state_dir": {"type": "path", "default": STATE_DIR},
        },
        supports_check_mode=True,
    )
    p = module.params
    # A malformed plan stops here, naming the field, before the node is touched.
    errors = plan_errors(p["plan"])
    if errors:
        module.fail_json(msg="ringzero_node: the plan does not match its schema: " + "; ".join(errors))
    node = converge(module, p["plan"], p["previous"], p["features"], p["state"], p["state_dir"])
    result = {"changed": bool(node.changes), "changes": node.changes, "kept": node.kept,
              "reboot_required": bool(node.reboot_notes), "reboot_notes": node.reboot_notes,
              "landlock_dropped": node.landlock_dropped}
    if module._diff and node.diff_after:
        result["diff"] = [{"before_header": p, "after_header": p, "before": node.diff_before[p],
                           "after": node.diff_after[p]} for p in sorted(node.diff_after)]
    module.exit_json(**result)


if __name__ == "__main__":
    main()

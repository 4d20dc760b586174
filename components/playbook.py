"""PlaybookRun: apply a node's plan with ansible-runner, as a Pulumi dynamic resource.

- `diff` reports a change only when the plan's content hash or the node changed, so a
  no-op `pulumi up` runs no Ansible and opens no SSH connection.
- `create`/`update` run the playbook; a failure names the failed task's host, task and message.
- `delete` runs the same playbook with `ringzero_state=absent` (removes what it applied).
- `read` (`pulumi refresh`) runs it in check mode: what it would change is drift, and the
  next `pulumi up` re-applies.

Example::

    PlaybookRun("vm1-policies", node=node_connection(vm), private_key=access.private_key,
                plan=node_plan(topology, "vm1"))
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dyn
import yaml

from . import keyfiles
from .dynamic import DYNAMIC_ALIASES
from .paths import playbooks_dir
from .plan_schema import NodePlan

PLAYBOOK = "site.yml"


@dataclass
class RunResult:
    ok: bool
    changed: int = 0
    changes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reboot_notes: list[str] = field(default_factory=list)
    unreachable: bool = False
    # What the node module left in place on purpose (not ringzero's, or edited by hand since).
    kept: list[str] = field(default_factory=list)
    # What best_effort Landlock rulesets drop on the node's kernel, one line each.
    landlock_dropped: list[str] = field(default_factory=list)


def progress(message: str) -> None:
    """One line of progress in `pulumi up` (dynamic providers may not reach the engine's log)."""
    try:
        pulumi.log.info(message, ephemeral=True)
    except Exception:
        print(message, file=sys.stderr, flush=True)


def ssh_env(tmp: str, known_hosts_file: str) -> dict[str, str]:
    """Ansible settings: host keys pinned, pipelining and one reused SSH connection per node."""
    return {
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": (
            "-o ControlMaster=auto -o ControlPersist=120s -o BatchMode=yes "
            f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts_file} "
            "-o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10 "
            # a node that went away mid-run (reset, cable cut) ends the run within a minute
            "-o ServerAliveInterval=15 -o ServerAliveCountMax=4"
        ),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(tmp, "cp"),
        "ANSIBLE_LOCAL_TEMP": os.path.join(tmp, "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        # ansible-playbook from this interpreter's environment: the provider process need not
        # have the venv on PATH.
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }


def inventory(node: dict[str, Any], key_file: str) -> dict[str, Any]:
    return {"all": {"hosts": {node["name"]: {
        "ansible_host": node["host"], "ansible_port": int(node["port"]), "ansible_user": node["user"],
        "ansible_ssh_private_key_file": key_file,
    }}}}


def run_playbook(
    node: dict[str, Any], private_key: str, extravars: dict[str, Any], *,
    playbook: str = PLAYBOOK, check: bool = False, label: str = "",
) -> RunResult:
    """Run `playbook` against one node through ansible-runner; collect what changed or failed.

    ansible-runner runs in a fresh interpreter (`python -m ringzero.playbook`): it forks
    ansible-playbook through a pty, and forking inside a multi-threaded gRPC server (the
    dynamic provider) was seen to kill the child before exec (rc None, no output). The worker
    prints progress lines and, last, the result as JSON; the private key goes over stdin.
    Its private_data_dir (key, inventory, artifacts) is `ringzero-ansible-<pid>.<start>-*` in
    the temp directory, removed when the worker ends, is terminated, or loses this process;
    one a SIGKILL left behind is removed by the next worker.
    """
    start = time.monotonic()
    request = {"node": node, "private_key": private_key, "extravars": extravars, "playbook": playbook,
               "check": check, "engine": pulumi_engine()}
    # ansible-runner records its whole environment in its artifacts: the worker gets none of
    # Pulumi's variables (PULUMI_CONFIG_PASSPHRASE, ...) nor anything secret-looking.
    proc = subprocess.Popen(
        [sys.executable, "-m", "ringzero.playbook"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=keyfiles.safe_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(request))
    proc.stdin.close()
    last = ""
    for line in proc.stdout:
        if line.startswith(_PROGRESS):
            progress(label + line[len(_PROGRESS):].rstrip("\n"))
        else:
            last = line
    stderr = proc.stderr.read() if proc.stderr else ""
    proc.wait()
    try:
        result = RunResult(**json.loads(last))
    except ValueError:
        result = RunResult(ok=False, failures=[f"host {node['name']}: the ansible-runner worker failed "
                                               f"(exit {proc.returncode}): {stderr.strip()[-800:]}"])
    result.seconds = round(time.monotonic() - start, 1)
    return result


_PROGRESS = "ringzero-progress: "


def unsafe_yaml(data: dict[str, Any]) -> str:
    """`data` as YAML for `ansible-playbook -e @file`, each top-level collection `!unsafe`.

    Ansible templates `{{ }}` and `{% %}` in extra vars (inline or from a file); a plan's file
    contents and unit values must reach the node exactly as declared. The tag goes on the
    collections, not on each string: ansible-core resolves a tagged scalar again from its text,
    so `!unsafe '0644'` would arrive as the integer 420; inside a tagged collection, quoted
    scalars keep their type and every string is marked unsafe (never templated).
    """
    dumper = yaml.SafeDumper
    root = yaml.MappingNode("tag:yaml.org,2002:map", [])
    representer = dumper(None)  # type: ignore[arg-type]  # a representer only: no stream is written
    for key, value in data.items():
        node = representer.represent_data(value)
        if isinstance(node, yaml.CollectionNode):  # the plans; a top-level scalar is ringzero's own word
            node.tag = "!unsafe"
        root.value.append((representer.represent_data(str(key)), node))
    return str(yaml.serialize(root, Dumper=dumper, allow_unicode=True, width=1 << 20))


def runner_args(
    private_data_dir: Path, playbook: Path, inv: dict[str, Any], extravars: dict[str, Any], check: bool,
) -> dict[str, Any]:
    """ansible-runner's arguments, the extra vars (the plan) written to `env/extravars` in the
    private data dir (0600, dir 0700) as YAML with `!unsafe` strings (never templated):
    ansible-runner then passes `-e @<that file>`.

    Given as `extravars=` they would become one `-e '{...}'` argument, visible to every local
    user in `ps`, and a plan over 128 KiB (MAX_ARG_STRLEN, a few hundred policies) would not
    even start.
    """
    env = private_data_dir / "env"
    env.mkdir(mode=0o700, exist_ok=True)
    keyfiles.write_secret(env / "extravars", unsafe_yaml(extravars))
    return {"private_data_dir": str(private_data_dir), "playbook": str(playbook), "inventory": inv,
            "cmdline": "--check" if check else None, "suppress_env_files": True}


def _run_in_process(
    node: dict[str, Any], private_key: str, extravars: dict[str, Any], playbook: str, check: bool,
) -> RunResult:
    import ansible_runner

    result = RunResult(ok=False)
    with keyfiles.private_tempdir("ringzero-ansible-") as tmp_dir:
        tmp = str(tmp_dir)
        key = str(keyfiles.write_key(tmp_dir / "key", private_key))
        kh = str(keyfiles.write_secret(tmp_dir / "known_hosts", str(node["known_hosts"]) + "\n"))

        def on_event(event: dict[str, Any]) -> bool:
            data = event.get("event_data", {})
            kind = event.get("event", "")
            task, host = data.get("task", ""), data.get("host", node["name"])
            res = data.get("res", {}) if isinstance(data.get("res"), dict) else {}
            if kind == "runner_on_ok":
                result.changes += [str(c) for c in res.get("changes", [])]
                result.reboot_notes += [str(n) for n in res.get("reboot_notes", [])]
                result.kept += [str(k) for k in res.get("kept", [])]
                result.landlock_dropped += [str(d) for d in res.get("landlock_dropped", [])]
                if res.get("changed"):
                    result.changed += 1
                print(f"{_PROGRESS}{host}: {task}: {'changed' if res.get('changed') else 'ok'}", flush=True)
            elif kind in ("runner_on_failed", "runner_on_unreachable"):
                if kind == "runner_on_failed" and data.get("ignore_errors"):
                    return True
                msg = res.get("msg") or res.get("stderr") or res.get("module_stderr") or "no message"
                result.failures.append(f"host {host}, task '{task}': {str(msg).strip()}")
                result.unreachable |= kind == "runner_on_unreachable"
            return True

        r = ansible_runner.run(
            **runner_args(tmp_dir, playbooks_dir() / playbook, inventory(node, key), extravars, check),
            envvars=ssh_env(tmp, kh),
            event_handler=on_event,
            quiet=True,
        )
        result.ok = r.rc == 0 and not result.failures
        if not result.ok and not result.failures:
            tail = (r.stdout.read() if r.stdout else "")[-600:]
            result.failures.append(f"host {node['name']}: ansible-playbook exited {r.rc} ({r.status}): {tail.strip()}")
    return result


def integers_restored(value: Any) -> Any:
    """`value` with every integral float made an int again, in nested dicts and lists.

    The engine hands a dynamic resource its inputs through protobuf's Struct, where every
    number is a double: a plan's integer (a Landlock right's ABI, a port) comes back as 3.0,
    and the node's schema check refuses it ("expected integer, got float"). An int passes the
    schema's `number` too, so a float field whose value happens to be whole stays valid."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integers_restored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integers_restored(v) for v in value]
    return value


def _extravars(props: dict[str, Any], state: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"ringzero_plan": integers_restored(props["plan"]), "ringzero_state": state}
    if previous is not None:
        out["ringzero_previous_plan"] = integers_restored(previous)
    return out


def _failed(name: str, what: str, result: RunResult) -> RuntimeError:
    return RuntimeError(f"PlaybookRun '{name}' ({what}) failed: " + "; ".join(result.failures))


def _warn_kept(name: str, result: RunResult) -> None:
    """What the node kept on purpose is said in `pulumi up`: someone may want to look at it."""
    for what in result.kept:
        pulumi.log.warn(f"PlaybookRun '{name}': {what}")
    for what in result.landlock_dropped:  # best_effort: applied, but less than declared
        pulumi.log.warn(f"PlaybookRun '{name}': {what}")


def plan_hash(plan: NodePlan) -> str:
    """The PlaybookRun's trigger: a content hash of the plan and of the playbooks that apply it
    (module code included)."""
    h = hashlib.sha256(json.dumps(plan, sort_keys=True).encode())
    h.update(_playbooks_digest().encode())
    return h.hexdigest()


@functools.cache
def _playbooks_digest() -> str:
    """The playbooks' content, hashed once per process (one program run declares many nodes)."""
    h = hashlib.sha256()
    root = playbooks_dir()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


class PlaybookRunProvider(dyn.ResourceProvider):
    """Small and stable on purpose: dill pickles this class into state by reference."""

    def _apply(self, props: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
        r = run_playbook(props["node"], props["private_key"], _extravars(props, "present", previous),
                         playbook=props["playbook"], label=f"{props['name']}: ")
        if not r.ok:
            raise _failed(props["name"], "apply", r)
        _warn_kept(props["name"], r)
        # apply_id changes with every apply (a repair of drift too): the ComplianceCheck takes
        # it as input, so it runs again after any apply and never on a no-op `pulumi up`.
        return {**props, "applied_hash": props["content_hash"], "apply_id": uuid.uuid4().hex,
                "changed": r.changed, "changes": r.changes,
                "seconds": r.seconds, "reboot_required": bool(r.reboot_notes), "reboot_notes": r.reboot_notes,
                "kept": r.kept, "landlock_dropped": r.landlock_dropped, "drift": []}

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        return dyn.CreateResult(id_=f"{props['node']['name']}:{props['playbook']}", outs=self._apply(props, None))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        node_keys = ("name", "host", "port", "user", "known_hosts", "instance")
        changed = olds.get("applied_hash") != news.get("content_hash") or olds.get("playbook") != news.get("playbook")
        changed |= any((olds.get("node") or {}).get(k) != news["node"].get(k) for k in node_keys)
        return dyn.DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(outs=self._apply(news, olds.get("plan")))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        r = run_playbook(props["node"], props["private_key"], _extravars(props, "absent"),
                         playbook=props["playbook"], label=f"{props['name']} (remove): ")
        if r.unreachable:
            # The node is gone (deleted by hand, say): nothing left to remove there, and a
            # destroy must not be blocked by it. Said loudly, in case it is only down.
            pulumi.log.warn(f"PlaybookRun '{props['name']}': node unreachable, its policies were not removed "
                            f"from it ({'; '.join(r.failures)})")
            return
        if not r.ok:
            raise _failed(props["name"], "remove", r)
        _warn_kept(props["name"], r)

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        r = run_playbook(props["node"], props["private_key"], _extravars(props, "present"),
                         playbook=props["playbook"], check=True, label=f"{props['name']} (check): ")
        if not r.ok:
            raise _failed(props["name"], "drift check", r)
        outs = {**props, "drift": r.changes}
        if r.changes:
            # Drift: forget that the plan was applied, so the next `pulumi up` applies it again.
            outs["applied_hash"] = "drift:" + "; ".join(r.changes)[:500]
        return dyn.ReadResult(id_=id_, outs=outs)


class PlaybookRun(dyn.Resource, module="ringzero", name="PlaybookRun"):
    """A node's plan applied by Ansible; outputs what changed and whether a reboot is needed."""

    applied_hash: pulumi.Output[str]
    apply_id: pulumi.Output[str]
    changed: pulumi.Output[int]
    changes: pulumi.Output[list[str]]
    drift: pulumi.Output[list[str]]
    kept: pulumi.Output[list[str]]
    landlock_dropped: pulumi.Output[list[str]]
    reboot_required: pulumi.Output[bool]

    def __init__(
        self, name: str, *, node: pulumi.Input[dict[str, Any]], private_key: pulumi.Input[str],
        plan: NodePlan, playbook: str = PLAYBOOK, opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["private_key"],
                                                                         aliases=DYNAMIC_ALIASES))
        # What the plan puts on the node belongs to this stack: the node's ledger records it as
        # "project/stack/node", so another stack applying to the same node never removes it.
        plan = {**plan, "owner": plan.get("owner") or f"{pulumi.get_project()}/{pulumi.get_stack()}/{plan['node']}"}
        super().__init__(
            PlaybookRunProvider(), name,
            {
                "name": name, "node": node, "private_key": pulumi.Output.secret(private_key),
                "playbook": playbook, "plan": plan, "content_hash": plan_hash(plan),
                "applied_hash": None, "apply_id": None, "changed": None, "changes": None, "seconds": None,
                "reboot_required": None, "reboot_notes": None, "kept": None, "drift": None,
                "landlock_dropped": None,
            },
            opts,
        )


def pulumi_engine(pid: int | None = None) -> int | None:
    """The Pulumi CLI this process runs under (the dynamic provider's grandparent: the engine
    starts `pulumi-resource-pulumi-python`, a shell script that runs Python), or None."""
    pid = os.getpid() if pid is None else pid
    for _ in range(8):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        comm, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if comm == "pulumi" and pid != os.getpid():
            return pid
        pid = int(fields[1])
        if pid <= 1:
            return None
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_with_parent(engine: int | None) -> None:
    """In the worker: SIGTERM, the death of the provider process, and the death of the engine
    that started the provider end it through `finally` blocks (its private_data_dir goes, and
    ansible-playbook, on the pty it holds, gets SIGHUP). The engine matters: Pulumi's plugins
    outlive a `pulumi up` killed with SIGKILL, and a run nobody watches must not go on
    changing the node. A SIGKILL of the worker itself leaves its directory to the next one."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    watched = [os.getppid()] + ([engine] if engine is not None and engine > 1 else [])

    def watch() -> None:
        try:
            fds = [os.pidfd_open(pid) for pid in watched]
            select.select(fds, [], [])
        except OSError:
            while os.getppid() == watched[0] and all(_alive(pid) for pid in watched[1:]):
                time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    # The worker behind run_playbook: one request on stdin, progress lines, then the result.
    req = json.loads(sys.stdin.read())
    _exit_with_parent(req.get("engine"))
    out = _run_in_process(req["node"], req["private_key"], req["extravars"], req["playbook"], bool(req["check"]))
    print(json.dumps(dataclasses.asdict(out)), flush=True)

"""The `ringzero` command: check machines against declarations and baselines, print or render
a declaration.

    ringzero check --hosts ssh://root@10.0.0.5:22,local:// --baseline isolation --html report.html
    ringzero check --inventory hosts.ini --manifest manifest.json --baseline isolation-hypervisor
    ringzero check --list-baselines
    ringzero manifest --stack prod > manifest.json      |  --program __main__.py --config Pulumi.prod.yaml
    ringzero render --manifest manifest.json --out review/
    ringzero plan --manifest manifest.json --node vm1 --out vm1.yml   # ansible-playbook site.yml -e @vm1.yml
    ringzero completion bash >> ~/.bash_completion   |  python -m ringzero --version

Exit codes: 0 every check passes (or is waived), 1 a check failed, 2 usage, input or
connection error (the message names the host or file and what failed), 130 interrupted
(Ctrl-C: connections closed, the reports written with what finished, the rest not run).
Colour only on a terminal; NO_COLOR=1 turns it off, FORCE_COLOR=1 on.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .checks import machine_checks
from .checks.base import Check
from .checks.baseline import Baseline, CatalogueError, load_catalogue, parse_params, resolve_all
from .checks.hosts import Endpoint, inventory_endpoints, parse_endpoints
from .checks.progress import Progress, paint, use_colour
from .checks.report import html, junit, sarif, summary
from .checks.run import Report, SshOptions, run_checks, user_ssh_configs
from .checks.waivers import WaiverError, load_waivers
from .declaration import DeclarationError, from_manifest_file, from_program, from_stack
from .spec import SpecError, Topology, to_manifest

EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 128 + signal.SIGINT
# what a missing module needs installed (ringzero[check] has neither Pulumi nor Ansible)
_EXTRA_FOR = {"pulumi": "pulumi", "pulumi_libvirt": "pulumi", "cryptography": "pulumi", "ansible": "ansible",
              "ansible_runner": "ansible", "testinfra": "check", "pytest": "check"}


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ringzero", description="ringzero: hypervisor and kernel isolation as code.")
    p.add_argument("--version", action="version", version=f"ringzero {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    comp = sub.add_parser("completion", help="print a shell completion script (bash or zsh)",
                          description='eval "$(ringzero completion bash)" in ~/.bashrc (zsh: ~/.zshrc)')
    comp.add_argument("shell", choices=["bash", "zsh"])

    c = sub.add_parser("check", help="check machines against a manifest and/or a built-in baseline",
                       description="Exit 0: all pass or waived; 1: a check failed; "
                                   "2: usage, input or connection error.")
    where = c.add_mutually_exclusive_group()
    where.add_argument("--hosts", help="[NAME=]ssh://user@host:port or [NAME=]local://, comma separated")
    where.add_argument("--inventory", help="an Ansible inventory, resolved by Ansible (group_vars/, host_vars/, "
                                           "ansible_host/port/user, ansible_ssh_private_key_file, "
                                           "ansible_ssh_common_args/extra_args, ansible_become, "
                                           "ansible_connection=local)")
    c.add_argument("--limit", help="with --inventory: an Ansible host pattern")
    c.add_argument("--manifest", help="the declared policies (JSON, from `ringzero manifest`)")
    c.add_argument("--baseline", action="append", default=[], help="a built-in baseline (repeatable)")
    c.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a baseline parameter")
    c.add_argument("--waivers", help="a waivers file (YAML): control, hosts, reason, expires")
    c.add_argument("--identity-file", "-i", help="SSH private key (else the agent and ~/.ssh defaults)")
    c.add_argument("--known-hosts", help="known_hosts with the machines' keys (default: yours; always checked)")
    c.add_argument("--ssh-config", metavar="FILE",
                   help="the SSH config under ringzero's own settings, as `ssh -F FILE` (default: ~/.ssh/config "
                        "and /etc/ssh/ssh_config, as plain ssh; `none`: no config)")
    c.add_argument("--sudo", action="store_true", help="read as root through sudo (logins that are not root)")
    c.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    c.add_argument("--sarif", metavar="FILE", help="write a SARIF 2.1.0 report")
    c.add_argument("--html", metavar="FILE", help="write a self-contained HTML report (host x control matrix)")
    c.add_argument("--jobs", type=int, default=8, help="machines checked at once (default 8)")
    c.add_argument("--timeout", type=int, default=20, help="SSH connect timeout in seconds (default 20)")
    c.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    c.add_argument("--list-baselines", action="store_true", help="print the built-in baselines, one a line")

    m = sub.add_parser("manifest", help="print the policy manifest of a stack or a program")
    _declaration_args(m, manifest=False)
    m.add_argument("--out", help="write it to this file instead of standard output")

    r = sub.add_parser("render", help="write every artifact of a declaration to a directory, for review")
    _declaration_args(r, manifest=True)
    r.add_argument("--out", required=True, help="the directory to write (created; existing files are replaced)")

    pl = sub.add_parser("plan", help="write a node's plan as Ansible variables (ringzero_plan) for -e @FILE",
                        description="The variables file of the playbooks and the ringzero_node module: "
                                    "ansible-playbook site.yml -i INVENTORY -e @FILE")
    _declaration_args(pl, manifest=True)
    pl.add_argument("--node", required=True, help="the node (a name under `nodes` of the declaration)")
    pl.add_argument("--out", help="write it to this file (.json: JSON, else YAML) instead of standard output")
    pl.add_argument("--format", choices=("yaml", "json"), help="the file's format (default: from --out, else YAML)")
    return p


def _declaration_args(p: argparse.ArgumentParser, manifest: bool) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--stack", help="a deployed stack: its `manifest` output (pulumi CLI on PATH)")
    src.add_argument("--program", help="a Pulumi program, run under mocks (nothing is created)")
    if manifest:
        src.add_argument("--manifest", help="a manifest file")
    p.add_argument("--config", help="with --program: the Pulumi.<stack>.yaml it reads")


def _declaration(args: argparse.Namespace) -> Topology:
    if getattr(args, "manifest", None):
        return from_manifest_file(args.manifest)
    if args.stack:
        return from_stack(args.stack)
    return from_program(Path(args.program), Path(args.config) if args.config else None)


def _check(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    if args.list_baselines:
        print("\n".join(catalogue.baselines))
        return EXIT_OK
    if not args.hosts and not args.inventory:
        raise UsageError("check: name the machines with --hosts or --inventory")
    if not args.manifest and not args.baseline:
        raise UsageError("check: give --manifest M.json and/or --baseline NAME (see --list-baselines)")
    if args.limit and not args.inventory:
        raise UsageError("check: --limit goes with --inventory")
    baselines: list[Baseline] = [catalogue.baseline(b) for b in dict.fromkeys(args.baseline)]
    given = parse_params(args.param)
    params = resolve_all(baselines, given)
    topology = from_manifest_file(args.manifest) if args.manifest else None
    nodes = [n.node for n in topology.nodes] if topology else []
    try:
        if args.inventory:
            endpoints = inventory_endpoints(args.inventory, args.limit)
        else:
            endpoints = parse_endpoints(args.hosts, nodes if topology and not baselines else None)
    except ValueError as e:
        raise UsageError(f"--{'inventory' if args.inventory else 'hosts'}: {e}") from None
    if topology and not baselines:
        strays = [e.name for e in endpoints if e.name not in nodes]
        if strays:
            raise UsageError(f"{', '.join(strays)}: not a node of the manifest (declared: {', '.join(nodes)}), "
                             "and no --baseline to check it against")
    try:
        user_ssh_configs(args.ssh_config)
    except ValueError as e:
        raise UsageError(str(e)) from None
    waivers = load_waivers(args.waivers) if args.waivers else []

    def checks_for(e: Endpoint) -> list[Check]:
        return machine_checks(e.name, topology, baselines, params, given)

    progress = Progress([e.name for e in endpoints], quiet=args.quiet)
    ssh = SshOptions(args.identity_file, args.known_hosts, args.timeout, args.sudo, args.ssh_config)
    report = run_checks(endpoints, checks_for, ssh=ssh, waivers=waivers, baselines=[b.name for b in baselines],
                        manifest=args.manifest, jobs=args.jobs, progress=progress)
    writers: list[tuple[str | None, Callable[[Report], str]]] = [
        (args.junit, junit), (args.sarif, lambda r: json.dumps(sarif(r), indent=2) + "\n"), (args.html, html)]
    for path, write in writers:
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(write(report))
    print(_coloured(summary(report), report.exit_code, use_colour(sys.stdout)))
    for m in report.machines:
        if m.error:
            print(f"ringzero: error: {m.endpoint.name}: {m.error}", file=sys.stderr)
    if report.interrupted:
        done = sum(not any(o.message.startswith("not run:") for o in m.outcomes) for m in report.machines)
        written = [p for p, _ in writers if p]
        print(f"ringzero: interrupted: {done} of {len(report.machines)} machine(s) checked"
              + (f"; {', '.join(written)} written, the rest marked not run" if written else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    return report.exit_code


def _coloured(text: str, exit_code: int, colour: bool) -> str:
    """The summary with its verdict words coloured (on a terminal)."""
    if not colour:
        return text
    marks = {"  FAIL": "fail", "  ERROR": "error", "  WAIVED": "waived", "  EXPIRED": "fail"}
    lines = text.splitlines()
    out = [next((paint(ln, s, True) for m, s in marks.items() if ln.startswith(m)), ln) for ln in lines[:-1]]
    last = {EXIT_OK: "pass", EXIT_FAILED: "fail"}.get(exit_code, "error")
    return "\n".join([*out, *(paint(ln, last, True) for ln in lines[-1:])])


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ringzero")
    except PackageNotFoundError:  # the checkout on sys.path, not installed
        from . import __version__

        return __version__


def _completion(args: argparse.Namespace) -> int:
    from .completion import script

    sys.stdout.write(script(_parser(), args.shell))
    return EXIT_OK


def _manifest(args: argparse.Namespace) -> int:
    text = json.dumps(to_manifest(_declaration(args)), indent=2, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _render(args: argparse.Namespace) -> int:
    from .artifacts import artifacts

    files = artifacts(_declaration(args))
    out = Path(args.out)
    for name, text in sorted(files.items()):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"{len(files)} artifacts in {out}/")
    return EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    import yaml

    from .plan import node_plan

    topology = _declaration(args)
    if args.node not in (n.node for n in topology.nodes):
        raise UsageError(f"plan: {args.node!r} is not a node of the declaration "
                         f"(nodes: {', '.join(n.node for n in topology.nodes) or 'none'})")
    doc = {"ringzero_plan": node_plan(topology, args.node)}
    fmt = args.format or ("json" if args.out and args.out.endswith(".json") else "yaml")
    if fmt == "json":
        text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    else:
        text = "---\n# ringzero plan --node " + args.node + ": ansible-playbook site.yml -e @THIS_FILE\n" + yaml.dump(
            doc, Dumper=_block_dumper(), sort_keys=True, allow_unicode=True, width=1000)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _block_dumper() -> type:
    """A YAML dumper that writes multi-line strings (the plan's files) as `|` blocks, for review."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    return Dumper


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "check": _check, "manifest": _manifest, "render": _render, "plan": _plan, "completion": _completion}
    try:
        return commands[args.command](args)
    except (UsageError, CatalogueError, WaiverError, DeclarationError, SpecError) as e:
        print(f"ringzero: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top not in _EXTRA_FOR:
            raise
        print(f"ringzero: error: {args.command} needs {top}, which is not installed: "
              f"pip install 'ringzero[{_EXTRA_FOR[top]}]'", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:  # outside `check`'s own handling: nothing to close or write
        print("ringzero: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `ringzero ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

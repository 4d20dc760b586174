"""Build the `ringzero.node` Ansible collection from the repository's own sources.

The collection's own files (galaxy.yml, meta/, the role, its README) live here; the module
and the playbooks are copied from where the Pulumi path uses them (playbooks/library/
ringzero_node.py, playbooks/*.yml), the playbooks' `ringzero_node:` made fully qualified.
The layout is written under BUILD/ansible_collections/ringzero/node (what ansible-test needs),
then `ansible-galaxy collection build` writes DIST/ringzero-node-<version>.tar.gz::

    python tools/collection/build_collection.py            # make collection
    python tools/collection/build_collection.py --sanity   # then ansible-test sanity on the layout
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NAMESPACE, NAME = "ringzero", "node"
MODULE = ROOT / "playbooks" / "library" / "ringzero_node.py"
MODULE_UTILS = ROOT / "playbooks" / "module_utils"
# The module imports its helpers as `ansible.module_utils.ringzero_*` (Ansible finds them in
# playbooks/module_utils beside the playbooks); in the collection they are the collection's own.
_UTILS_IMPORT = re.compile(r"(?m)^from ansible\.module_utils\.(ringzero_\w+) import ")


def collection_module(source: str) -> str:
    """The module's source as the collection ships it: its helpers imported from the collection."""
    return _UTILS_IMPORT.sub(rf"from ansible_collections.{NAMESPACE}.{NAME}.plugins.module_utils.\1 import ", source)


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def layout(build: Path) -> Path:
    """The collection's tree under build/ansible_collections/ringzero/node (replaced)."""
    dest = build / "ansible_collections" / NAMESPACE / NAME
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(HERE, dest, ignore=shutil.ignore_patterns("build_collection.py", "get_pip_offline.py",
                                                             "__pycache__", "*.pyc"))
    galaxy = dest / "galaxy.yml"
    galaxy.write_text(re.sub(r"(?m)^version: .*$", f"version: {version()}", galaxy.read_text()))
    (dest / "plugins" / "modules").mkdir(parents=True)
    (dest / "plugins" / "modules" / MODULE.name).write_text(collection_module(MODULE.read_text()))
    shutil.copymode(MODULE, dest / "plugins" / "modules" / MODULE.name)
    (dest / "plugins" / "module_utils").mkdir()
    for util in sorted(MODULE_UTILS.glob("ringzero_*.py")):
        shutil.copy2(util, dest / "plugins" / "module_utils" / util.name)
    (dest / "playbooks").mkdir()
    for playbook in sorted((ROOT / "playbooks").glob("*.yml")):
        text = re.sub(r"(?m)^(\s+)ringzero_node:$", rf"\1{NAMESPACE}.{NAME}.ringzero_node:", playbook.read_text())
        (dest / "playbooks" / playbook.name).write_text(text)
    return dest


def build_tarball(dest: Path, dist: Path) -> Path:
    dist.mkdir(parents=True, exist_ok=True)
    subprocess.run([_tool("ansible-galaxy"), "collection", "build", str(dest), "--output-path", str(dist), "--force"],
                   check=True, capture_output=True, text=True)
    return dist / f"{NAMESPACE}-{NAME}-{version()}.tar.gz"


def _pip_bootstrap() -> None:
    """ansible-test downloads a get-pip.py into each sanity venv, from a host not reachable
    here; its documented way out is a script saved in its cache: ours (get_pip_offline.py)."""
    from ansible_test._internal.python_requirements import get_venv_packages
    from ansible_test._internal.util import SUPPORTED_PYTHON_VERSIONS

    versions = set()
    for py in SUPPORTED_PYTHON_VERSIONS:
        versions.add(get_venv_packages(type("Python", (), {"version": py})())["pip"])  # type: ignore[arg-type]
    for v in versions:
        cached = Path.home() / ".ansible" / "test" / "cache" / f"get_pip_{v.replace('.', '_')}.py"
        if not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(HERE / "get_pip_offline.py", cached)


def sanity(dest: Path, python: str = "3.11") -> int:
    """`ansible-test sanity` on the layout, each test's requirements in a venv of its own."""
    _pip_bootstrap()
    argv = [_tool("ansible-test"), "sanity", "--python", python, "--venv", "--requirements", "--color", "no"]
    return subprocess.run(argv, cwd=dest, check=False).returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", type=Path, default=ROOT / "build" / "collection", help="where the layout goes")
    p.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the tarball goes")
    p.add_argument("--sanity", action="store_true", help="run ansible-test sanity on the layout")
    p.add_argument("--no-tarball", action="store_true", help="only lay the collection out")
    args = p.parse_args()
    dest = layout(args.build)
    print(f"collection {NAMESPACE}.{NAME} {version()} laid out in {dest}")
    if not args.no_tarball:
        print(build_tarball(dest, args.dist))
    if not args.sanity:
        return 0
    # ansible-test lists a collection's files with git when it sits inside a work tree, and build/
    # is git-ignored here (it would test nothing): the tests run on a copy outside the checkout
    with tempfile.TemporaryDirectory(prefix="rz-collection-") as tmp:
        return sanity(layout(Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())

"""Packaging that composes: ranges in the wheel, exact versions in requirements.lock, every
import declared, extras that keep `ringzero check` free of Pulumi and Ansible, py.typed and
a PEP 639 licence."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.fixtures import run_ok

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NOT_FOR_CHECK = {"pulumi", "pulumi-libvirt", "ansible-core", "ansible-runner", "cryptography", "dill"}


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict[str, list[str]]]:
    """(the wheel's file names, its METADATA as {field: [values]})."""
    out = tmp_path_factory.mktemp("dist")
    run_ok(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, ROOT)
    (wheel,) = out.glob("ringzero-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        text = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    msg = Parser().parsestr(text)
    return names, {k: msg.get_all(k) or [] for k in set(msg.keys())}


def _requires(meta: dict[str, list[str]]) -> list[Requirement]:
    return [Requirement(r) for r in meta["Requires-Dist"]]


def _for_extras(meta: dict[str, list[str]], extras: set[str]) -> set[str]:
    """The distributions `pip install ringzero[extras]` pulls in directly (self-references followed)."""
    out: set[str] = set()
    todo, seen = set(extras) | {""}, set()
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for r in _requires(meta):
            if r.marker is not None and not r.marker.evaluate({"extra": extra}):
                continue
            if r.marker is None and extra:
                continue
            if canonicalize_name(r.name) == "ringzero":
                todo |= set(r.extras) - seen
            else:
                out.add(canonicalize_name(r.name))
    return out


def test_wheel_metadata_ranges_licence_and_typing(metadata: tuple[list[str], dict[str, list[str]]]) -> None:
    names, meta = metadata
    assert "ringzero/py.typed" in names
    assert meta["License-Expression"] == ["Apache-2.0"]
    assert meta["License-File"] == ["LICENSE"] and any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert meta["Requires-Python"] == [">=3.11"]
    pinned = [str(r) for r in _requires(meta) if any(s.operator in ("==", "===") for s in r.specifier)]
    assert not pinned, f"exact pins belong in requirements.lock: {pinned}"
    assert {"check", "ansible", "pulumi", "all", "dev"} <= set(meta["Provides-Extra"])
    check = _for_extras(meta, {"check"})
    assert {"pytest-testinfra", "jinja2", "pyyaml", "jsonschema"} <= check
    assert not check & NOT_FOR_CHECK, check & NOT_FOR_CHECK
    assert {"pulumi", "pulumi-libvirt", "ansible-core", "ansible-runner", "cryptography", "pytest-testinfra"} <= \
        _for_extras(meta, {"pulumi"})


def _imports(*roots: Path) -> set[str]:
    found = set()
    for root in roots:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("ringzero", "__future__")}


def test_every_import_is_a_declared_dependency() -> None:
    project = PYPROJECT["project"]
    declared = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    for extra, reqs in project["optional-dependencies"].items():
        if extra != "dev":
            declared |= {canonicalize_name(Requirement(r).name) for r in reqs}
    dists = packages_distributions()
    # the package (the shipped compliance suite in it) and the node module (Ansible runs it)
    modules = _imports(ROOT / "components", ROOT / "playbooks" / "library")
    undeclared = {m: dists.get(m) for m in modules
                  if not {canonicalize_name(d) for d in dists.get(m, [m])} & declared}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_lock_pins_everything_within_the_declared_ranges() -> None:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"] + PYPROJECT["build-system"]["requires"]]
    reqs += [Requirement(r) for deps in project["optional-dependencies"].values() for r in deps]
    for r in reqs:
        name = canonicalize_name(r.name)
        if name == "ringzero":
            continue
        assert name in pins, f"{name} is not in requirements.lock (make lock)"
        assert r.specifier.contains(pins[name], prereleases=True), f"lock {name}=={pins[name]} is outside {r}"
    assert "dill" in pins  # the reason for the lock: dill pickles the dynamic providers into state


BLOCK_PULUMI_AND_ANSIBLE = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"pulumi", "pulumi_libvirt", "ansible", "ansible_runner", "cryptography"}:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
sys.meta_path.insert(0, Block())
from ringzero.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ringzero_check_imports_neither_pulumi_nor_ansible(tmp_path: Path) -> None:
    """The import graph of `ringzero check` (the real [check] venv is the check tier's)."""
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", BLOCK_PULUMI_AND_ANSIBLE, *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=120)

    listed = run("check", "--list-baselines")
    assert listed.returncode == 0 and "isolation" in listed.stdout, listed.stderr
    res = run("check", "--hosts", "local://", "--baseline", "isolation", "--quiet", "--junit", "r.xml")
    assert res.returncode in (0, 1), res.stdout + res.stderr
    assert (tmp_path / "r.xml").is_file()
    # what needs an extra says which one, in one line
    inv = tmp_path / "hosts.ini"
    inv.write_text("me ansible_connection=local\n")
    res = run("check", "--inventory", str(inv), "--baseline", "isolation")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "pip install 'ringzero[" in res.stderr and "ansible]'" in res.stderr, res.stderr
    (tmp_path / "__main__.py").write_text("import pulumi\n")
    res = run("manifest", "--program", str(tmp_path / "__main__.py"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "pip install 'ringzero[pulumi]'" in res.stderr, res.stderr


def test_the_lock_matches_the_toolchain() -> None:
    """The Pulumi SDK and pulumi-libvirt in the lock are the ones tools/pulumi was built for
    (build.sh's own check reads exact pins, which pyproject.toml no longer has)."""
    env = dict(ln.split("=", 1) for ln in (ROOT / "tools" / "pulumi" / "versions.env").read_text().splitlines()
               if ln and not ln.startswith("#"))
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    assert f"pulumi=={env['PULUMI_PYTHON_SDK_VERSION']}" in lock
    assert f"pulumi-libvirt=={env['PULUMI_LIBVIRT_PYTHON_VERSION']}" in lock

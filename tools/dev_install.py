"""Install ringzero's dependencies into the current venv at the locked versions, and the
checkout itself as an editable install: `import ringzero`, the `ringzero` command and
`pip list`/`importlib.metadata` all see it.

The library lives in components/ but is imported as `ringzero`. No editable backend maps a
renamed source directory cleanly (hatchling refuses a `sources` rewrite that changes a
prefix, and would copy the force-included templates/ into the package), so:
- site-packages/ringzero is a symlink to components/ (templates/ and playbooks/ are found
  beside it; mypy and ruff see the sources, py.typed included);
- a ringzero-<version>.dist-info made by hatchling's own metadata (PEP 660 marks it editable
  with direct_url.json) and the console scripts of [project.scripts] in the venv's bin/.
`pip uninstall ringzero` removes all three (they are in RECORD).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"


def requirements(pyproject: dict[str, object]) -> list[str]:
    """ringzero[all,dev]'s requirements (self-references dropped) and the build backend."""
    project = pyproject["project"]
    build = pyproject["build-system"]
    assert isinstance(project, dict) and isinstance(build, dict)
    deps = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        deps += [d for d in extra if not d.replace(" ", "").lower().startswith("ringzero[")]
    return deps + list(build["requires"])


def install_deps(pyproject: dict[str, object]) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "-c", str(LOCK), *requirements(pyproject)], check=True)


def link_package(purelib: Path) -> None:
    link = purelib / "ringzero"
    if link.is_symlink() and link.resolve() == (ROOT / "components").resolve():
        return
    if link.exists() and not link.is_symlink():
        sys.exit(f"{link} is a real install of ringzero; remove it (pip uninstall ringzero) first")
    if link.is_symlink():
        link.unlink()
    link.symlink_to(ROOT / "components")
    print(f"linked {link} -> {ROOT / 'components'}")


def _record_line(path: Path, purelib: Path) -> str:
    rel = os.path.relpath(path, purelib)
    if path.is_symlink() or path.is_dir():
        return f"{rel},,"
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
    return f"{rel},sha256={digest},{path.stat().st_size}"


def install_metadata(pyproject: dict[str, object], purelib: Path) -> None:
    """The dist-info and console scripts of an editable install of the checkout."""
    from hatchling.build import prepare_metadata_for_build_editable

    project = pyproject["project"]
    assert isinstance(project, dict)
    for old in purelib.glob("ringzero-*.dist-info"):
        shutil.rmtree(old)
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(ROOT)  # hatchling reads the project from the working directory
        try:
            name = prepare_metadata_for_build_editable(tmp)
        finally:
            os.chdir(cwd)
        info = purelib / name
        shutil.copytree(Path(tmp) / name, info)
    groups = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in groups.items() if eps))
    (info / "INSTALLER").write_text("ringzero-dev-install\n")
    (info / "direct_url.json").write_text(json.dumps({"url": ROOT.as_uri(), "dir_info": {"editable": True}}))
    bindir = Path(sysconfig.get_paths()["scripts"])
    scripts = []
    for script, target in project.get("scripts", {}).items():
        module, func = target.split(":")
        path = bindir / script
        path.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {func}\n\n"
                        f"if __name__ == \"__main__\":\n    sys.exit({func}())\n")
        path.chmod(0o755)
        scripts.append(path)
    files = [*sorted(p for p in info.rglob("*") if p.is_file()), *scripts, purelib / "ringzero"]
    (info / "RECORD").write_text("".join(_record_line(p, purelib) + "\n" for p in files)
                                 + f"{name}/RECORD,,\n")


def main() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    if "--link-only" not in sys.argv:
        install_deps(pyproject)
    purelib = Path(sysconfig.get_paths()["purelib"])
    link_package(purelib)
    install_metadata(pyproject, purelib)


if __name__ == "__main__":
    main()

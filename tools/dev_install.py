"""Install ringzero's pinned dependencies into the current venv and link the checkout in.

The library lives in components/ but is imported as `ringzero`; no editable-install backend
maps a renamed source directory cleanly, so the venv gets a symlink
site-packages/ringzero -> components/ (templates/ and playbooks/ are found beside it).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    if "--link-only" not in sys.argv:
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        project = pyproject["project"]
        deps = project["dependencies"] + project["optional-dependencies"]["dev"] + pyproject["build-system"]["requires"]
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *deps], check=True)
    link = Path(sysconfig.get_paths()["purelib"]) / "ringzero"
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == (ROOT / "components").resolve():
            return
        if not link.is_symlink():
            sys.exit(f"{link} is a real install of ringzero; remove it (pip uninstall ringzero) first")
        link.unlink()
    link.symlink_to(ROOT / "components")
    print(f"linked {link} -> {ROOT / 'components'}")


if __name__ == "__main__":
    main()

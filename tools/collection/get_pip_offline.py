"""A stand-in for the get-pip.py that ansible-test downloads from ci-files.testing.ansible.com
to put pip into the venvs its sanity tests run in; that host is not reachable here, PyPI is.

ansible-test runs it as get-pip.py: `python get_pip.py --disable-pip-version-check pip==24.2
[--no-setuptools] [--no-wheel]` in a venv without pip. This does the same with the pip the
interpreter bundles (ensurepip), which then installs the requested pip from PyPI. build_collection.py
places it where ansible-test looks for a manually downloaded script
(~/.ansible/test/cache/get_pip_<version>.py) when no script is there.
"""

import ensurepip
import os
import subprocess
import sys

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    env = dict(os.environ)
    ensurepip.bootstrap()  # it sets PIP_CONFIG_FILE=/dev/null in os.environ: pip's own config applies again below
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "-q", *args], env=env))

"""ringzero's compliance suite (testinfra): declared policies checked on real nodes.

The options and fixtures are ringzero's pytest plugin (`ringzero.pytest_plugin`, entry point
`ringzero`): installed with the wheel, the suite runs from any directory as
`ringzero.compliance_suite`::

    pytest --pyargs ringzero.compliance_suite --manifest manifest.json \
        --hosts ssh://root@127.0.0.1:2201,ssh://root@127.0.0.1:2202 --node-names vm1,vm2 \
        --ssh-identity-file key --known-hosts known_hosts --junitxml report.xml

In a checkout (`pytest components/compliance_suite ...`), where no entry point is installed, this
conftest loads the plugin itself.
"""

from __future__ import annotations

from importlib.metadata import entry_points

if not any(ep.value == "ringzero.pytest_plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["ringzero.pytest_plugin"]

"""The ringzero.node collection as `make collection` lays it out: the module's documentation
agrees with its argument spec (ansible-test sanity's validate-modules checks the same, in
`make collection-sanity`), the playbooks call the module by its FQCN, the role's argument
spec matches the module's, the version is ringzero's."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import yaml

from ringzero.plan import FEATURES
from tests.fixtures import ROOT

sys.path.insert(0, str(ROOT / "tools" / "collection"))
import build_collection as build


def _module_strings(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    return {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
            if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}


def test_the_layout_carries_the_module_playbooks_and_role_under_their_fqcn(tmp_path: Path) -> None:
    dest = build.layout(tmp_path)
    assert dest == tmp_path / "ansible_collections" / "ringzero" / "node"
    galaxy = yaml.safe_load((dest / "galaxy.yml").read_text())
    assert galaxy["version"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    module = dest / "plugins" / "modules" / "ringzero_node.py"
    source = (ROOT / "playbooks" / "library" / "ringzero_node.py").read_text()
    assert module.read_text() == build.collection_module(source)
    assert "from ansible.module_utils.ringzero_plan import plan_errors" in source
    assert "from ansible_collections.ringzero.node.plugins.module_utils.ringzero_plan import plan_errors" \
        in module.read_text()
    helper = dest / "plugins" / "module_utils" / "ringzero_plan.py"
    assert helper.read_bytes() == (ROOT / "playbooks" / "module_utils" / "ringzero_plan.py").read_bytes()
    # the fact parsers: a link in playbooks/module_utils, a real file (components/facts.py) in the collection
    facts = dest / "plugins" / "module_utils" / "ringzero_facts.py"
    assert not facts.is_symlink() and facts.read_bytes() == (ROOT / "components" / "facts.py").read_bytes()
    assert "from ansible_collections.ringzero.node.plugins.module_utils.ringzero_facts import (" in module.read_text()
    assert "ansible.module_utils.ringzero_" not in module.read_text()
    for playbook in (ROOT / "playbooks").glob("*.yml"):
        tasks = [t for play in yaml.safe_load((dest / "playbooks" / playbook.name).read_text()) for t in play["tasks"]]
        assert "ringzero.node.ringzero_node" in tasks[0] and "ringzero_node" not in tasks[0], playbook.name
    assert (dest / "roles" / "ringzero" / "tasks" / "main.yml").is_file()
    assert not (dest / "build_collection.py").exists() and not (dest / "get_pip_offline.py").exists()


def test_the_module_documents_its_argument_spec_with_types_and_choices() -> None:
    strings = _module_strings(ROOT / "playbooks" / "library" / "ringzero_node.py")
    doc = yaml.safe_load(strings["DOCUMENTATION"])
    assert yaml.safe_load(strings["EXAMPLES"]) and yaml.safe_load(strings["RETURN"])
    options = doc["options"]
    assert options["features"]["choices"] == list(FEATURES)
    assert options["state"]["choices"] == ["present", "absent"] and options["state"]["default"] == "present"
    assert options["plan"] == {**options["plan"], "type": "dict", "required": True}
    assert doc["attributes"]["check_mode"]["support"] == doc["attributes"]["diff_mode"]["support"] == "full"
    role = yaml.safe_load((ROOT / "tools" / "collection" / "roles" / "ringzero" / "meta" / "argument_specs.yml")
                          .read_text())["argument_specs"]["main"]["options"]
    assert role["ringzero_features"]["choices"] == list(FEATURES)
    assert role["ringzero_state"]["choices"] == options["state"]["choices"]

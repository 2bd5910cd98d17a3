"""The modules' documentation renders with ansible-doc and says what their argument_spec does."""

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml
from ansible_collections.wtstack.fleet.plugins.doc_fragments import runtime_api
from ansible_collections.wtstack.fleet.plugins.modules import haproxy_info, haproxy_server

REPO = Path(__file__).resolve().parents[4]
MODULES = {"haproxy_server": haproxy_server, "haproxy_info": haproxy_info}


def argument_spec(module):
    """The argument_spec main() builds, caught at AnsibleModule()."""
    with mock.patch.object(module, "AnsibleModule", side_effect=SystemExit) as constructor, \
            pytest.raises(SystemExit):
        module.main()
    return constructor.call_args.kwargs["argument_spec"]


@pytest.mark.parametrize("name", MODULES)
def test_documented_options_match_the_argument_spec(name):
    module = MODULES[name]
    documentation = yaml.safe_load(module.DOCUMENTATION)
    documented = dict(documentation["options"])
    if "wtstack.fleet.runtime_api" in documentation.get("extends_documentation_fragment", []):
        documented.update(yaml.safe_load(runtime_api.ModuleDocFragment.DOCUMENTATION)["options"])
    spec = argument_spec(module)
    assert sorted(documented) == sorted(spec)
    for option, doc in documented.items():
        arg = spec[option]
        assert doc.get("type", "str") == arg.get("type", "str"), option
        assert doc.get("default") == arg.get("default"), option
        assert doc.get("choices") == arg.get("choices"), option
        assert bool(doc.get("required")) == bool(arg.get("required")), option
    for section in ("EXAMPLES", "RETURN"):
        assert yaml.safe_load(getattr(module, section)), section


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_renders(name):
    ansible_doc = Path(sys.executable).parent / "ansible-doc"
    # The checkout finds wtstack.fleet through its collections/ link (tests/conftest.py); a copy under
    # ansible_collections/wtstack/fleet (ansible-test, an installed tarball) through its parents.
    in_tree = REPO.parent.parent.name == "ansible_collections"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO.parents[2] if in_tree else REPO / "collections"))
    env.pop("ANSIBLE_CONFIG", None)
    # ansible-test units gives module tests an ansible package of module_utils only; ansible-doc needs all of it.
    env.pop("PYTHONPATH", None)
    out = subprocess.run([str(ansible_doc), "--json", f"wtstack.fleet.{name}"], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)[f"wtstack.fleet.{name}"]
    assert doc["doc"]["module"] == name
    assert doc["examples"] and doc["return"]
    text = subprocess.run([str(ansible_doc), f"wtstack.fleet.{name}"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)
    assert "WARNING" not in text.stderr and "ERROR" not in text.stderr, text.stderr

"""Every module, filter and role documents itself through ansible-doc, and each role's README lists
exactly the variables its meta/argument_specs.yml main entry point accepts."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

COLLECTION = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
FILTERS = ["haproxy_ids", "interface_holding", "rolling_advance", "rolling_plan", "sha512_crypt", "topology",
           "unknown_variables", "vip_successors"]
ROLES = sorted(p.parent.parent.name for p in (COLLECTION / "roles").glob("*/meta/argument_specs.yml"))


def collections_path():
    """Where Ansible finds wtstack.fleet: the copy ansible-test runs in, or the checkout's link (conftest.py)."""
    if COLLECTION.parent.parent.name == "ansible_collections":
        return COLLECTION.parents[2]
    return COLLECTION / "collections"


def ansible_doc(*args):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path()), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    # ansible-test units may put a partial ansible package on PYTHONPATH; ansible-doc needs the whole one.
    env.pop("PYTHONPATH", None)
    env.pop("ANSIBLE_FORCE_COLOR", None)
    return subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), *args], cwd=COLLECTION, env=env,
                          capture_output=True, text=True, check=False)


def assert_documented(result, name):
    assert result.returncode == 0, result.stderr
    assert name in result.stdout
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr


def test_the_collection_has_what_its_changelog_announces():
    assert MODULES == ["haproxy_info", "haproxy_server", "host_state", "plan_files", "role_checks", "rolling_journal",
                       "vrrp_vip", "wt_instances", "wt_restart"]
    assert ROLES == ["haproxy", "rolling_restart", "wt_app"]


@pytest.mark.parametrize("name", MODULES)
def test_module_docs(name):
    assert_documented(ansible_doc("-t", "module", f"wtstack.fleet.{name}"), f"wtstack.fleet.{name}")


@pytest.mark.parametrize("name", FILTERS)
def test_filter_docs(name):
    assert_documented(ansible_doc("-t", "filter", f"wtstack.fleet.{name}"), f"wtstack.fleet.{name}")


@pytest.mark.parametrize("role", ROLES)
def test_role_docs(role):
    result = ansible_doc("-t", "role", f"wtstack.fleet.{role}")
    assert_documented(result, f"wtstack.fleet.{role}")
    for entry_point in argument_specs(role):
        assert re.search(rf"^ENTRY POINT: \W?{entry_point}\W? - ", result.stdout, re.M), entry_point


def argument_specs(role):
    return yaml.safe_load((COLLECTION / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def readme_variables(role):
    """Variable names in the first column of the table under the README's '## Variables' heading;
    a cell may name several (`wt_app_user`, `wt_app_group`)."""
    readme = (COLLECTION / "roles" / role / "README.md").read_text()
    section = re.search(r"^## Variables\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert section, f"roles/{role}/README.md has no '## Variables' section"
    rows = [line for line in section.group(1).splitlines() if line.startswith("|")]
    assert rows[0].replace(" ", "") == "|variable|default|meaning|", rows[0]
    names = []
    for row in rows[2:]:
        names += re.findall(r"`([^`]+)`", row.split("|")[1])
    return names


@pytest.mark.parametrize("role", ROLES)
def test_readme_lists_exactly_the_main_entry_points_variables(role):
    documented = readme_variables(role)
    assert len(documented) == len(set(documented)), f"listed twice: {documented}"
    assert sorted(documented) == sorted(argument_specs(role)["main"]["options"])

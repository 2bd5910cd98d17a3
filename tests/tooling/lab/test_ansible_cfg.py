"""The two Ansible configurations: the checkout's (users' own inventories) and the lab's.

The repository root's ansible.cfg applies to every run from the checkout, production included, so it
may only make runs faster, never weaken what Ansible checks. It names no collections path: the checkout
in one would make `ansible-galaxy collection install .` find wtstack.fleet installed already.
"""

import configparser
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def settings(path):
    parser = configparser.ConfigParser(interpolation=None)
    assert parser.read(path), path
    return {f"{section}.{key}": value for section in parser.sections() for key, value in parser.items(section)}


def dump(config, cwd):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}, "ANSIBLE_CONFIG": str(config)}
    result = subprocess.run([str(BIN / "ansible-config"), "dump", "--only-changed", "-t", "all"], cwd=cwd, env=env,
                            capture_output=True, text=True, check=True)
    return result.stdout


def test_the_checkouts_config_keeps_ansibles_safe_defaults():
    root = settings(REPO / "ansible.cfg")
    assert set(root) <= {"defaults.forks", "defaults.callback_result_format", "ssh_connection.pipelining"}, root


def test_the_labs_config_names_the_labs_inventory_from_anywhere(tmp_path):
    lab = settings(REPO / "tests/lab/ansible.cfg")
    assert lab["defaults.host_key_checking"] == "False"
    assert "PreferredAuthentications=publickey" in lab["ssh_connection.ssh_args"]
    changed = dump(REPO / "tests/lab/ansible.cfg", tmp_path)  # paths are relative to the file, not the cwd
    assert f"DEFAULT_HOST_LIST({REPO}/tests/lab/ansible.cfg) = ['{REPO}/.lab/inventory.yml']" in changed, changed
    assert f"COLLECTIONS_PATHS({REPO}/tests/lab/ansible.cfg) = ['{REPO}/collections']" in changed, changed


def test_from_the_checkout_host_keys_are_checked():
    changed = dump(REPO / "ansible.cfg", REPO)
    assert "HOST_KEY_CHECKING" not in changed and "DEFAULT_HOST_LIST" not in changed, changed
    assert "COLLECTIONS_PATHS" not in changed, changed

"""Floating VIPs through Ansible: haproxy_vips in group_vars, a host variable on one balancer, and what
playbooks/topology.yml hands the roles (the refusals are in tests/bad_inputs.py).

The play contacts no host, so the inventory's addresses need not exist.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def topology_of(inventory_path):
    """The wtstack_topology fact the topology play sets, read from its verbose JSON result."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-v", "-i", str(inventory_path), str(REPO / "playbooks/topology.yml")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    line = re.search(r"^ok: \[\S+ -> localhost\] => (\{.*\"wtstack_topology\".*)$", result.stdout, re.M)
    assert line, result.stdout[-3000:]
    return json.loads(line.group(1))["ansible_facts"]["wtstack_topology"]


def test_vips_from_group_vars_reach_the_roles(tmp_path):
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {
        "haproxy": {"vars": {"haproxy_vips": ["198.18.0.10/24", {"address": "198.18.0.11/24", "router_id": 70}]},
                    "hosts": {"lb1": {"ansible_host": "198.18.0.2"},
                              "lb2": {"ansible_host": "203.0.113.3", "haproxy_vrrp_address": "198.18.0.3"}}},
        "wt": {"hosts": {"app1": {"ansible_host": "198.18.0.21", "wt_instances": 1}}},
        "db": {"hosts": {"db1": {"ansible_host": "198.18.0.30"}}},
    }}}))
    topology = topology_of(path)
    assert topology["vips"] == [
        {"address": "198.18.0.10", "prefix_length": 24, "family": 4, "holder": "lb1", "router_id": 51,
         "priorities": [{"host": "lb1", "priority": 250}, {"host": "lb2", "priority": 240}], "name": "wtstack_vip_51"},
        {"address": "198.18.0.11", "prefix_length": 24, "family": 4, "holder": "lb2", "router_id": 70,
         "priorities": [{"host": "lb2", "priority": 250}, {"host": "lb1", "priority": 240}], "name": "wtstack_vip_70"},
    ]
    assert [(b["host"], b["vrrp_address"], b["proxy_address"]) for b in topology["balancers"]] == [
        ("lb1", "198.18.0.2", "198.18.0.2"), ("lb2", "198.18.0.3", "203.0.113.3")]

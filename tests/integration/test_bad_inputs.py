"""site.yml refuses every bad input of tests/bad_inputs.py before contacting any host (issue 6).

Cases the topology core refuses are checked against it in-process (fast, every one); the cases
refused by the roles' validate entry points, and a sample of topology cases, run through site.yml.

The inventory is the one tests/lab/lab.py writes for the end-to-end fleet (tests/e2e/fleet.yml),
with every host moved to 127.0.99.x, SSH port 1 and a key that does not exist: nothing listens
there, so a case that got past validation would show up as an unreachable host, never as a
change. The control run proves it: the unmodified inventory passes validation and then fails
exactly that way. tests/e2e/test_65_bad_inputs.py runs the same table against the live lab.
"""

import importlib.util
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import TopologyError, build_topology
from bad_inputs import (
    CASES,
    TOPOLOGY_PLAYS,
    bad_inventory,
    extra_var_args,
    flat,
    groups_and_hostvars,
    refusal_problems,
)

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
if "wtstack_lab" not in sys.modules:  # tests/tooling/lab/test_lab.py loads it the same way
    _spec = importlib.util.spec_from_file_location("wtstack_lab", REPO / "tests/lab/lab.py")
    sys.modules["wtstack_lab"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
    _spec.loader.exec_module(sys.modules["wtstack_lab"])
lab = sys.modules["wtstack_lab"]


def unreachable_lab_inventory(tmp_path):
    inventory = lab.build_inventory(lab.load_fleet(REPO / "tests/e2e/fleet.yml"), tmp_path / "no-such-key")
    for group in inventory["all"]["children"].values():
        for hostvars in group["hosts"].values():
            if hostvars:
                address = hostvars["ansible_host"].replace("127.0.10.", "127.0.99.")
                hostvars.update(ansible_host=address, ansible_port=1)
                if "haproxy_bind_address" in hostvars:
                    hostvars["haproxy_bind_address"] = address
                hostvars["ansible_ssh_common_args"] += " -o ConnectTimeout=2"
    return inventory


def run_site(inventory_path, *args):
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0"}
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory_path), str(REPO / "site.yml"), *args],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return result.returncode, result.stdout + result.stderr


def topology_error(inventory, case):
    """The topology core's message for this case, or None if the core accepts it (a role-variable case)."""
    mutated, dummy = bad_inventory(inventory, case)
    groups, hostvars, extra = groups_and_hostvars(mutated, case.extra_vars)
    try:
        build_topology(groups, hostvars, haproxy_group=extra.get("wtstack_haproxy_group", "haproxy"),
                       wt_group=extra.get("wtstack_wt_group", "wt"))
    except TopologyError as error:
        return str(error)
    return None


# Topology cases that also run through site.yml: one per kind of value that travels from YAML
# or -e through Ansible's templating into the filter (list, bool, float, group, extra var), group
# vars under host vars, and a host outside the fleet whose address the filter reads only for VIPs.
THROUGH_ANSIBLE = {"overlapping prefixes wt1 and wt10", "count true", "count 2.5", "empty wt group",
                   "load balancer declares instances outside the wt group",
                   "wtstack_haproxy_group names no group", "VIPs that differ between load balancers",
                   "VIP that is the address of a host outside the fleet", "haproxy_vips as a string extra var"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(hosts, return code, output) of each case that runs through site.yml, four playbooks at a time."""
    tmp_path = tmp_path_factory.mktemp("bad-inputs")
    inventory = unreachable_lab_inventory(tmp_path)
    cases = [case for case in CASES
             if case.name in THROUGH_ANSIBLE or topology_error(inventory, case) is None]

    def run(index_case):
        index, case = index_case
        mutated, hosts = bad_inventory(inventory, case)
        path = tmp_path / f"case{index:02d}.yml"
        path.write_text(yaml.safe_dump(mutated, sort_keys=False))
        return (hosts, *run_site(path, *extra_var_args(case)))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip((case.name for case in cases), pool.map(run, enumerate(cases))))
    print(f"\n{len(cases)} bad inputs through site.yml in {time.monotonic() - started:.1f}s")
    return inventory, tmp_path, results


def test_the_table_covers_issue_6():
    assert len(CASES) >= 22
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_refused_before_any_host_is_contacted(runs, case):
    inventory, dummy, results = runs
    if case.name not in results:
        message = topology_error(inventory, case)
        hosts = bad_inventory(inventory, case)[1]
        missing = [fragment for fragment in case.expected(hosts) if flat(fragment) not in flat(message)]
        assert not missing, f"{missing} not in the topology's message:\n{message}"
        return
    hosts, returncode, output = results[case.name]
    problems = refusal_problems(case, hosts, returncode, output)
    assert not problems, "\n".join(problems) + "\n" + output[-4000:]


def test_control_run_gets_past_validation_and_would_reach_the_hosts(runs):
    """Without a mutation the same harness sees SSH attempts: the refusals above are not an artefact."""
    inventory, tmp_path, dummy = runs
    path = tmp_path / "control.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    returncode, output = run_site(path)
    plays = re.findall(r"^PLAY \[(.*)\] \*", output, re.M)
    assert returncode != 0 and plays[:2] == TOPOLOGY_PLAYS and len(plays) > 2, output[-3000:]
    assert "UNREACHABLE!" in output and "port 1: Connection refused" in output, output[-3000:]

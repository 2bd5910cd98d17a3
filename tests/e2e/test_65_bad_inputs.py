"""Bad input (issue 6): every case of tests/bad_inputs.py fails before any host is changed.

Each case is a small mutation of the lab's own inventory (or `-e` extra vars) run through the
checkout's site.yml. Per case: a non-zero exit, the host and the variable in the output, and the run
stopped in the topology play, which runs on the controller only (see bad_inputs.refusal_problems),
with changed=0 and unreachable=0 in the recap. Role variables are checked there too (the roles'
`validate` entry points), so a wrong type fails before any SSH connection as well. Once for the whole
matrix: the files the roles write on every host, HAProxy's master pid and every instance's pid are
the same before and after, and every load balancer still serves.

The cases fail on the controller in a second or two each; they run four at a time.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import yaml
from bad_inputs import CASES, bad_inventory, extra_var_args, refusal_problems
from wt_http import get

LB_FILES = ("/etc/haproxy/haproxy.cfg", "/etc/haproxy/wt-sessions.map",
            "/etc/systemd/system/haproxy.service.d/wtstack-server-state.conf")
APP_FILES = ("/etc/systemd/system/wt@.service", "/etc/wtstack/wt/wt_config.xml", "/etc/wtstack/wt/app.env")


def live_state(lab):
    """{host: checksums of the managed files and the pids of HAProxy's master or of every instance}."""
    state = {}
    for lb in lab.topology.lb_hosts:
        state[lb] = lab.ssh(lb, f"sha256sum {' '.join(LB_FILES)}; systemctl show -p MainPID --value haproxy")
    for app in lab.topology.app_hosts:
        units = " ".join(instance.unit_name for instance in lab.topology.instances_on(app))
        state[app] = lab.ssh(app, f"sha256sum {' '.join(APP_FILES)} /etc/wtstack/wt/instances/*.env; "
                                  f"systemctl show -p Id,MainPID {units}")
    return state


def test_bad_inputs_are_refused_before_any_host_changes(lab, converged, tmp_path):
    before = live_state(lab)
    inventory = yaml.safe_load(lab.inventory_path.read_text())

    def refuse(index_case):
        index, case = index_case
        mutated, hosts = bad_inventory(inventory, case)
        path = tmp_path / f"case{index:02d}.yml"
        path.write_text(yaml.safe_dump(mutated, sort_keys=False))
        run = lab.playbook("site.yml", *extra_var_args(case), inventory=path, timeout=300)
        return case, refusal_problems(case, hosts, run.returncode, run.output), run.output

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(refuse, enumerate(CASES)))
    print(f"\n{len(CASES)} bad inputs in {time.monotonic() - started:.0f}s")

    after = live_state(lab)
    assert after == before, "a refused run changed the live configuration or restarted a process"
    for lb in lab.topology.lb_hosts:
        assert get(lab.url(lb) + "/")[0] == 200, f"{lb} no longer serves"

    failed = [f"{case.name}: " + "; ".join(problems) + "\n" + output[-2500:]
              for case, problems, output in results if problems]
    assert not failed, f"{len(failed)} of {len(CASES)} bad inputs were not refused properly:\n" + "\n\n".join(failed)

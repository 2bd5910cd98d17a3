"""A user who logs in unprivileged and becomes root with sudo, the usual way to reach hosts (issue 22).

Every lab host has the account deploy: no privilege, the lab's key, passwordless sudo; `lab.py up` writes
.lab/inventory-deploy.yml, the same fleet with `ansible_user: deploy` and `ansible_become: true`. Through it,
under load (sessions sending a request every 200 ms through every load balancer): site.yml with become from
the inventory, a rolling restart with `-b` on the command line (an inventory without ansible_become), and
status.yml. No request may fail, every instance must be restarted, and every SSH login to every host in
that time must be deploy's, none root's, with deploy's sudo doing the work. Without become, the same user
cannot read HAProxy's runtime socket: the control run that shows the account is really unprivileged.
"""

import re
import time

import pytest
import yaml
from conftest import REPO
from load import SessionLoad
from wt_http import whoami

DEPLOY = "deploy"
DEPLOY_INVENTORY = REPO / ".lab/inventory-deploy.yml"
SESSIONS = 24
INTERVAL = 0.2
LOGIN = re.compile(r"^(\d+\.\d+) \S+ sshd(?:-session)?\[\d+\]: Accepted \S+ for (\S+) from ", re.M)
SUDO = re.compile(r"^(\d+\.\d+) \S+ sudo\[\d+\]:\s+(\S+) : .*USER=root ; COMMAND=", re.M)


@pytest.fixture(scope="module")
def inventories(lab, converged, tmp_path_factory):
    """(with become, without): the lab's deploy inventory, and a copy without ansible_become for `-b`."""
    assert DEPLOY_INVENTORY.is_file(), "lab.py up writes .lab/inventory-deploy.yml"
    data = yaml.safe_load(DEPLOY_INVENTORY.read_text())
    for group in data["all"]["children"].values():
        for hostvars in (group.get("hosts") or {}).values():
            if hostvars:
                assert hostvars["ansible_user"] == DEPLOY and hostvars.pop("ansible_become") is True
    without = tmp_path_factory.mktemp("deploy") / "inventory-deploy-without-become.yml"
    without.write_text(yaml.safe_dump(data, sort_keys=False))
    return DEPLOY_INVENTORY, without


@pytest.fixture
def fresh_ssh(monkeypatch, tmp_path):
    """Ansible's SSH connections of this test only: a master left by an earlier run (ControlPersist) would
    carry commands without a login the journal could show."""
    monkeypatch.setenv("ANSIBLE_SSH_CONTROL_PATH_DIR", str(tmp_path / "cp"))


def hosts_of(lab):
    return list(dict.fromkeys(lab.topology.lb_hosts + lab.topology.app_hosts))


def journal_of(lab, since, until):
    """{host: (SSH logins as [user], sudo runs as root by [user])} between two times, from each host's journal
    (read as root, after `until`: those logins are not counted)."""
    seen = {}
    for host in hosts_of(lab):
        journal = lab.ssh(host, f"journalctl -o short-unix --no-pager --since @{int(since)} --until @{int(until) + 1}")
        seen[host] = tuple([user for stamp, user in pattern.findall(journal) if since <= float(stamp) <= until]
                           for pattern in (LOGIN, SUDO))
    return seen


def test_the_deploy_account_is_unprivileged_and_needs_become_for_the_runtime_socket(lab, inventories, fresh_ssh):
    with_become, without = inventories
    for host in hosts_of(lab):
        assert lab.ssh(host, f"id -u {DEPLOY}; id -nG {DEPLOY}").split() == ["1000", DEPLOY], host
    run = lab.playbook("playbooks/status.yml", inventory=without)
    assert run.returncode != 0
    assert "no permission to open HAProxy runtime socket" in run.output, run.output[-3000:]
    print(f"\nstatus.yml as {DEPLOY} without become: refused by the runtime socket, as it should be")


def test_site_rolling_restart_and_status_as_deploy_with_become_under_load(lab, inventories, fresh_ssh):
    with_become, without = inventories
    prefixes = [instance.prefix for instance in lab.topology.instances]
    pids_before = {i.server_name: whoami(f"http://{i.connect_address}:{i.port}")["pid"] for i in lab.topology.instances}
    since = time.time()
    # No stall photographs: they log in as root, which this test must not see.
    load = SessionLoad(lab.lb_urls, prefixes, sessions=SESSIONS, interval=INTERVAL).start()
    time.sleep(2)

    site = lab.playbook("site.yml", inventory=with_become)
    roll = lab.playbook("playbooks/rolling_restart.yml", "-b", "-e", "rolling_restart_drain_timeout=3",
                        "-e", "rolling_restart_quiet=2", inventory=without) if site.returncode == 0 else None
    status = lab.playbook("playbooks/status.yml", inventory=with_become) if roll and roll.returncode == 0 else None

    time.sleep(2)
    load.stop()
    until = time.time()
    assert site.returncode == 0, site.output[-6000:]
    changed = {host: counts["changed"] for host, counts in site.recap().items() if counts["changed"]}
    assert changed == {}, f"site.yml as {DEPLOY} changed what it wrote as root: {changed}\n{site.output[-4000:]}"
    assert roll.returncode == 0, roll.output[-6000:]
    assert status.returncode == 0, status.output[-6000:]
    for instance in lab.topology.instances:
        assert re.search(rf"^\s*- '?{re.escape(instance.server_name)}\s.*\bUP\b", status.output, re.M), \
            f"status.yml shows no UP row for {instance.server_name}:\n{status.output[-3000:]}"

    print(f"\nas {DEPLOY} with become: site.yml {site.seconds:.0f}s (changed=0), rolling restart {roll.seconds:.0f}s "
          f"(-b), status.yml {status.seconds:.0f}s; load: {load.summary()}")
    load.assert_no_failed_request(lab)
    assert load.requests > SESSIONS * (until - since) / INTERVAL * 0.5, "the load generator fell behind"
    pids_after = {i.server_name: whoami(f"http://{i.connect_address}:{i.port}")["pid"] for i in lab.topology.instances}
    assert all(pids_after[name] != pid for name, pid in pids_before.items()), "an instance was not restarted"

    seen = journal_of(lab, since, until)
    for host, (logins, sudo_users) in seen.items():
        assert logins and set(logins) == {DEPLOY}, f"{host}: SSH logins during the runs: {logins}"
        assert sudo_users and set(sudo_users) == {DEPLOY}, f"{host}: sudo to root by {sorted(set(sudo_users))}"
    print("SSH logins (all deploy) and sudo runs per host: "
          + ", ".join(f"{host} {len(logins)}/{len(sudo)}" for host, (logins, sudo) in seen.items()))

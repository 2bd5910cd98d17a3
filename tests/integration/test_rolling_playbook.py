"""playbooks/rolling_restart.yml end to end on this machine, without the lab: a real HAProxy running
the haproxy role's own configuration (rendered as bench/fleet.py renders it), app "hosts" reached
with Ansible's local connection, each instance a small HTTP responder, and a stand-in `systemctl`
that records the restarts it is asked for (the responders stay up). What it shows is the roll's
control plane: one host conducts the roll (the others leave at once), each step runs on the
balancer and the batch's hosts as async jobs, batches respect the limit, a phantom host's instances
(HAProxy sees them down) are left alone and not counted, the journal is kept while a roll is
stopped and removed when it completes, a re-run resumes. The lab's e2e tests show the rest (real
restarts under load).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.client import RuntimeClient
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.errors import SocketUnavailable
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.parsing import parse_show_stat
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import build_topology

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests/integration"))

import fleet as bench_fleet  # noqa: E402
import local_haproxy as haproxy_fixture  # noqa: E402

ADDRESS = "127.0.0.1"
SYSTEMCTL = """#!/bin/sh
# A stand-in for systemctl: records each call; the instances (responders) never stop.
echo "$(date +%s.%N) $*" >> "$(dirname "$0")/calls.log"
case "$1" in
  show) for unit in "$@"; do case "$unit" in wt@*) echo "Id=$unit"; echo "ActiveState=active"; echo;; esac; done;;
esac
exit 0
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """(inventory path, workdir, topology, haproxy process, env) of a balancer and three app hosts:
    app1 and app2 with two instances each (answering), app3 with two where nothing listens."""
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if not haproxy:
        pytest.fail("haproxy is not installed (`apt-get install haproxy`, as .ci/run does)", pytrace=False)
    workdir = tmp_path_factory.mktemp("rolling")
    responders = {}
    hosts = {}
    for host in ("app1", "app2", "app3"):
        ports = []
        for dummy in range(2):
            if host == "app3":
                ports.append(haproxy_fixture.free_port(ADDRESS))
            else:
                responder = haproxy_fixture.Backend(ADDRESS)
                responders[responder.port] = responder
                ports.append(responder.port)
        hosts[host] = {"ansible_host": ADDRESS, "wt_instances": [{"port": port} for port in ports]}
    socket_path = workdir / "admin.sock"
    lb = {"ansible_host": ADDRESS, "haproxy_bind_address": ADDRESS,
          "haproxy_bind_port": haproxy_fixture.free_port(ADDRESS), "haproxy_stats_socket_path": str(socket_path)}
    groups = {"all": ["lb1", *hosts], "haproxy": ["lb1"], "wt": list(hosts)}
    topology = build_topology(groups, {"lb1": lb, **hosts}).to_dict()
    overrides = {key: value for key, value in lb.items() if key.startswith("haproxy_")}
    overrides.update(haproxy_check_interval="200ms",
                     haproxy_relay_address=f"abns@wtstack-rolling-test-{os.getpid()}")
    files = bench_fleet.render_role_files(topology, workdir / "wt-sessions.map", overrides)
    config = bench_fleet.adapt(files.config, nbthread=1, stats_socket=socket_path, server_close=False)
    (workdir / "wt-sessions.map").write_text(files.map_text)
    (workdir / "haproxy.cfg").write_text(config)
    log = open(workdir / "haproxy.log", "w")
    process = subprocess.Popen([haproxy, "-db", "-f", str(workdir / "haproxy.cfg")], stdout=log,
                               stderr=subprocess.STDOUT)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"children": {
        "haproxy": {"hosts": {"lb1": {**lb, **local}}},
        "wt": {"hosts": {host: {**variables, **local} for host, variables in hosts.items()}}}}}
    inventory_path = workdir / "inventory.yml"
    inventory_path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    (workdir / "bin").mkdir()
    (workdir / "bin/systemctl").write_text(SYSTEMCTL)
    (workdir / "bin/systemctl").chmod(0o755)
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{workdir / 'bin'}:{os.environ['PATH']}"}
    try:
        deadline = time.monotonic() + 20
        while True:  # every answering instance up, app3's down
            try:
                statuses = status(socket_path)
            except SocketUnavailable:  # HAProxy still starting
                statuses = {}
            if len(statuses) == 6 and sorted(statuses.values()) == ["DOWN", "DOWN", "UP", "UP", "UP", "UP"]:
                break
            assert time.monotonic() < deadline, (statuses, (workdir / "haproxy.log").read_text()[-2000:])
            time.sleep(0.2)
        yield {"inventory": inventory_path, "workdir": workdir, "topology": topology, "env": env,
               "socket": socket_path, "responders": responders}
    finally:
        haproxy_fixture.stop_process(process)
        log.close()
        for responder in responders.values():
            responder.shutdown()
            responder.server_close()


def status(socket_path):
    """{server: status} of backend wt's placement servers, read as the runtime modules read them."""
    reply = RuntimeClient(str(socket_path)).execute("show stat -1 4 -1")
    return {row["svname"]: row["status"] for row in parse_show_stat(reply) if row["pxname"] == "wt"}


def roll(fleet, *args):
    journal = fleet["workdir"] / "journal.json"
    calls = fleet["workdir"] / "bin/calls.log"
    calls.unlink(missing_ok=True)
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(fleet["inventory"]), "playbooks/rolling_restart.yml",
         "-e", f"rolling_restart_socket={fleet['socket']}", "-e", f"rolling_restart_journal_path={journal}",
         "-e", "rolling_restart_quiet=0", "-e", "rolling_restart_drain_timeout=1", *args],
        cwd=REPO, env=fleet["env"], capture_output=True, text=True, timeout=600, check=False)
    restarts = [line.split()[2:] for line in calls.read_text().splitlines() if " restart " in line] \
        if calls.exists() else []
    return result.returncode, result.stdout + result.stderr, restarts, journal


def answering(fleet):
    return [i["server_name"] for i in fleet["topology"]["instances"] if i["host"] != "app3"]


def test_one_host_conducts_the_roll_in_batches_and_the_phantoms_are_left_alone(fleet):
    servers = answering(fleet)
    code, output, restarts, journal = roll(fleet, "-e", "rolling_max_unavailable=2",
                                           "-e", json.dumps({"rolling_restart_servers": servers}))
    assert code == 0, output[-5000:]
    assert "2 instance(s) outside the roll are down on every load balancer" in output
    assert re.search(r"down, not in the roll\s+2", output) and re.search(r"rolled\s+4'", output), output[-3000:]
    # The canary, then batches of two on two hosts: one systemctl restart per host and batch.
    assert [len(units) for units in restarts] == [1, 1, 1, 1], restarts
    assert sorted(unit for units in restarts for unit in units) == sorted(
        i["unit_name"] for i in fleet["topology"]["instances"] if i["host"] != "app3")
    # After the conductor's start, no task ran for app2 or app3: only app1 has results.
    assert not re.search(r"^(ok|changed|skipping): \[app[23]\]", output, re.M), output[-3000:]
    recap = output[output.index("PLAY RECAP"):]
    assert re.search(r"^app1\s+: ok=", recap, re.M) and not re.search(r"^app[23]\s", recap, re.M), recap
    assert not journal.exists(), "a complete roll kept its journal"
    assert set(status(fleet["socket"]).values()) == {"UP", "DOWN"}


def test_a_limit_rolls_its_hosts_only_conducted_by_the_first_of_them(fleet):
    code, output, restarts, journal = roll(fleet, "--limit", "app2")
    assert code == 0, output[-5000:]
    assert re.search(r"rolled\s+2'", output), output[-3000:]
    app2 = [i["unit_name"] for i in fleet["topology"]["instances"] if i["host"] == "app2"]
    assert list(restarts) == [[app2[0]], [app2[1]]], restarts
    assert re.search(r"^(ok|changed): \[app2", output, re.M)


def test_a_stopped_roll_keeps_its_journal_and_the_rerun_resumes(fleet):
    servers = answering(fleet)
    selection = json.dumps({"rolling_restart_servers": servers})
    canary = next(i for i in fleet["topology"]["instances"] if i["server_name"] == servers[0])
    fleet["responders"][canary["port"]].healthy = False  # it comes back from its restart failing /health
    try:
        code, output, restarts, journal = roll(fleet, "-e", selection, "-e", "rolling_restart_start_timeout=2")
    finally:
        fleet["responders"][canary["port"]].healthy = True
    assert code != 0
    assert f"The restart stopped: the canary batch failed: {servers[0]}" in output, output[-4000:]
    assert journal.exists()
    assert status(fleet["socket"])[servers[0]].startswith("MAINT")
    code, output, restarts, journal = roll(fleet, "-e", selection)
    assert code == 0, output[-5000:]
    assert "resuming roll" in output and not journal.exists()
    assert restarts[0] == [next(i["unit_name"] for i in fleet["topology"]["instances"]
                                if i["server_name"] == servers[0])], restarts
    assert status(fleet["socket"])[servers[0]] == "UP"

"""Faults under load: an instance killed, a whole app host restarted, site.yml killed mid-run.

The same bounded load as the rolling tests (40 sessions, a request every 200 ms each, through
both load balancers) runs through every fault. What a fault may cost is stated and checked per
test: a failed request is allowed only for a session whose own instance the fault hit, only
while it lasted; every other session keeps its id; every other instance keeps its process.
"""

import re
import time
from pathlib import Path

from conftest import FLEET, REPO, lab_command
from fleet_state import instance_pids, inventory_with
from load import INTERVAL, SESSIONS, SessionLoad
from wt_http import get, whoami

# What an instance caught stopping answers (Wt's own 500), as the load generator records it: on a
# session's request, or on the GET / that starts a new session for a session that moved.
WT_STOPPING_500 = ("HTTP 500", "new session: GET / answered 500")
SERVER_EVENT = re.compile(
    r"^(\d+\.\d+) \S+ haproxy\[\d+\]: (?:\[WARNING\]\s+\(\d+\) : )?Server wt/(\S+) is (DOWN|UP)\b", re.M)


def server_events(lab, since):
    """{(lb, server): ["DOWN", "UP", ...]} as each load balancer's HAProxy logged its checks."""
    events = {}
    for lb in lab.topology.lb_hosts:
        log = lab.ssh(lb, f"journalctl -u haproxy -o short-unix --no-pager --since @{int(since) - 1}")
        for dummy, server, event in SERVER_EVENT.findall(log):
            events.setdefault((lb, server), []).append(event)
    return events


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.2)
    return time.monotonic()


def all_up(lab, servers):
    return all(lab.server_status(lb).get(server, "").startswith("UP")
               for lb in lab.topology.lb_hosts for server in servers)


def answers(instance):
    try:
        return get(f"http://{instance.connect_address}:{instance.port}/health", timeout=2)[0] == 200
    except OSError:
        return False


def check_only_hit_sessions_suffered(load, hit_prefixes, window):
    """Failures and moves only for sessions on the instances the fault hit, only during it."""
    start, end = window
    for started, base_url, message, session_id in load.failures:
        assert session_id.startswith(hit_prefixes) and start - 1 <= started <= end, \
            f"a request outside the fault failed: {message} at {started:.1f} via {base_url} ({session_id})"
    for move in load.moves:
        assert move.old_id.startswith(hit_prefixes), f"session {move.old_id} moved, but the fault hit {hit_prefixes}"


def test_kill_9_of_an_instance_under_load(lab, converged):
    victim = lab.topology.instances_on(lab.topology.app_hosts[0])[1]
    prefixes = [instance.prefix for instance in lab.topology.instances]
    pids_before = instance_pids(lab)
    since = time.time()
    load = SessionLoad(lab.lb_urls, prefixes, sessions=SESSIONS, interval=INTERVAL, on_stall=lab.snapshot_stall).start()
    on_victim = sum(record.session_id.startswith(victim.prefix) for record in load.records)
    time.sleep(3)

    killed_at = time.monotonic()
    killed_wall = time.time()
    lab.ssh(victim.host, f"kill -9 $(systemctl show --property=MainPID --value {victim.unit_name})")
    serving = wait_until(lambda: answers(victim), 60, f"{victim.server_name} answering again")
    recovered = wait_until(lambda: all_up(lab, [victim.server_name]), 60, f"{victim.server_name} UP everywhere")
    recovered_wall = time.time()
    time.sleep(3)
    load.stop()

    print(f"\nkill -9 {victim.server_name} ({on_victim} of {len(load.records)} sessions on it): {load.summary()}; "
          f"serving again after {serving - killed_at:.1f}s, UP on every balancer after {recovered - killed_at:.1f}s; "
          f"balancers saw {server_events(lab, since).get((lab.topology.lb_hosts[0], victim.server_name), [])} "
          f"on {lab.topology.lb_hosts[0]}")
    if load.failures:
        load.explain_failures(lab)
    check_only_hit_sessions_suffered(load, (victim.prefix,), (killed_wall, recovered_wall))
    assert len(load.failures) <= on_victim, "more failures than requests that can be in flight on the victim"
    pids_after = instance_pids(lab)
    assert pids_after.pop(victim.server_name) != pids_before.pop(victim.server_name), "systemd did not restart it"
    assert pids_after == pids_before, "another instance restarted"


def nspawn_alive(host):
    try:
        pid = int((REPO / ".lab/hosts" / host / "nspawn.pid").read_text())
    except (OSError, ValueError):
        return False
    return Path(f"/proc/{pid}").exists() and b"systemd-nspawn" in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_app_host_restart_under_load(lab, converged):
    host = lab.topology.app_hosts[-1]
    on_host = lab.topology.instances_on(host)
    hit = tuple(instance.prefix for instance in on_host)
    prefixes = [instance.prefix for instance in lab.topology.instances]
    pids_before = instance_pids(lab)
    load = SessionLoad(lab.lb_urls, prefixes, sessions=SESSIONS, interval=INTERVAL, on_stall=lab.snapshot_stall).start()
    time.sleep(3)

    started = time.monotonic()
    stopped_wall = time.time()
    lab.ssh(host, "systemctl poweroff", check=False)
    wait_until(lambda: not nspawn_alive(host), 120, f"{host} powered off")
    down = time.monotonic()
    lab_command("up", "--fleet", str(FLEET))  # boots the host again from its own disk
    booted = time.monotonic()
    servers = [instance.server_name for instance in on_host]
    recovered = wait_until(lambda: all_up(lab, servers), 120, f"{host}'s instances UP everywhere")
    recovered_wall = time.time()
    time.sleep(3)
    load.stop()

    print(f"\nrestart of {host} ({len(on_host)} instances): {load.summary()}; power-off took {down - started:.1f}s, "
          f"boot {booted - down:.1f}s, every instance UP on every balancer {recovered - started:.1f}s after poweroff")
    if load.failures:
        load.explain_failures(lab)
    check_only_hit_sessions_suffered(load, hit, (stopped_wall, recovered_wall))
    enabled = lab.ssh(host, "systemctl is-enabled " + " ".join(i.unit_name for i in on_host)).split()
    assert set(enabled) == {"enabled"}, enabled
    pids_after = instance_pids(lab)
    for name, pid in pids_before.items():
        assert (pids_after[name] != pid) == (name in servers), f"{name}: pid {pid} -> {pids_after[name]}"


def test_interrupted_site_run_converges_on_rerun(lab, converged, tmp_path):
    """site.yml killed (SIGKILL, as a lost terminal) after it wrote new settings but before it restarted
    the instances; the re-run must still apply them, and the run after it must report changed=0."""
    app_host = lab.topology.app_hosts[0]
    count = len(lab.topology.instances_on(app_host))
    first = lab.topology.instances[0]
    version = whoami(f"http://{first.connect_address}:{first.port}")["version"]
    # The lab's instances may run the unversioned release (wt_app_version unset): "" cannot start a name.
    new_version = f"{version}-next" if version else "next"
    grown = inventory_with(lab, tmp_path, app_host, count + 1)
    prefixes = [instance.prefix for instance in lab.topology.instances]
    load = SessionLoad(lab.lb_urls, prefixes, sessions=SESSIONS, interval=INTERVAL, on_stall=lab.snapshot_stall).start()
    time.sleep(2)

    # A new version (every instance must restart) and one more instance on app_host (the balancers
    # must reload), killed once the app hosts wrote their shared files.
    args = ["-e", f"wt_app_version={new_version}"]
    # The new version's release.env is the last file the app hosts write before their instances move.
    killed = lab.interrupted_playbook("site.yml", *args, inventory=grown,
                                      kill_after=r"^changed: \[\S+\] => \(item=/opt/wtstack/releases/\S+/release.env\)")
    versions = {whoami(f"http://{i.connect_address}:{i.port}")["version"] for i in lab.topology.instances}
    print(f"\nsite.yml killed after {killed.seconds:.0f}s; instances then ran versions {sorted(versions)}")

    rerun = lab.playbook("site.yml", *args, inventory=grown)
    assert rerun.returncode == 0, rerun.output[-6000:]
    again = lab.playbook("site.yml", *args, inventory=grown)
    assert again.returncode == 0, again.output[-6000:]
    load.stop()
    changed = {host: counts["changed"] for host, counts in again.recap().items()}
    assert set(changed.values()) == {0}, f"not idempotent after the re-run: {changed}"

    versions = {i.server_name: whoami(f"http://{i.connect_address}:{i.port}")["version"]
                for i in lab.topology.instances}
    assert set(versions.values()) == {new_version}, f"the re-run did not apply the new version: {versions}"
    added = f"{app_host}-{lab.topology.instances_on(app_host)[-1].port + 1}"
    for lb in lab.topology.lb_hosts:
        assert lab.server_status(lb).get(added, "").startswith("UP"), f"{lb} does not route to {added}"
    print(f"re-run converged in {rerun.seconds:.0f}s (every instance on {new_version}, {added} UP everywhere); "
          f"the next run: changed=0 in {again.seconds:.0f}s; {load.summary()}")
    # The version change restarts each host's instances at once (rolling_upgrade.yml is the tool for
    # that): sessions move, and a request that reaches an instance at the instant it stops gets Wt's
    # own 500 (HAProxy retries only what an instance dropped unanswered), a session's request or the
    # GET / that starts a moved session's new one alike. Nothing else may fail.
    if load.failures:
        load.explain_failures(lab)
    assert all(message in WT_STOPPING_500 for dummy, dummy, message, dummy in load.failures), load.failures
    assert len(load.failures) <= len(lab.topology.instances), load.failures

    # Back to the fleet as it was: the lab's inventory and the version it ran.
    restored = lab.playbook("site.yml", "-e", "haproxy_retire_drain_timeout=3", "-e", f"wt_app_version={version}")
    assert restored.returncode == 0, restored.output[-6000:]


def test_a_file_newer_than_its_process_is_applied(lab, converged):
    """What an interrupted run leaves behind, made directly: files touched after the processes started."""
    lb = lab.topology.lb_hosts[0]
    app_host = lab.topology.app_hosts[0]
    instance = lab.topology.instances_on(app_host)[0]
    version = ["-e", f"wt_app_version={whoami(f'http://{instance.connect_address}:{instance.port}')['version']}"]
    pids_before = instance_pids(lab)
    worker = lab.ssh(lb, "pgrep -n -x haproxy").strip()
    lab.ssh(lb, "touch /etc/haproxy/haproxy.cfg")
    lab.ssh(app_host, f"touch /etc/wtstack/wt/instances/{instance.port}.env")
    first = lab.playbook("site.yml", "--limit", f"{lb},{app_host}", *version)
    assert first.returncode == 0, first.output[-4000:]
    assert first.recap()[lb]["changed"] > 0 and first.recap()[app_host]["changed"] > 0, first.recap()
    assert lab.ssh(lb, "pgrep -n -x haproxy").strip() != worker, "HAProxy was not reloaded"
    pids_after = instance_pids(lab)
    assert pids_after.pop(instance.server_name) != pids_before.pop(instance.server_name), "instance not restarted"
    assert pids_after == pids_before, "an instance whose files did not change restarted"
    second = lab.playbook("site.yml", "--limit", f"{lb},{app_host}", *version)
    assert {counts["changed"] for counts in second.recap().values()} == {0}, second.recap()

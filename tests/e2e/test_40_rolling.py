"""Rolling restart and rolling upgrade of the whole fleet under load: zero failed requests.

40 live sessions, spread over every instance, each send a request every 200 ms through both
load balancers in turn while the playbook rolls every instance, in batches (the role's default
rolling_max_unavailable, 25%: a canary, then three at a time). A session may change its id
only while its own instance is in maintenance on a load balancer (HAProxy's own log says
when), i.e. only the sessions of the instance being restarted move; all others keep theirs.
"""

import re
import time

from fleet_state import instance_pids, maintenance_windows
from load import SessionLoad
from wt_http import whoami

SESSIONS = 40
INTERVAL = 0.2
DRAIN_TIMEOUT = 3  # the load never lets a session go quiet, so draining always runs to this bound
QUIET = 2


def start_seconds(lab, instance):
    """How long one instance takes from restart to answering /health, timed on its host."""
    script = (f"s=$(date +%s%N); systemctl restart {instance.unit_name}; "
              f"until curl -sf -o /dev/null http://{instance.connect_address}:{instance.port}/health; "
              "do sleep 0.05; done; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))")
    return int(lab.ssh(instance.host, script).split()[-1]) / 1000


def check_roll(lab, playbook, *args):
    prefixes = [instance.prefix for instance in lab.topology.instances]
    by_prefix = {instance.prefix: instance for instance in lab.topology.instances}
    pids_before = instance_pids(lab)
    since = time.time()
    load = SessionLoad(lab.lb_urls, prefixes, sessions=SESSIONS, interval=INTERVAL, on_stall=lab.snapshot_stall).start()
    time.sleep(2)
    run = lab.playbook(playbook, "-e", f"rolling_restart_drain_timeout={DRAIN_TIMEOUT}",
                       "-e", f"rolling_restart_quiet={QUIET}", *args)
    time.sleep(2)
    load.stop()
    assert run.returncode == 0, run.output[-6000:]

    print(f"\n{playbook}: {load.summary()} during a {run.seconds:.0f}s roll")
    if load.slow:
        print(f"slow requests (start, balancer, seconds): {load.slow[:10]}")
    load.assert_no_failed_request(lab)
    assert load.requests > SESSIONS * run.seconds / INTERVAL * 0.5, "the load generator fell behind"

    windows = maintenance_windows(lab, since)
    for move in load.moves:
        server = by_prefix[next(p for p in prefixes if move.old_id.startswith(p))].server_name
        assert any(start - 0.5 <= move.at <= end + 1.0 for start, end in windows.get(server, [])), \
            f"session {move.old_id} moved at {move.at:.1f} outside {server}'s maintenance {windows.get(server)}"

    pids_after = instance_pids(lab)
    assert all(pids_after[name] != pid for name, pid in pids_before.items()), "an instance was not restarted"
    for lb in lab.topology.lb_hosts:
        assert set(lab.server_status(lb).values()) == {"UP"}
    return run, load


def test_rolling_restart_under_load_fails_no_request(lab, converged):
    instances = lab.topology.instances
    start = start_seconds(lab, instances[0])
    lab.wait_for_status(lab.topology.lb_hosts[0], instances[0].server_name, {"UP"})
    run, load = check_roll(lab, "wtstack.fleet.rolling_restart")
    assert str(lab.installed_collections) in run.output
    rise = 2 * 2  # haproxy_check_rise x haproxy_check_interval (role defaults)
    batches = int(re.search(r"^\s*- '\s+batches\s+(\d+)", run.output, re.M).group(1))
    floor = batches * (QUIET + start + rise)
    print(f"roll of {len(instances)} instances in {batches} batches: {run.seconds:.0f}s; floor (quiet {QUIET}s + "
          f"start {start:.1f}s + rise {rise}s per batch) {floor:.0f}s; ratio {run.seconds / floor:.2f}")


def test_rolling_upgrade_moves_every_instance_to_the_new_version(lab, converged):
    run, load = check_roll(lab, "playbooks/rolling_upgrade.yml", "-e", "wt_app_version=2.0")  # from the checkout
    versions = {i.server_name: whoami(f"http://{i.connect_address}:{i.port}")["version"]
                for i in lab.topology.instances}
    assert set(versions.values()) == {"2.0"}, versions
    print(f"every instance now reports version 2.0 ({run.seconds:.0f}s)")


def test_a_failed_roll_stops_out_of_rotation_and_resumes(lab, converged):
    """A roll that cannot finish an instance stops there, leaves it out of rotation, and a re-run resumes."""
    first = lab.topology.instances_on(lab.topology.app_hosts[0])[0]
    only_first = ["--limit", first.host, "-e", f'{{"rolling_restart_servers": ["{first.server_name}"]}}']
    run = lab.playbook("playbooks/rolling_restart.yml", "-e", "rolling_restart_health_path=/no-such-page",
                       "-e", "rolling_restart_start_timeout=3", *only_first)
    assert run.returncode != 0
    assert f"The restart stopped: the canary batch failed: {first.server_name}: not answering /no-such-page" \
        in run.output, run.output[-3000:]
    assert f"Instances left out of rotation (maint), which is safe: {first.server_name}." in run.output
    assert "run the same command again: it resumes" in run.output
    for lb in lab.topology.lb_hosts:
        statuses = lab.server_status(lb)
        assert statuses.pop(first.server_name).startswith("MAINT"), statuses
        assert set(statuses.values()) == {"UP"}, statuses

    resumed = lab.playbook("playbooks/rolling_restart.yml", *only_first)
    assert resumed.returncode == 0, resumed.output[-3000:]
    assert "resuming roll" in resumed.output
    for lb in lab.topology.lb_hosts:
        assert set(lab.server_status(lb).values()) == {"UP"}
    print(f"\nfailed roll stopped at {first.server_name} (left in MAINT); resumed in {resumed.seconds:.0f}s")

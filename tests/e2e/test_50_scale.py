"""Scale-in and scale-out with site.yml under load: zero failed requests.

Scale-in drains the removed instance and takes it out of rotation on every load balancer
before its unit stops; scale-out starts the new instance before any balancer routes to it
(and adds it with a hitless reload).
"""

import time

from fleet_state import inventory_with, maintenance_windows
from load import INTERVAL, SESSIONS, SessionLoad
from wt_http import whoami


def converge_under_load(lab, inventory, prefixes):
    # Converge at the version the fleet runs now (an earlier test may have upgraded it): a version
    # change through site.yml restarts every instance at once, which is rolling_upgrade.yml's job.
    first = lab.topology.instances[0]
    version = whoami(f"http://{first.connect_address}:{first.port}")["version"]
    since = time.time()
    load = SessionLoad(lab.lb_urls, prefixes, sessions=SESSIONS, interval=INTERVAL, on_stall=lab.snapshot_stall).start()
    time.sleep(2)
    run = lab.playbook("site.yml", "-e", "haproxy_retire_drain_timeout=3", "-e", f"wt_app_version={version}",
                       inventory=inventory)
    time.sleep(3)
    load.stop()
    assert run.returncode == 0, run.output[-6000:]
    return run, load, since


def test_scale_in_then_out_fails_no_request(lab, converged, tmp_path):
    app1 = lab.topology.app_hosts[0]
    count = len(lab.topology.instances_on(app1))
    removed = lab.topology.instances_on(app1)[-1]

    everyone = [instance.prefix for instance in lab.topology.instances]
    run, load, since = converge_under_load(lab, inventory_with(lab, tmp_path, app1, count - 1), everyone)
    print(f"\nscale-in of {removed.server_name}: {load.summary()} during {run.seconds:.0f}s")
    load.assert_no_failed_request(lab)
    windows = maintenance_windows(lab, since)
    assert windows.get(removed.server_name), "the removed instance never went into maintenance"
    for move in load.moves:
        assert move.old_id.startswith(removed.prefix), f"{move.old_id} moved, but only {removed.prefix} left"
        assert any(start - 0.5 <= move.at <= end + 1.0 for start, end in windows[removed.server_name])
    assert lab.ssh(app1, f"systemctl is-active {removed.unit_name}", check=False).strip() == "inactive"
    for lb in lab.topology.lb_hosts:
        assert removed.server_name not in lab.server_status(lb)

    remaining = [prefix for prefix in everyone if prefix != removed.prefix]
    run, load, dummy = converge_under_load(lab, lab.inventory_path, remaining)
    print(f"scale-out back to {count} on {app1}: {load.summary()} during {run.seconds:.0f}s")
    load.assert_no_failed_request(lab)
    assert load.moves == [], "adding an instance moved sessions"
    for lb in lab.topology.lb_hosts:
        lab.wait_for_status(lb, removed.server_name, {"UP"}, timeout=30)

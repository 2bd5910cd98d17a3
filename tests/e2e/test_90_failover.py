"""An instance goes down: its sessions are answered elsewhere; it comes back UP when started."""

from wt_http import new_session, session_page


def session_on(lab, base_url, instance, attempts=200):
    for dummy in range(attempts):
        session_id = new_session(base_url)
        if session_id.startswith(instance.prefix):
            return session_id
    raise AssertionError(f"no new session landed on {instance.server_name} in {attempts} tries")


def test_stopped_instance_fails_over_and_comes_back(lab, converged):
    instance = lab.topology.instances_on(lab.topology.app_hosts[0])[0]
    sessions = {url: session_on(lab, url, instance) for url in lab.lb_urls}
    lab.ssh(instance.host, f"systemctl stop {instance.unit_name}")
    try:
        for lb in lab.topology.lb_hosts:
            lab.wait_for_status(lb, instance.server_name, {"DOWN"}, timeout=30)
        for url, session_id in sessions.items():
            page = session_page(url, session_id)
            assert page.status == 200
            assert page.prefix != instance.prefix and page.session_id != session_id, page
            assert page.session_id.startswith(page.prefix), page
    finally:
        lab.ssh(instance.host, f"systemctl start {instance.unit_name}")
    for lb in lab.topology.lb_hosts:
        lab.wait_for_status(lb, instance.server_name, {"UP"}, timeout=60)
    # Back in rotation: new sessions reach it again.
    session_on(lab, lab.lb_urls[0], instance)

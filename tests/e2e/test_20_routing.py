"""Routing through every load balancer: health, affinity, spreading, the wt1/wt10 trap."""

import collections
import re
import time

from wt_http import new_session, session_page, whoami

SESSIONS_PER_BALANCER = 50


def test_runtime_api_reports_every_instance_up(lab, converged):
    expected = {instance.server_name for instance in lab.topology.instances}
    for lb in lab.topology.lb_hosts:
        for server in expected:
            lab.wait_for_status(lb, server, {"UP"}, timeout=30)
        assert set(lab.server_status(lb)) == expected


def test_sessions_stick_to_the_instance_their_prefix_names(lab, converged):
    by_prefix = {instance.prefix: instance for instance in lab.topology.instances}
    placed = collections.Counter()
    for base_url in lab.lb_urls:
        for dummy in range(SESSIONS_PER_BALANCER):
            session_id = new_session(base_url)
            owner = [prefix for prefix in by_prefix if session_id.startswith(prefix)]
            assert len(owner) == 1, f"{session_id} matches prefixes {owner}"
            instance = by_prefix[owner[0]]
            placed[instance.server_name] += 1
            # Follow-ups through every balancer: the instance itself says who it is and which session it rendered.
            for follow_up_url in lab.lb_urls:
                page = session_page(follow_up_url, session_id)
                assert page.status == 200
                assert page.session_id == session_id, f"{session_id} via {follow_up_url} got {page}"
                assert page.prefix == instance.prefix
                assert page.host == instance.host and page.port == str(instance.port)
                assert whoami(follow_up_url, session_id)["prefix"] == instance.prefix
    print(f"\nnew sessions per instance: {dict(sorted(placed.items()))}")
    # Round robin: every instance got new sessions, none much more than its share.
    assert set(placed) == {instance.server_name for instance in lab.topology.instances}
    share = SESSIONS_PER_BALANCER * len(lab.lb_urls) / len(lab.topology.instances)
    assert max(placed.values()) <= 2 * share + 1, placed


def test_no_session_reaches_an_instance_whose_prefix_merely_begins_its_own(lab, converged):
    """wt1- must never catch wt10-'s sessions (the seed's url_sub trap), nor the reverse."""
    trap = {i.prefix: i for i in lab.topology.instances if i.prefix.startswith("wt1")}
    assert len(lab.topology.instances) > 10 and {"wt1-", "wt10-", "wt11-", "wt12-"} <= set(trap), \
        "the e2e fleet must hold more than ten instances, wt1- and wt10- among them"
    seen = collections.defaultdict(set)
    for base_url in lab.lb_urls:
        for dummy in range(60):
            session_id = new_session(base_url)
            prefix = next((p for p in trap if session_id.startswith(p)), None)
            if prefix is None:
                continue
            page = session_page(base_url, session_id)
            seen[prefix].add(page.prefix)
            assert page.session_id == session_id and page.prefix == prefix, (session_id, page)
    assert set(seen) == set(trap), f"not every wt1* instance got a session: {dict(seen)}"


def test_health_checks_do_not_create_sessions(lab, converged):
    instance = lab.topology.instances[0]
    direct = f"http://{instance.connect_address}:{instance.port}"
    before = whoami(direct)["sessions_created"]
    lab.wait_for_status(lab.topology.lb_hosts[0], instance.server_name, {"UP"})
    time.sleep(5)  # at least two health-check intervals from every balancer
    assert whoami(direct)["sessions_created"] == before


def test_websocket_for_a_live_session_reaches_its_instance(lab, converged):
    """Wt accepts a WebSocket only on the instance holding the session (others answer 403)."""
    import websocket

    for base_url in lab.lb_urls:
        session_id = new_session(base_url)
        session_page(base_url, session_id)  # the session is live on its instance
        url = base_url.replace("http://", "ws://", 1) + f"/?wtd={session_id}&request=ws"
        connection = websocket.create_connection(url, timeout=10)
        try:
            assert connection.getstatus() == 101
            first_frame = connection.recv()
            print(f"\n{url}: 101, first frame {first_frame[:60]!r}")
            assert first_frame  # Wt speaks first on a new WebSocket
        finally:
            connection.close()

        # The same request for a session no instance holds is refused by Wt itself.
        stranger = base_url.replace("http://", "ws://", 1) + f"/?wtd={session_id[:-4]}zzzz&request=ws"
        try:
            websocket.create_connection(stranger, timeout=10).close()
            raise AssertionError("a WebSocket for an unknown session was accepted")
        except websocket.WebSocketBadStatusException as error:
            assert error.status_code in (403, 404), error


def admin_masks(lab, lb):
    """{(backend, server): srv_admin_state} of every server, read straight from HAProxy."""
    lines = lab.runtime_api(lb, "show servers state").splitlines()
    header = lines[1].lstrip("# ").split()
    rows = [dict(zip(header, line.split())) for line in lines[2:] if line.strip()]
    return {(row["be_name"], row["srv_name"]): int(row["srv_admin_state"]) for row in rows}


def session_on(lab, instance, base_url):
    for _ in range(10 * len(lab.topology.instances)):
        session_id = new_session(base_url)
        if session_id.startswith(instance.prefix):
            return session_id
    raise AssertionError(f"no new session landed on {instance.server_name}")


def test_drain_and_maint_survive_a_reload_on_every_balancer(lab, converged):
    """States set with wtstack.fleet.haproxy_server live on two objects per instance (drain on the
    placement server in backend wt, maint on the instance's own server); a `systemctl reload
    haproxy` keeps both (server-state file), and routing still follows them."""
    first, second = (lab.topology.instances_on(host)[0] for host in lab.topology.app_hosts[:2])
    base_url = lab.lb_urls[0]
    sessions = {instance.server_name: session_on(lab, instance, base_url) for instance in (first, second)}
    try:
        for instance, state in ((first, "drain"), (second, "maint")):
            run = lab.ansible(lab.topology.haproxy_group, "wtstack.fleet.haproxy_server",
                              f"server={instance.server_name} state={state}")
            assert run.returncode == 0, run.output[-3000:]
        workers = {lb: lab.ssh(lb, "pgrep -n -x haproxy").strip() for lb in lab.topology.lb_hosts}
        for lb in lab.topology.lb_hosts:
            lab.ssh(lb, "systemctl reload haproxy")
        for lb in lab.topology.lb_hosts:
            deadline = time.monotonic() + 30
            while lab.ssh(lb, "pgrep -n -x haproxy").strip() == workers[lb]:
                assert time.monotonic() < deadline, f"{lb}: HAProxy was not reloaded"
                time.sleep(0.5)
            lab.wait_for_status(lb, first.server_name, {"DRAIN"}, timeout=30)
            masks = admin_masks(lab, lb)
            assert masks[("wt", first.server_name)] == 0x08, masks  # FDRAIN on the placement server
            assert masks[(first.backend_name, first.server_name)] == 0  # its own server keeps serving its sessions
            assert masks[(second.backend_name, second.server_name)] == 0x01  # FMAINT on its own server
            assert masks[("wt", second.server_name)] & 0x02  # inherited by its placement server
        for url in lab.lb_urls:
            kept = session_page(url, sessions[first.server_name])
            assert (kept.session_id, kept.prefix) == (sessions[first.server_name], first.prefix), kept
            moved = session_page(url, sessions[second.server_name])
            assert moved.status == 200 and moved.prefix != second.prefix, moved
            for _ in range(2 * len(lab.topology.instances)):
                assert not new_session(url).startswith((first.prefix, second.prefix))
    finally:
        for instance in (first, second):
            lab.ansible(lab.topology.haproxy_group, "wtstack.fleet.haproxy_server",
                        f"server={instance.server_name} state=ready wait=up timeout=30")
    print(f"\n{first.server_name} drained and {second.server_name} in maint kept both across a reload of "
          f"{', '.join(lab.topology.lb_hosts)}")


def test_status_shows_one_row_per_instance_on_every_balancer(lab, converged):
    """playbooks/status.yml: each instance once, whatever HAProxy objects route it, with its state on
    every balancer; a drained instance shows DRAIN."""
    drained = lab.topology.instances[-1]
    run = lab.ansible(lab.topology.haproxy_group, "wtstack.fleet.haproxy_server",
                      f"server={drained.server_name} state=drain")
    assert run.returncode == 0, run.output[-3000:]
    try:
        status = lab.playbook("playbooks/status.yml")
    finally:
        lab.ansible(lab.topology.haproxy_group, "wtstack.fleet.haproxy_server",
                    f"server={drained.server_name} state=ready")
    assert status.returncode == 0, status.output[-3000:]
    rows = {}
    for line in re.findall(r"^\s*- '(.*)'$", status.output, re.M):  # the table, as debug prints it
        fields = line.split()
        if fields and fields[0] in {i.server_name for i in lab.topology.instances}:
            assert fields[0] not in rows, f"{fields[0]} listed twice:\n{status.output[-3000:]}"
            rows[fields[0]] = fields
    assert set(rows) == {i.server_name for i in lab.topology.instances}, status.output[-3000:]
    assert "wt." not in " ".join(" ".join(fields) for fields in rows.values())
    for instance in lab.topology.instances:
        states = rows[instance.server_name][3::2]  # INSTANCE HOST PREFIX then STATE SESS per balancer
        expected = "DRAIN" if instance is drained else "UP"
        assert states == [expected] * len(lab.topology.lb_hosts), rows[instance.server_name]

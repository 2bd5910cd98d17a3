"""Routing through every load balancer: health, affinity, spreading, the wt1/wt10 trap."""

import collections
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

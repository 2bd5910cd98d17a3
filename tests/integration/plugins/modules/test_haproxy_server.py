"""haproxy_server against a real HAProxy: idempotence, check and diff mode, waiting, failures."""

import threading
import time

import pytest
from ansible_collections.wtstack.fleet.plugins.modules import haproxy_server


def admin_states(lab):
    """(srv_admin_state, srv_uweight) per (backend, server), read straight from HAProxy."""
    lines = lab.command("show servers state").splitlines()
    header = lines[1].lstrip("# ").split()
    rows = [dict(zip(header, line.split())) for line in lines[2:] if line]
    return {(row["be_name"], row["srv_name"]): (int(row["srv_admin_state"]), int(row["srv_uweight"])) for row in rows}


@pytest.fixture
def server(haproxy_lab, run_module):
    def run(check_mode=False, diff=False, **args):
        return run_module(haproxy_server, {"socket": haproxy_lab.admin_socket, **args}, check_mode, diff)

    return run


def test_drain_then_nothing_to_do(haproxy_lab, server):
    result = server(server="app1-9090", state="drain")
    assert result["changed"] is True
    # Only where new sessions are placed: the instance's own backend keeps serving its sessions.
    assert result["commands"] == ["set server wt/app1-9090 state drain"]
    assert admin_states(haproxy_lab)[("wt.app1-9090", "app1-9090")] == (0, 1)
    assert (result["before"]["admin_state"], result["before"]["status"]) == ("ready", "UP")
    assert (result["after"]["admin_state"], result["after"]["status"], result["after"]["admin_flags"]) == \
        ("drain", "DRAIN", ["FDRAIN"])
    assert "wait" not in result

    again = server(server="app1-9090", state="drain")
    assert (again["changed"], again["commands"]) == (False, [])


def test_check_mode_reports_and_changes_nothing(haproxy_lab, server):
    before = admin_states(haproxy_lab)
    result = server(check_mode=True, diff=True, server="app2-9090", state="maint", weight="50%", wait="drained")
    assert result["changed"] is True
    assert result["commands"] == ["set server wt/app2-9090 weight 25", "set server wt.app2-9090/app2-9090 state maint"]
    assert result["diff"]["before"] == {"admin_state": "ready", "weight": 50}
    assert result["diff"]["after"] == {"admin_state": "maint", "weight": 25}
    assert result["after"] == result["before"]
    assert "wait" not in result
    assert admin_states(haproxy_lab) == before


def test_diff_and_relative_weight(haproxy_lab, server):
    result = server(diff=True, server="app2-9090", weight="150%")
    assert result["commands"] == ["set server wt/app2-9090 weight 75"]
    assert (result["diff"]["before"]["weight"], result["diff"]["after"]["weight"]) == (50, 75)
    assert result["after"]["weight"] == 75
    assert server(server="app2-9090", weight="75")["changed"] is False


def test_wait_drained_outlasts_a_session(haproxy_lab, server):
    holder = haproxy_lab.hold_session("app1-9090", 2)
    time.sleep(0.3)
    started = time.monotonic()
    result = server(server="app1-9090", state="drain", wait="drained", quiet=1, interval=0.2)
    holder.join()
    assert result["changed"] is True
    assert result["wait"]["reached"] is True
    assert result["wait"]["polls"] > 1
    assert 1.0 <= result["wait"]["elapsed"] <= time.monotonic() - started
    assert result["wait"]["reason"].startswith("no active or queued session, last one assigned")
    assert (result["after"]["scur"], result["after"]["admin_state"]) == (0, "drain")


def test_wait_drained_times_out_with_what_it_saw(haproxy_lab, server):
    holder = haproxy_lab.hold_session("app1-9090", 3)
    time.sleep(0.3)
    result = server(server="app1-9090", state="maint", wait="drained", timeout=1, interval=0.3)
    holder.join()
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"] == "wt/app1-9090 is not drained: timed out after 1 s: 1 session(s) active and 0 queued"
    assert (result["wait"]["reached"], result["after"]["scur"], result["after"]["admin_state"]) == (False, 1, "maint")


def test_wait_drained_refuses_a_server_that_stays_ready(haproxy_lab, server):
    before = admin_states(haproxy_lab)
    result = server(server="app1-9090", weight="10", wait="drained")
    assert result["failed"] is True and result["changed"] is False
    assert "keeps receiving new sessions, so it can never drain" in result["msg"]
    assert admin_states(haproxy_lab) == before


def test_maint_then_back_to_drain_then_ready(haproxy_lab, server):
    server(server="app1-9090", state="drain")
    maint = server(server="app1-9090", state="maint")
    assert maint["commands"] == ["set server wt.app1-9090/app1-9090 state maint"]
    assert (maint["after"]["admin_state"], maint["after"]["status"]) == ("maint", "MAINT")
    assert admin_states(haproxy_lab)[("wt", "app1-9090")][0] == 0x02 | 0x08  # inherited maint, its own drain
    drain = server(server="app1-9090", state="drain", wait="up", timeout=10, interval=0.1)
    assert drain["commands"] == ["set server wt.app1-9090/app1-9090 state ready"]
    assert (drain["after"]["admin_state"], drain["after"]["status"]) == ("drain", "DRAIN")
    ready = server(server="app1-9090", state="ready")
    assert ready["commands"] == ["set server wt/app1-9090 state ready"]


def test_wait_up_needs_a_passing_check_after_maint(haproxy_lab, server):
    server(server="app1-9090", state="maint")
    result = server(server="app1-9090", state="ready", wait="up", timeout=10, interval=0.1)
    assert result["changed"] is True
    assert result["wait"]["reached"] is True
    assert result["wait"]["polls"] > 1  # right after maint HAProxy says "UP 1/2" before any check ran
    assert (result["after"]["status"], result["after"]["check_health"]) == ("UP", 3)


def test_wait_up_while_still_draining(haproxy_lab, server):
    result = server(server="app1-9091", state="drain", wait="up", timeout=5, interval=0.1)
    assert result["wait"]["reached"] is True
    assert result["wait"]["reason"] == "status DRAIN, last check L7OK"


def test_wait_up_reports_the_failing_check(haproxy_lab, server):
    result = server(server="app2-9090", state="ready", wait="up", timeout=1, interval=0.3)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("wt/app2-9090 is not up: timed out after 1 s: status DOWN, last check L4CON")


def test_wait_up_refuses_maint(haproxy_lab, server):
    result = server(server="app1-9090", state="maint", wait="up")
    assert result["failed"] is True and result["changed"] is False
    assert "runs no health check" in result["msg"]
    assert admin_states(haproxy_lab)[("wt", "app1-9090")] == (0, 100)


def test_enable_a_server_disabled_in_the_configuration(haproxy_lab, server):
    result = server(server="app2-9091", state="ready", wait="up", timeout=10, interval=0.1)
    assert result["before"]["admin_flags"] == ["FMAINT", "CMAINT"]
    assert (result["after"]["admin_state"], result["after"]["admin_flags"]) == ("ready", ["CMAINT"])
    assert server(server="app2-9091", state="ready")["changed"] is False


def test_over_tcp(haproxy_lab, run_module):
    result = run_module(haproxy_server, {"socket": haproxy_lab.tcp_address, "server": "app1-9091", "state": "drain"})
    assert result["changed"] is True and result["after"]["admin_state"] == "drain"


@pytest.mark.parametrize("args, message", [
    ({"server": "app9-9090", "state": "drain"},
     "backend 'wt' on {socket} has no server 'app9-9090'"),
    ({"backend": "web", "server": "app1-9090", "state": "drain"},
     "HAProxy on {socket} has no backend 'web'; its backends are: static, wt"),
    ({"server": "app1-9090", "weight": "300"}, "weight 300 is above HAProxy's maximum of 256"),
    ({"server": "app1-9090", "weight": "half"}, "weight must be a number 0..256 or a percentage like 50%, not 'half'"),
    ({"backend": "static", "server": "solo", "weight": "5"},
     "HAProxy rejected `set server static/solo weight 5` on {socket}: Backend is using a static LB algorithm and "
     "only accepts weights '0%' and '100%'."),
    ({"server": "app1;shutdown sessions server wt/app1-9090", "state": "drain"},
     "server name 'app1;shutdown sessions server wt/app1-9090' is not a HAProxy identifier"),
])
def test_failures_say_what_is_wrong(haproxy_lab, server, args, message):
    result = server(**args)
    assert result["failed"] is True and result["changed"] is False
    assert message.format(socket=haproxy_lab.admin_socket) in result["msg"]


def test_missing_socket(tmp_path, run_module):
    result = run_module(haproxy_server, {"socket": str(tmp_path / "admin.sock"), "server": "app1-9090",
                                         "state": "drain"})
    assert result["failed"] is True
    assert result["msg"].startswith(f"HAProxy runtime socket {tmp_path / 'admin.sock'} does not exist")


def test_socket_without_admin_level(haproxy_lab, run_module):
    result = run_module(haproxy_server, {"socket": haproxy_lab.user_socket, "server": "app1-9090", "state": "drain"})
    assert result["failed"] is True and result["changed"] is False
    assert "Permission denied; the socket's `stats socket` line needs `level admin`" in result["msg"]
    assert admin_states(haproxy_lab)[("wt", "app1-9090")] == (0, 100)


def test_nothing_listening_on_tcp(run_module):
    result = run_module(haproxy_server, {"socket": "tcp:127.0.0.1:1", "server": "app1-9090", "state": "drain"})
    assert result["failed"] is True
    assert "nothing accepts connections on HAProxy runtime socket tcp:127.0.0.1:1" in result["msg"]


# --- several servers at once ---------------------------------------------------------------

def test_servers_change_together_in_one_exchange_and_are_idempotent(haproxy_lab, server):
    result = server(servers=["app1-9090", "app1-9091"], state="drain")
    assert result["changed"] is True and "server" not in result
    assert result["commands"] == ["set server wt/app1-9090 state drain", "set server wt/app1-9091 state drain"]
    assert [(entry["server"], entry["after"]["admin_state"]) for entry in result["servers"]] == \
        [("app1-9090", "drain"), ("app1-9091", "drain")]
    again = server(servers=["app1-9090", "app1-9091"], state="drain")
    assert again["changed"] is False and again["commands"] == []


def test_servers_in_check_and_diff_mode(haproxy_lab, server):
    before = admin_states(haproxy_lab)
    result = server(check_mode=True, diff=True, servers=["app1-9090", "app1-9091"], state="maint",
                    drain_wait="quiet", wait="quiet")
    assert result["changed"] is True
    assert result["commands"] == [
        "set server wt/app1-9090 state drain", "set server wt.app1-9090/app1-9090 state maint",
        "set server wt/app1-9091 state drain", "set server wt.app1-9091/app1-9091 state maint"]
    assert [diff["after"]["admin_state"] for diff in result["diff"]] == ["maint", "maint"]
    assert admin_states(haproxy_lab) == before


def test_servers_that_do_not_exist_are_all_named(haproxy_lab, server):
    result = server(servers=["app1-9090", "app7-9090", "app8-9090"], state="drain")
    assert result["failed"] is True and result["changed"] is False
    assert "has no server 'app7-9090', 'app8-9090'" in result["msg"]


def test_an_empty_list_does_nothing(haproxy_lab, server):
    result = server(servers=[], state="maint", wait="up")
    assert (result["changed"], result["servers"], result.get("failed")) == (False, [], None)


def test_server_and_servers_are_exclusive_and_drain_wait_needs_maint(haproxy_lab, server):
    assert "mutually exclusive" in server(server="app1-9090", servers=["app1-9091"])["msg"]
    assert "one of the following is required" in server(state="drain")["msg"]
    result = server(servers=["app1-9090"], state="drain", drain_wait="quiet")
    assert result["failed"] is True and "it needs state=maint" in result["msg"]


def test_drain_wait_quiet_lets_a_request_finish_but_not_a_websocket(haproxy_lab, server):
    """A batch going out of rotation: app1-9090 has a WebSocket and a request in flight, app1-9091 a
    WebSocket. The request is waited for; the WebSockets are not, and are reported."""
    tunnels = [haproxy_lab.open_websocket("app1-9090"), haproxy_lab.open_websocket("app1-9091")]
    request = haproxy_lab.hold_session("app1-9090", 1.5)
    time.sleep(0.3)
    started = time.monotonic()
    try:
        result = server(servers=["app1-9090", "app1-9091"], state="maint", drain_wait="quiet", drain_timeout=10,
                        drain_quiet=0, wait="quiet", quiet=0, timeout=5, interval=0.1)
    finally:
        for tunnel in tunnels:
            tunnel.close()
        request.join()
    assert result.get("failed") is None, result["msg"]
    busy, idle = result["servers"]
    assert busy["drain"]["reached"] is True and busy["drain"]["elapsed"] >= 1.0
    assert busy["drain"]["reason"].endswith("1 WebSocket(s) open, which its restart will close")
    assert idle["drain"]["elapsed"] < 1.0
    assert (busy["after"]["admin_state"], busy["after"]["scur"]) == ("maint", 1)
    assert time.monotonic() - started < 5


def test_drain_wait_drained_waits_for_websockets_until_its_deadline_then_takes_them_out(haproxy_lab, server):
    tunnel = haproxy_lab.open_websocket("app1-9090")
    try:
        result = server(servers=["app1-9090"], state="maint", drain_wait="drained", drain_timeout=1, drain_quiet=0,
                        interval=0.2)
    finally:
        tunnel.close()
    entry = result["servers"][0]
    assert result.get("failed") is None and result["changed"] is True
    assert entry["drain"]["reached"] is False
    assert entry["drain"]["reason"] == "timed out after 1 s: 1 session(s) active and 0 queued"
    assert entry["after"]["admin_state"] == "maint" and entry["after"]["scur"] == 1


def test_drain_wait_drained_goes_on_as_soon_as_the_last_websocket_closes(haproxy_lab, server):
    tunnel = haproxy_lab.open_websocket("app1-9090")
    closer = threading.Timer(1.0, tunnel.close)
    closer.start()
    result = server(servers=["app1-9090"], state="maint", drain_wait="drained", drain_timeout=10, drain_quiet=0,
                    interval=0.1)
    drain = result["servers"][0]["drain"]
    assert drain["reached"] is True and 0.9 <= drain["elapsed"] < 2.0


def test_a_failed_wait_reports_every_server_and_names_the_failed_ones(haproxy_lab, server):
    result = server(servers=["app1-9090", "app2-9090"], state="drain", wait="up", timeout=1, interval=0.2)
    assert result["failed"] is True and result["changed"] is True
    assert result["failed_servers"] == ["app2-9090"]
    assert result["msg"].startswith("wt/app2-9090 is not up: timed out after 1 s: status DOWN")
    assert [entry["wait"]["reached"] for entry in result["servers"]] == [True, False]


def test_hold_fails_as_soon_as_a_server_stops_being_up(haproxy_lab, server):
    def break_it():
        haproxy_lab.backends["a"].healthy = False

    breaker = threading.Timer(0.6, break_it)
    breaker.start()
    result = server(servers=["app1-9090", "app1-9091"], wait="up", hold=4, timeout=10, interval=0.1)
    breaker.join()
    assert result["failed_servers"] == ["app1-9090"], [entry["wait"] for entry in result["servers"]]
    failed, steady = result["servers"]
    assert failed["wait"]["reason"].startswith("was up for ")
    assert failed["wait"]["elapsed"] < 3.5
    assert steady["wait"]["reached"] is True and steady["wait"]["reason"].endswith(", for 4 s")


def test_servers_that_come_up_go_back_in_rotation_and_the_others_stay_drained(haproxy_lab, server):
    server(servers=["app1-9090", "app2-9090"], state="maint")
    result = server(servers=["app1-9090", "app2-9090"], state="drain", wait="up", reached_state="ready",
                    timeout=3, interval=0.2)
    assert result["failed"] is True and result["failed_servers"] == ["app2-9090"]
    up, down = result["servers"]
    assert up["commands"][-1] == "set server wt/app1-9090 state ready"
    assert (up["after"]["admin_state"], down["after"]["admin_state"]) == ("ready", "drain")
    assert admin_states(haproxy_lab)[("wt", "app1-9090")][0] == 0

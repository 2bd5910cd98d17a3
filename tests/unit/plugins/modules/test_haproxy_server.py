"""haproxy_server against a real HAProxy: idempotence, check and diff mode, waiting, failures."""

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
     "backend 'wt' on {socket} has no server 'app9-9090'; its servers are: app1-9090, app1-9091, app2-9090, app2-9091"),
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

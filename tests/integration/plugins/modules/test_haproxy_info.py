"""haproxy_info against a real HAProxy."""

import pytest
from ansible_collections.wtstack.fleet.plugins.modules import haproxy_info


@pytest.fixture
def info(haproxy_lab, run_module):
    def run(check_mode=False, **args):
        return run_module(haproxy_info, {"socket": haproxy_lab.admin_socket, **args}, check_mode)

    return run


def test_every_server(haproxy_lab, info):
    result = info()
    assert result["changed"] is False
    assert result["haproxy"]["version"] == haproxy_lab.version()
    assert result["haproxy"]["pid"] == haproxy_lab.process.pid
    assert [(s["backend"], s["server"], s["admin_state"], s["status"]) for s in result["servers"]] == [
        ("wt", "app1-9090", "ready", "UP"), ("wt", "app1-9091", "ready", "UP"), ("wt", "app2-9090", "ready", "DOWN"),
        ("wt", "app2-9091", "maint", "MAINT"), ("static", "solo", "ready", "no check")]
    first = result["servers"][0]
    assert first["address"] == f"127.0.0.1:{haproxy_lab.backends['a'].port}"
    assert set(first) >= {"weight", "initial_weight", "scur", "qcur", "stot", "lastsess", "check_status",
                          "operational_state", "admin_flags"}


def test_one_backend_one_server_and_check_mode(info):
    assert [s["server"] for s in info(backend="static")["servers"]] == ["solo"]
    assert [s["server"] for s in info(backend="wt", server="app2-9090")["servers"]] == ["app2-9090"]
    found = info(check_mode=True, server="solo")
    assert [(s["backend"], s["server"]) for s in found["servers"]] == [("static", "solo")]


def test_read_only_socket_is_enough(haproxy_lab, run_module):
    result = run_module(haproxy_info, {"socket": haproxy_lab.user_socket, "backend": "wt"})
    assert len(result["servers"]) == 4


@pytest.mark.parametrize("args, message", [
    ({"backend": "web"}, "has no backend 'web'; its backends are: static, wt"),
    ({"backend": "wt", "server": "solo"}, "backend 'wt' on {socket} has no server 'solo'"),
    ({"server": "app9-9090"}, "no backend on {socket} has a server named 'app9-9090'"),
])
def test_unknown_names_fail(haproxy_lab, info, args, message):
    result = info(**args)
    assert result["failed"] is True
    assert message.format(socket=haproxy_lab.admin_socket) in result["msg"]


def test_raw_lists_every_haproxy_server(info):
    servers = info(raw=True)["servers"]
    assert len(servers) == 17  # 4 own backends x (instance, ws, relay), 4 placement servers, static/solo
    assert [(s["backend"], s["status"]) for s in servers if s["server"] == "app1-9090"] == [
        ("wt.app1-9090", "UP"), ("wt", "UP")]
    assert [s["backend"] for s in info(raw=True, server="relay")["servers"]] == [
        "wt.app1-9090", "wt.app1-9091", "wt.app2-9090", "wt.app2-9091"]
    assert [(s["backend"], s["status"]) for s in info(raw=True, server="ws")["servers"]] == [
        ("wt.app1-9090", "UP"), ("wt.app1-9091", "UP"), ("wt.app2-9090", "DOWN"),
        ("wt.app2-9091", "MAINT (via wt.app2-9091/app2-9091)")]


def test_an_instance_row_names_its_own_backend(info):
    row = info(backend="wt", server="app1-9091")["servers"][0]
    assert (row["own_backend"], row["tracks"]) == ("wt.app1-9091", "wt.app1-9091/app1-9091")
    own = info(backend="wt.app1-9091")["servers"]
    assert [(s["server"], s["own_backend"]) for s in own] == [("app1-9091", None), ("ws", None), ("relay", None)]


def test_a_websocket_goes_through_the_ws_lane_and_counts_in_its_instance_row(haproxy_lab, info):
    """An upgrade takes the own backend's "ws" server (a connection of its own, never an idle one);
    the instance's row counts it, and the instance's own server does not see it."""
    tunnel = haproxy_lab.open_websocket("app1-9091")
    try:
        raw = {(s["backend"], s["server"]): s["scur"] for s in info(raw=True, backend="wt.app1-9091")["servers"]}
        row = info(backend="wt", server="app1-9091")["servers"][0]
    finally:
        tunnel.close()
    assert raw == {("wt.app1-9091", "app1-9091"): 0, ("wt.app1-9091", "ws"): 1, ("wt.app1-9091", "relay"): 0}
    assert row["scur"] == 1


def test_several_servers_in_the_order_asked(info):
    rows = info(backend="wt", servers=["app2-9091", "app1-9090"])["servers"]
    assert [(s["server"], s["admin_state"], s["own_backend"]) for s in rows] == [
        ("app2-9091", "maint", "wt.app2-9091"), ("app1-9090", "ready", "wt.app1-9090")]
    assert [s["backend"] for s in info(servers=["solo", "app1-9090"])["servers"]] == ["wt", "static"]
    result = info(servers=["app1-9090", "nope"])
    assert result["failed"] is True and result["msg"].endswith("has a server named 'nope'")
    assert info(server="app1-9090", servers=["app1-9090"])["failed"] is True

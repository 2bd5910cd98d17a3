"""Parsers against replies captured from real HAProxy 2.6 and 3.0."""

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import errors, parsing, servers, waiting
from haproxy_replies import INSTANCES, VERSIONS, views


def test_fixtures_cover_both_supported_versions():
    assert VERSIONS == ["2.6", "3.0"]


def test_show_stat_is_read_by_header_names_whatever_the_column_count(captured):
    header = captured("show_stat.txt").splitlines()[0].split(",")
    assert len(header) == {"2.6": 129, "3.0": 206}[captured.version]
    rows = parsing.parse_show_stat(captured("show_stat.txt"))
    own = [(f"wt.{name}", server) for name in INSTANCES for server in (name, "ws", "relay")]
    assert [(row["pxname"], row["svname"]) for row in rows] == own + [("wt", name) for name in INSTANCES] + \
        [("static", "solo")]
    assert {row["svname"]: row["status"] for row in rows if row["pxname"] == "wt"} == {
        "app1-9090": "UP", "app1-9091": "UP", "app2-9090": "DOWN",
        "app2-9091": "MAINT (via wt.app2-9091/app2-9091)"}


def test_server_rows_of_every_proxy(captured):
    rows = parsing.parse_show_stat(captured("show_stat_servers.txt"))
    assert len(rows) == 17  # 4 own backends x (instance, ws, relay), 4 placement servers, static/solo
    assert [row["tracked"] for row in rows if row["pxname"] == "wt"] == [f"wt.{name}/{name}" for name in INSTANCES]


def test_show_stat_by_name_picks_the_frontend_of_the_same_name(captured):
    """Why the client never filters `show stat` by name: our frontend and backend are both `wt`."""
    reply = captured("show_stat_wt_is_the_frontend.txt")
    assert reply.startswith("# pxname,") and parsing.parse_show_stat(reply) == []


def test_show_servers_state_records(captured):
    records = parsing.parse_servers_state(captured("show_servers_state.txt"))
    placement = [(r["srv_name"], r["srv_admin_state"]) for r in records if r["be_name"] == "wt"]
    # The placement server of the instance disabled in haproxy.cfg inherits its maintenance (IMAINT).
    assert placement == [("app1-9090", "0"), ("app1-9091", "0"), ("app2-9090", "0"), ("app2-9091", "2")]
    # Its own server is disabled in haproxy.cfg (FMAINT|CMAINT), its ws lane inherits it (IMAINT).
    assert [r["srv_admin_state"] for r in records if r["be_name"] == "wt.app2-9091"] == ["5", "2", "0"]


def test_show_info(captured):
    info = parsing.parse_show_info(captured("show_info.txt"))
    assert info["Version"].startswith(captured.version)
    assert info["Name"] == "HAProxy"


def test_a_reply_that_is_not_the_expected_table_is_an_error():
    with pytest.raises(errors.CommandError, match="unexpected reply to `show stat`"):
        parsing.parse_show_stat("Permission denied\n\n")
    with pytest.raises(errors.CommandError, match="unexpected reply"):
        parsing.parse_servers_state("")


def test_show_sess_all_tells_tunnels_from_requests(captured):
    """Fixture: app1-9090 drained with two WebSockets and a slow request, app1-9091 with a WebSocket.
    The WebSockets went through each instance's ws lane, the request through its own server."""
    counts = parsing.parse_streams(captured("show_sess_all_tunnels.txt"))
    assert counts == {("wt.app1-9090", "app1-9090"): parsing.StreamCounts(requests=1, tunnels=0),
                      ("wt.app1-9090", "ws"): parsing.StreamCounts(requests=0, tunnels=2),
                      ("wt.app1-9091", "ws"): parsing.StreamCounts(requests=0, tunnels=1)}
    assert parsing.parse_streams("") == {}
    with pytest.raises(errors.CommandError, match="unexpected reply to `show sess all`"):
        parsing.parse_streams("Unknown command\n")


def test_an_instances_streams_are_those_of_both_its_servers(captured):
    busy = views(captured, "show_servers_state_tunnels.txt", "show_stat_tunnels.txt")
    counts = parsing.parse_streams(captured("show_sess_all_tunnels.txt"))
    assert busy["app1-9090"].scur == 3
    assert servers.streams_of(busy["app1-9090"], counts) == parsing.StreamCounts(1, 2)
    assert servers.streams_of(busy["app2-9090"], counts) == parsing.StreamCounts(0, 0)
    counts[("wt", "app2-9090")] = parsing.StreamCounts(1, 0)
    assert servers.streams_of(busy["app2-9090"], counts) == parsing.StreamCounts(1, 0)
    streams = {("static", "solo"): parsing.StreamCounts(0, 3)}
    assert servers.streams_of(busy["solo"], streams) == parsing.StreamCounts(0, 3)


def test_quiet_waits_for_requests_and_not_for_websockets(captured):
    busy = views(captured, "show_servers_state_tunnels.txt", "show_stat_tunnels.txt")["app1-9090"]
    tunnels_only = views(captured, "show_servers_state_tunnels.txt", "show_stat_tunnels_only.txt")["app1-9090"]
    assert (busy.scur, tunnels_only.scur) == (3, 2)
    assert waiting.quiet_requests(busy, 0, parsing.StreamCounts(1, 2)) == \
        (waiting.WAITING, "1 request(s) in flight and 2 WebSocket(s) open")
    assert waiting.quiet_requests(busy, 0) == (waiting.WAITING, "3 session(s) active")  # streams not read yet
    verdict, reason = waiting.quiet_requests(tunnels_only, 0, parsing.StreamCounts(0, 2))
    assert verdict == waiting.REACHED and reason.endswith("; 2 WebSocket(s) open, which its restart will close")
    assert waiting.quiet_requests(tunnels_only, 600, parsing.StreamCounts(0, 2))[0] == waiting.WAITING  # lastsess < 600
    # drained counts every connection: with WebSockets open it is never reached.
    assert waiting.drained(tunnels_only, 0) == (waiting.WAITING, "2 session(s) active and 0 queued")
    ready = views(captured)["app1-9090"]
    assert waiting.quiet_requests(ready, 0)[0] == waiting.HOPELESS

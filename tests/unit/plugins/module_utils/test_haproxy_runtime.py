"""haproxy_runtime against replies captured from real HAProxy 2.6 and 3.0 (tests/unit/fixtures/haproxy/).

The fixtures come from tests/unit/fixtures/haproxy/lab.py, which mirrors the role's routing: four
instances, each with its own backend wt.<name> (checked server + relay backup) and a placement
server in backend wt tracking it. app1-9090 and app1-9091 are healthy (app1-9091 has maxconn 1, to
queue), app2-9090 is on a port nothing listens on, app2-9091 is `disabled` in haproxy.cfg; backend
static (balance source) holds one plain, unchecked server.
"""

import errno
import os
import socket
import threading
from pathlib import Path

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils import haproxy_runtime as rt

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "haproxy"
VERSIONS = sorted(path.name for path in FIXTURES.iterdir() if path.is_dir() and path.name[0].isdigit())
INSTANCES = ["app1-9090", "app1-9091", "app2-9090", "app2-9091"]


def test_fixtures_cover_both_supported_versions():
    assert VERSIONS == ["2.6", "3.0"]


@pytest.fixture(params=VERSIONS)
def captured(request):
    directory = FIXTURES / request.param

    def read(name):
        return (directory / name).read_text()

    read.version = request.param
    return read


def raw_views(captured, state="show_servers_state.txt", stat="show_stat_servers.txt"):
    return rt.merge_server_views(rt.parse_servers_state(captured(state)), rt.parse_show_stat(captured(stat)))


def raw_view(captured, backend, server, state="show_servers_state.txt", stat="show_stat_servers.txt"):
    return next(view for view in raw_views(captured, state, stat) if (view.backend, view.server) == (backend, server))


def views(captured, state="show_servers_state.txt", stat="show_stat_servers.txt"):
    """The rows the modules see: one per instance (backend wt) plus static's plain server."""
    return {view.server: view for view in rt.fold_instances(raw_views(captured, state, stat))}


# --- parsers ---------------------------------------------------------------------

def test_show_stat_is_read_by_header_names_whatever_the_column_count(captured):
    header = captured("show_stat.txt").splitlines()[0].split(",")
    assert len(header) == {"2.6": 129, "3.0": 206}[captured.version]
    rows = rt.parse_show_stat(captured("show_stat.txt"))
    own = [(f"wt.{name}", server) for name in INSTANCES for server in (name, "ws", "relay")]
    assert [(row["pxname"], row["svname"]) for row in rows] == own + [("wt", name) for name in INSTANCES] + \
        [("static", "solo")]
    assert {row["svname"]: row["status"] for row in rows if row["pxname"] == "wt"} == {
        "app1-9090": "UP", "app1-9091": "UP", "app2-9090": "DOWN",
        "app2-9091": "MAINT (via wt.app2-9091/app2-9091)"}


def test_server_rows_of_every_proxy(captured):
    rows = rt.parse_show_stat(captured("show_stat_servers.txt"))
    assert len(rows) == 17  # 4 own backends x (instance, ws, relay), 4 placement servers, static/solo
    assert [row["tracked"] for row in rows if row["pxname"] == "wt"] == [f"wt.{name}/{name}" for name in INSTANCES]


def test_show_stat_by_name_picks_the_frontend_of_the_same_name(captured):
    """Why the client never filters `show stat` by name: our frontend and backend are both `wt`."""
    reply = captured("show_stat_wt_is_the_frontend.txt")
    assert reply.startswith("# pxname,") and rt.parse_show_stat(reply) == []


def test_show_servers_state_records(captured):
    records = rt.parse_servers_state(captured("show_servers_state.txt"))
    placement = [(r["srv_name"], r["srv_admin_state"]) for r in records if r["be_name"] == "wt"]
    # The placement server of the instance disabled in haproxy.cfg inherits its maintenance (IMAINT).
    assert placement == [("app1-9090", "0"), ("app1-9091", "0"), ("app2-9090", "0"), ("app2-9091", "2")]
    # Its own server is disabled in haproxy.cfg (FMAINT|CMAINT), its ws lane inherits it (IMAINT).
    assert [r["srv_admin_state"] for r in records if r["be_name"] == "wt.app2-9091"] == ["5", "2", "0"]


def test_show_info(captured):
    info = rt.parse_show_info(captured("show_info.txt"))
    assert info["Version"].startswith(captured.version)
    assert info["Name"] == "HAProxy"


def test_a_reply_that_is_not_the_expected_table_is_an_error():
    with pytest.raises(rt.CommandError, match="unexpected reply to `show stat`"):
        rt.parse_show_stat("Permission denied\n\n")
    with pytest.raises(rt.CommandError, match="unexpected reply"):
        rt.parse_servers_state("")


# --- one row per instance ----------------------------------------------------------

def test_each_instance_is_one_row_and_its_own_backend_is_left_out(captured):
    folded = rt.fold_instances(raw_views(captured))
    assert [(view.backend, view.server, view.own_backend) for view in folded] == \
        [("wt", name, f"wt.{name}") for name in INSTANCES] + [("static", "solo", None)]
    assert folded[0].as_dict()["tracks"] == "wt.app1-9090/app1-9090"
    assert "placement" not in folded[0].as_dict() and "own" not in folded[0].as_dict()


def test_a_tracking_server_of_another_name_is_not_an_instance():
    server = rt.ServerView(backend="b", server="x", address=None, admin_state="ready", admin_flags=(), admin_mask=0,
                           operational_state="running", status="UP", check_status=None, check_description=None,
                           check_result="unknown", checks_enabled=False, check_health=None, check_rise=None,
                           check_fall=None, weight=1, initial_weight=1, scur=0, qcur=0, stot=0, lastsess=-1)
    tracker = rt.ServerView(**{**server.as_dict(), "backend": "a", "server": "y", "tracks": ("b", "x")})
    assert rt.fold_instances([server, tracker]) == [server, tracker]


def test_initial_state(captured):
    servers = views(captured)
    healthy = servers["app1-9090"]
    assert (healthy.admin_state, healthy.admin_flags, healthy.operational_state, healthy.status) == \
        ("ready", (), "running", "UP")
    assert (healthy.check_status, healthy.check_result, healthy.checks_enabled) == ("L7OK", "passed", True)
    assert (healthy.check_health, healthy.check_rise, healthy.check_fall) == (3, 2, 2)
    # Weight of the placement server (new sessions), address of the checked one.
    assert (healthy.weight, healthy.initial_weight, healthy.scur, healthy.qcur, healthy.lastsess) == \
        (100, 100, 0, 0, -1)
    assert healthy.address == raw_view(captured, "wt.app1-9090", "app1-9090").address

    dead = servers["app2-9090"]
    assert (dead.admin_state, dead.operational_state, dead.status, dead.check_status, dead.weight) == \
        ("ready", "stopped", "DOWN", "L4CON", 50)
    assert dead.check_description == "Layer4 connection problem"

    disabled = servers["app2-9091"]
    assert (disabled.admin_state, disabled.admin_flags, disabled.status) == ("maint", ("FMAINT", "CMAINT"), "MAINT")
    assert disabled.checks_enabled is False and disabled.check_status is None


def test_unchecked_plain_server(captured):
    solo = views(captured)["solo"]
    assert (solo.status, solo.checks_enabled, solo.weight, solo.own_backend) == ("no check", False, 10, None)
    assert rt.up(solo)[0] == rt.REACHED


def test_drain_is_set_on_the_placement_server_only(captured):
    state, stat = "show_servers_state_drain.txt", "show_stat_drain.txt"
    drained = views(captured, state, stat)["app1-9090"]
    assert (drained.admin_state, drained.admin_flags, drained.status) == ("drain", ("FDRAIN",), "DRAIN")
    own = raw_view(captured, "wt.app1-9090", "app1-9090", state, stat)
    assert (own.admin_state, own.status) == ("ready", "UP")  # its sessions still reach it


def test_maint_is_set_on_the_own_server_and_inherited_by_the_placement_server(captured):
    state, stat = "show_servers_state_maint.txt", "show_stat_maint.txt"
    maint = views(captured, state, stat)["app1-9090"]
    assert (maint.admin_state, maint.admin_flags, maint.status, maint.operational_state) == \
        ("maint", ("FMAINT", "FDRAIN"), "MAINT", "stopped")
    placement = raw_view(captured, "wt", "app1-9090", state, stat)
    assert (placement.admin_flags, placement.status) == (("IMAINT", "FDRAIN"), "MAINT (via wt.app1-9090/app1-9090)")


def test_leaving_maint_for_drain_rejoins_through_health_checks(captured):
    rejoining = views(captured, "show_servers_state_maint_drain.txt", "show_stat_rejoining.txt")["app1-9090"]
    assert (rejoining.admin_state, rejoining.admin_flags, rejoining.status) == ("drain", ("FDRAIN",), "UP 1/2")
    assert rt.up(rejoining)[0] == rt.WAITING
    rejoined = views(captured, "show_servers_state_rejoined.txt", "show_stat_maint_drain.txt")["app1-9090"]
    assert rt.up(rejoined) == (rt.REACHED, "status DRAIN, last check L7OK")


def test_draining_both_servers_the_way_community_general_does_is_still_drain(captured):
    both = views(captured, "show_servers_state_drain_both.txt", "show_stat_drain_both.txt")["app1-9091"]
    assert (both.admin_state, both.admin_flags, both.status) == ("drain", ("FDRAIN",), "DRAIN")
    assert rt.plan_change(both, state="ready").commands == (
        "set server wt/app1-9091 state ready", "set server wt.app1-9091/app1-9091 state ready")
    # Our drain keeps the instance's own server ready, so this is the one command needed.
    assert rt.plan_change(both, state="drain").commands == ("set server wt.app1-9091/app1-9091 state ready",)


def test_configured_disabled_instance_enabled_keeps_only_cmaint_and_is_ready(captured):
    servers = views(captured, "show_servers_state_enabled_from_config.txt", "show_stat_enabled_from_config.txt")
    server = servers["app2-9091"]
    assert (server.admin_mask, server.admin_flags, server.admin_state, server.status) == (4, ("CMAINT",), "ready", "UP")


def test_plain_server_drain_and_maint(captured):
    def solo(state):
        return views(captured, state)["solo"]

    assert (solo("show_servers_state_plain_drain.txt").admin_state,
            solo("show_servers_state_plain_drain.txt").admin_flags) == ("drain", ("FDRAIN",))
    assert (solo("show_servers_state_plain_maint.txt").admin_state,
            solo("show_servers_state_plain_maint.txt").admin_flags) == ("maint", ("FMAINT",))
    # One `state drain` is enough to leave maint for drain (no ready window in between).
    assert captured("reply_set_state_drain_from_maint.txt") == "\n"
    assert solo("show_servers_state_plain_maint_drain.txt").admin_flags == ("FDRAIN",)
    # The old `enable server` clears drain as well.
    assert solo("show_servers_state_plain_after_enable.txt").admin_flags == ()


def test_weights_are_the_placement_servers(captured):
    servers = views(captured, "show_servers_state_weight.txt", "show_stat_weight.txt")
    assert servers["app1-9091"].weight == 40
    # `weight 33%` on a server configured with weight 50: HAProxy truncates 16.5 to 16.
    assert (servers["app2-9090"].weight, servers["app2-9090"].initial_weight) == (16, 50)
    assert rt.target_weight("33%", 50) == 16
    zero = views(captured, "show_servers_state_enabled_from_config.txt", "show_stat_weight_zero.txt")["app1-9091"]
    assert (zero.weight, zero.status) == (0, "UP")


def test_sessions_and_queue_of_both_servers_while_draining(captured):
    busy = views(captured, "show_servers_state_drain.txt", "show_stat_drain_busy.txt")
    assert (busy["app1-9090"].scur, busy["app1-9090"].status) == (1, "DRAIN")
    assert (busy["app1-9091"].scur, busy["app1-9091"].qcur) == (1, 1)  # maxconn 1: the second request queues
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")["app1-9090"]
    assert (idle.scur, idle.qcur, idle.stot) == (0, 0, 1)
    assert idle.lastsess >= 3


# --- replies that are errors -------------------------------------------------

@pytest.mark.parametrize("name, error, words", [
    ("error_no_such_backend.txt", rt.UnknownBackend, "No such backend."),
    ("error_servers_state_no_backend.txt", rt.UnknownBackend, "Can't find backend."),
    ("error_show_stat_no_backend.txt", rt.UnknownBackend, "No such proxy."),
    ("error_no_such_server.txt", rt.UnknownServer, "No such server."),
    ("error_permission_denied.txt", rt.CommandPermissionDenied, "level admin"),
    ("error_unknown_command.txt", rt.CommandError, "does not know"),
])
def test_error_replies_are_recognised(captured, name, error, words):
    with pytest.raises(error) as caught:
        rt.classify_reply("the command", captured(name), "/run/haproxy/admin.sock")
    assert words in str(caught.value)
    assert caught.value.reply == captured(name)


@pytest.mark.parametrize("name", ["error_bad_state.txt", "error_bad_weight.txt", "error_static_weight.txt"])
def test_other_error_replies_are_command_errors_with_haproxys_words(captured, name):
    rt.classify_reply("set server", captured(name))  # not one of the known kinds
    client = rt.RuntimeClient("/x", connect=lambda: ReplaySocket(captured(name)))
    with pytest.raises(rt.CommandError) as caught:
        client.command("set server wt/app1-9090 weight 300")
    assert captured(name).strip() in str(caught.value)


def test_successful_set_commands_answer_an_empty_line(captured):
    for name in ("reply_set_state_drain.txt", "reply_set_state_maint.txt", "reply_set_state_ready.txt",
                 "reply_set_state_ready_own.txt", "reply_set_state_drain_plain.txt", "reply_set_weight.txt",
                 "reply_set_weight_relative.txt", "reply_enable_server.txt"):
        assert captured(name) == "\n", name


# --- the client over real sockets --------------------------------------------

class ReplaySocket:
    """Stands in for a connected socket: records what is sent, replies with ``reply`` then EOF."""

    def __init__(self, reply):
        self.reply = reply.encode()
        self.sent = b""

    def settimeout(self, value):
        pass

    def sendall(self, data):
        self.sent += data

    def recv(self, size):
        chunk, self.reply = self.reply[:size], self.reply[size:]
        return chunk

    def close(self):
        pass


class FakeHAProxy:
    """A unix or TCP listener answering each command line from a dict, the way HAProxy does it."""

    def __init__(self, replies, family=socket.AF_UNIX, path=None, silent=False):
        self.replies = replies
        self.received = []
        self.silent = silent
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            self.listener.bind(path)
            self.address = path
        else:
            self.listener.bind(("127.0.0.1", 0))
            self.address = f"tcp:127.0.0.1:{self.listener.getsockname()[1]}"
        self.listener.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                connection, dummy = self.listener.accept()
            except OSError:
                return
            with connection:
                line = b""
                while not line.endswith(b"\n"):
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    line += chunk
                line = line.decode().strip()
                self.received.append(line)
                if self.silent:
                    connection.recv(1)  # hold the connection open until the client gives up
                    continue
                unknown = "Unknown command, but maybe one of the following ones\n\n"
                reply = "".join(self.replies.get(command.strip(), unknown) for command in line.split(";"))
                for start in range(0, len(reply), 1000):  # several segments, as a long `show stat` arrives
                    connection.sendall(reply[start:start + 1000].encode())

    def close(self):
        self.listener.close()


@pytest.fixture
def fake_haproxy(captured, tmp_path):
    replies = {
        "show info": captured("show_info.txt"),
        "show servers state": captured("show_servers_state.txt"),
        "show servers state wt": captured("show_servers_state_wt.txt"),
        "show servers state nope": captured("error_servers_state_no_backend.txt"),
        "show stat nope 4 -1": captured("error_show_stat_no_backend.txt"),
        "show stat": captured("show_stat.txt"),
        "show stat -1 4 -1": captured("show_stat_servers.txt"),
        "set server wt/app1-9090 state drain": captured("reply_set_state_drain.txt"),
        "set server wt/app1-9090 weight 300": captured("error_bad_weight.txt"),
    }
    server = FakeHAProxy(replies, path=str(tmp_path / "admin.sock"))
    yield server
    server.close()


def test_client_reads_an_instance_in_one_exchange(fake_haproxy):
    client = rt.RuntimeClient(fake_haproxy.address)
    view = client.server("wt", "app1-9090")
    assert (view.backend, view.server, view.status, view.admin_state, view.own_backend) == \
        ("wt", "app1-9090", "UP", "ready", "wt.app1-9090")
    assert fake_haproxy.received == ["show servers state; show stat -1 4 -1"]
    assert [row["svname"] for row in client.show_stat("static")] == ["solo"]
    assert [view.server for view in client.servers()] == INSTANCES + ["solo"]
    assert len(client.servers(fold=False)) == 17
    assert client.show_info()["Name"] == "HAProxy"


def test_an_instances_own_backend_can_still_be_read_by_name(fake_haproxy):
    own = rt.RuntimeClient(fake_haproxy.address).servers("wt.app1-9090")
    assert [(view.server, view.status, view.own_backend) for view in own] == \
        [("app1-9090", "UP", None), ("ws", "UP", None), ("relay", "no check", None)]


def test_client_sends_set_commands(fake_haproxy):
    client = rt.RuntimeClient(fake_haproxy.address)
    client.set_server_state("wt", "app1-9090", "drain")
    assert fake_haproxy.received[-1] == "set server wt/app1-9090 state drain"
    with pytest.raises(rt.CommandError, match="Absolute weight can only be between 0 and 256"):
        client.command("set server wt/app1-9090 weight 300")


def test_unknown_backend_names_the_backends_there_are(fake_haproxy):
    with pytest.raises(rt.UnknownBackend) as caught:
        rt.RuntimeClient(fake_haproxy.address).server("nope", "app1-9090")
    assert str(caught.value) == f"HAProxy on {fake_haproxy.address} has no backend 'nope'; its backends are: static, wt"


def test_unknown_server_names_the_servers_there_are(fake_haproxy):
    with pytest.raises(rt.UnknownServer) as caught:
        rt.RuntimeClient(fake_haproxy.address).server("wt", "app9-9090")
    assert str(caught.value) == (f"backend 'wt' on {fake_haproxy.address} has no server 'app9-9090'; its servers "
                                 "are: app1-9090, app1-9091, app2-9090, app2-9091")


def test_batch_replies_are_split_at_empty_lines(captured):
    client = rt.RuntimeClient("/x", connect=lambda: ReplaySocket(captured("batch_show_servers_state_and_stat.txt")))
    state, stat = client.execute_batch(["show servers state", "show stat -1 4 -1"])
    assert [r["srv_name"] for r in rt.parse_servers_state(state) if r["be_name"] == "wt"] == INSTANCES
    assert len(rt.parse_show_stat(stat)) == 17
    client = rt.RuntimeClient("/x", connect=lambda: ReplaySocket("\n\n" + captured("show_info.txt")))
    replies = client.execute_batch(["set server wt/a weight 1", "set server wt/a state ready", "show info"])
    assert replies[:2] == ["", ""] and replies[2].startswith("Name: HAProxy")
    client = rt.RuntimeClient("/x", connect=lambda: ReplaySocket(captured("show_info.txt")))
    with pytest.raises(rt.CommandError, match="HAProxy answered 1 of 2 commands"):
        client.execute_batch(["show info", "show stat"])
    with pytest.raises(rt.RuntimeApiError, match="cannot contain ';'"):
        client.execute_batch(["show info; show stat"])


def test_batch_with_errors(captured):
    client = rt.RuntimeClient("/x", connect=lambda: ReplaySocket(captured("batch_error_no_backend.txt")))
    assert client.execute_batch(["show servers state nope", "show stat nope 4 -1"]) == \
        ["Can't find backend.\n", "No such proxy.\n"]


def test_client_over_tcp(captured):
    server = FakeHAProxy({"show info": captured("show_info.txt")}, family=socket.AF_INET)
    try:
        assert rt.RuntimeClient(server.address).show_info()["Version"].startswith(captured.version)
    finally:
        server.close()


def test_missing_socket(tmp_path):
    with pytest.raises(rt.SocketMissing, match="does not exist: is HAProxy running"):
        rt.RuntimeClient(str(tmp_path / "admin.sock")).show_info()


def test_stale_socket_file_is_connection_refused(tmp_path):
    path = str(tmp_path / "admin.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # bound, never listening: what a crashed HAProxy leaves behind
    try:
        with pytest.raises(rt.SocketConnectionRefused, match="HAProxy is stopped or restarting"):
            rt.RuntimeClient(path).show_info()
    finally:
        stale.close()


def test_permission_denied_on_the_socket_file():
    def refuse():
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    with pytest.raises(rt.SocketPermissionDenied, match=r"become: true"):
        rt.RuntimeClient("/run/haproxy/admin.sock", connect=refuse).show_info()


def test_silence_times_out(tmp_path):
    server = FakeHAProxy({}, path=str(tmp_path / "admin.sock"), silent=True)
    try:
        with pytest.raises(rt.SocketTimeout, match="did not finish answering `show info` within 0.2 s"):
            rt.RuntimeClient(server.address, timeout=0.2).show_info()
    finally:
        server.close()


@pytest.mark.parametrize("address, expected", [
    ("/run/haproxy/admin.sock", (socket.AF_UNIX, "/run/haproxy/admin.sock")),
    ("unix@/run/haproxy/admin.sock", (socket.AF_UNIX, "/run/haproxy/admin.sock")),
    ("tcp:127.0.0.1:9999", (socket.AF_INET, ("127.0.0.1", 9999))),
    ("ipv4@127.0.0.1:9999", (socket.AF_INET, ("127.0.0.1", 9999))),
    ("tcp:[::1]:9999", (socket.AF_INET6, ("::1", 9999))),
    ("ipv6@[::1]:9999", (socket.AF_INET6, ("::1", 9999))),
    ("tcp:localhost:9999", (socket.AF_INET, ("localhost", 9999))),
])
def test_addresses(address, expected):
    assert rt.parse_address(address) == expected


@pytest.mark.parametrize("address", ["", "admin.sock", "tcp:127.0.0.1", "tcp:127.0.0.1:99999", "tcp::9999"])
def test_bad_addresses(address):
    with pytest.raises(rt.RuntimeApiError):
        rt.parse_address(address)


@pytest.mark.parametrize("name", ["wt;disable server wt/app1", "wt app1", "", "wt\n"])
def test_names_cannot_inject_commands(name):
    with pytest.raises(rt.RuntimeApiError, match="is not a HAProxy identifier"):
        rt.state_command(name, "app1-9090", "drain")
    with pytest.raises(rt.RuntimeApiError, match="is not a HAProxy identifier"):
        rt.weight_command("wt", name, 10)


# --- planning ------------------------------------------------------------------

def view_of(captured, server="app1-9090", state="show_servers_state.txt", stat="show_stat_servers.txt"):
    return views(captured, state, stat)[server]


def test_nothing_to_do_when_already_there(captured):
    change = rt.plan_change(view_of(captured), state="ready", weight="100")
    assert change.commands == () and not change.changed
    assert rt.plan_change(view_of(captured)).commands == ()
    assert rt.plan_change(view_of(captured), weight="100%").commands == ()


def test_weight_before_state_and_both_on_the_placement_server(captured):
    change = rt.plan_change(view_of(captured, "app2-9090"), state="drain", weight="200%")
    assert change.commands == ("set server wt/app2-9090 weight 100", "set server wt/app2-9090 state drain")
    assert (change.before, change.after) == ({"admin_state": "ready", "weight": 50},
                                             {"admin_state": "drain", "weight": 100})


def test_a_rolling_restart_sends_each_state_where_it_belongs(captured):
    ready = view_of(captured)
    drained = view_of(captured, state="show_servers_state_drain.txt", stat="show_stat_drain.txt")
    maint = view_of(captured, state="show_servers_state_maint.txt", stat="show_stat_maint.txt")
    rejoined = view_of(captured, state="show_servers_state_rejoined.txt", stat="show_stat_maint_drain.txt")
    assert rt.plan_change(ready, state="drain").commands == ("set server wt/app1-9090 state drain",)
    assert rt.plan_change(drained, state="maint").commands == ("set server wt.app1-9090/app1-9090 state maint",)
    assert rt.plan_change(maint, state="drain").commands == ("set server wt.app1-9090/app1-9090 state ready",)
    assert rt.plan_change(rejoined, state="ready").commands == ("set server wt/app1-9090 state ready",)
    assert rt.plan_change(maint, state="ready").commands == (
        "set server wt/app1-9090 state ready", "set server wt.app1-9090/app1-9090 state ready")
    assert rt.plan_change(ready, state="maint").commands == ("set server wt.app1-9090/app1-9090 state maint",)
    assert rt.plan_change(maint, state="maint").commands == ()


def test_leaving_maint_of_an_instance_disabled_in_the_configuration(captured):
    change = rt.plan_change(view_of(captured, "app2-9091"), state="ready")
    assert change.commands == ("set server wt.app2-9091/app2-9091 state ready",)


def test_a_plain_server_gets_its_own_commands(captured):
    solo = view_of(captured, "solo")
    assert rt.plan_change(solo, state="drain", weight="5").commands == (
        "set server static/solo weight 5", "set server static/solo state drain")


@pytest.mark.parametrize("spec, initial, expected", [
    (0, 100, 0), ("256", 1, 256), ("50%", 100, 50), ("33%", 50, 16), ("1000%", 100, 256), ("0%", 100, 0),
    (" 7 ", 100, 7), ("100%", 3, 3)])
def test_target_weight(spec, initial, expected):
    assert rt.target_weight(spec, initial) == expected


@pytest.mark.parametrize("spec", ["257", "-1", "half", "50 %%", "", "1.5"])
def test_bad_weights(spec):
    with pytest.raises(rt.RuntimeApiError, match="weight"):
        rt.target_weight(spec, 100)


def test_bad_state(captured):
    with pytest.raises(rt.RuntimeApiError, match="ready, drain, maint"):
        rt.plan_change(view_of(captured), state="disabled")


def test_unreached_explains_inherited_states(captured):
    server = view_of(captured, "solo")
    change = rt.plan_change(server, state="drain")
    assert rt.unreached(view_of(captured, "solo", "show_servers_state_plain_drain.txt"), change) is None
    tracked = rt.ServerView(**{**server.as_dict(), "admin_flags": ("IMAINT",), "admin_mask": 0x02,
                               "admin_state": "maint", "tracks": None})
    problem = rt.unreached(tracked, rt.plan_change(server, state="ready", weight="20"))
    assert problem == ("static/solo: it is still in maint (maintenance inherited from a tracked server), which "
                       "`set server ... state ready` cannot override and its weight is 10, not 20")
    instance = view_of(captured)
    assert rt.unreached(view_of(captured, state="show_servers_state_drain.txt", stat="show_stat_drain.txt"),
                        rt.plan_change(instance, state="drain")) is None


# --- waiting -----------------------------------------------------------------

def test_drained_conditions(captured):
    busy = views(captured, "show_servers_state_drain.txt", "show_stat_drain_busy.txt")
    assert rt.drained(busy["app1-9090"], 2) == (rt.WAITING, "1 session(s) active and 0 queued")
    assert rt.drained(busy["app1-9091"], 2)[0] == rt.HOPELESS  # still ready: it never drains
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")["app1-9090"]
    assert rt.drained(idle, 2)[0] == rt.REACHED
    assert rt.drained(idle, 60) == (rt.WAITING,
                                    f"last session assigned {idle.lastsess} s ago, waiting for 60 s of quiet")
    never = views(captured, "show_servers_state_drain.txt", "show_stat_drain.txt")["app1-9090"]
    assert rt.drained(never, 60) == (rt.REACHED, "no active or queued session, none ever assigned")
    maint = views(captured, "show_servers_state_maint.txt", "show_stat_maint.txt")["app1-9090"]
    assert rt.drained(maint, 2)[0] == rt.REACHED


def test_up_conditions(captured):
    assert rt.up(view_of(captured)) == (rt.REACHED, "status UP, last check L7OK")
    # Just out of maint HAProxy calls it up at reduced health ("UP 1/2") before any check ran.
    rejoining = views(captured, "show_servers_state_maint_drain.txt", "show_stat_rejoining.txt")["app1-9090"]
    assert rejoining.status == "UP 1/2"
    assert rt.up(rejoining) == (rt.WAITING, "status UP 1/2: health 2/3, last check L7OK")
    failing = views(captured, "show_servers_state.txt", "show_stat_check_failing.txt")["app1-9090"]
    failing = rt.ServerView(**{**failing.as_dict(), "operational_state": "stopped"})
    assert rt.up(failing) == (rt.WAITING, "status DOWN, last check L7STS (Layer7 wrong status)")
    assert rt.up(view_of(captured, "app2-9090"))[0] == rt.WAITING
    maint = views(captured, "show_servers_state_maint.txt", "show_stat_maint.txt")["app1-9090"]
    assert rt.up(maint)[0] == rt.HOPELESS
    draining = views(captured, "show_servers_state_drain.txt", "show_stat_drain.txt")["app1-9090"]
    assert rt.up(draining) == (rt.REACHED, "status DRAIN, last check L7OK")


def test_waits_that_cannot_succeed(captured):
    assert "can never drain" in rt.wait_conflict("drained", "ready")
    assert "can never be quiet: set state=drain (or maint) with wait=quiet" in rt.wait_conflict("quiet", "ready")
    assert "can never be seen up" in rt.wait_conflict("up", "maint")
    pairs = [("drained", "drain"), ("drained", "maint"), ("quiet", "maint"), ("up", "ready"), ("up", "drain"),
             ("none", "ready")]
    assert [rt.wait_conflict(c, s) for c, s in pairs] == [None] * 6
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")["app1-9090"]
    assert rt.wait_check("drained", 2)(idle)[0] == rt.REACHED
    assert rt.wait_check("drained", 600)(idle)[0] == rt.WAITING
    assert rt.wait_check("up", 2)(idle) == rt.up(idle)
    with pytest.raises(rt.RuntimeApiError, match="can wait for drained, quiet or up, not 'none'"):
        rt.wait_check("none", 2)


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def sequence(*items):
    items = list(items)

    def poll():
        item = items.pop(0) if len(items) > 1 else items[0]
        if isinstance(item, Exception):
            raise item
        return item

    return poll


def test_wait_until_reached(captured):
    busy = views(captured, "show_servers_state_drain.txt", "show_stat_drain_busy.txt")["app1-9090"]
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")["app1-9090"]
    clock = FakeClock()
    outcome = rt.wait_for("drained", sequence(busy, busy, idle), lambda view: rt.drained(view, 2),
                          timeout=60, interval=5, clock=clock, sleep=clock.sleep)
    assert (outcome.reached, outcome.polls, outcome.elapsed, clock.sleeps) == (True, 3, 10.0, [5, 5])
    assert outcome.observed["scur"] == 0 and outcome.reason.startswith("no active or queued session")


def test_wait_times_out_with_the_last_values(captured):
    busy = views(captured, "show_servers_state_drain.txt", "show_stat_drain_busy.txt")["app1-9090"]
    clock = FakeClock()
    outcome = rt.wait_for("drained", sequence(busy), lambda view: rt.drained(view, 2),
                          timeout=12, interval=5, clock=clock, sleep=clock.sleep)
    assert (outcome.reached, outcome.polls, outcome.elapsed, clock.sleeps) == (False, 4, 12.0, [5, 5, 2])
    assert outcome.reason == "timed out after 12 s: 1 session(s) active and 0 queued"
    assert outcome.observed["scur"] == 1


def test_wait_stops_at_once_when_hopeless(captured):
    clock = FakeClock()
    outcome = rt.wait_for("drained", sequence(view_of(captured)), lambda view: rt.drained(view, 2),
                          timeout=60, interval=1, clock=clock, sleep=clock.sleep)
    assert (outcome.reached, outcome.polls, clock.sleeps) == (False, 1, [])
    assert outcome.reason.startswith("will never be drained: it is in ready state")


def test_wait_rides_out_a_reload_but_not_a_lost_server(captured):
    clock = FakeClock()
    refused = rt.SocketConnectionRefused("nothing accepts connections")
    outcome = rt.wait_for("up", sequence(refused, refused, view_of(captured)), rt.up,
                          timeout=60, interval=1, clock=clock, sleep=clock.sleep)
    assert (outcome.reached, outcome.polls) == (True, 3)
    outcome = rt.wait_for("up", sequence(refused), rt.up, timeout=2, interval=1, clock=clock, sleep=clock.sleep)
    assert (outcome.reached, outcome.observed, outcome.reason) == (False, None,
                                                                   "timed out after 2 s: nothing accepts connections")
    gone = rt.UnknownServer("backend 'wt' has no server 'app1-9090'")
    outcome = rt.wait_for("up", sequence(gone), rt.up, timeout=60, interval=1, clock=clock, sleep=clock.sleep)
    assert (outcome.reached, outcome.polls) == (False, 1)
    assert outcome.reason == "will never be up: backend 'wt' has no server 'app1-9090'"


# --- streams: requests and WebSocket tunnels -------------------------------------------

def test_show_sess_all_tells_tunnels_from_requests(captured):
    """Fixture: app1-9090 drained with two WebSockets and a slow request, app1-9091 with a WebSocket.
    The WebSockets went through each instance's ws lane, the request through its own server."""
    counts = rt.parse_streams(captured("show_sess_all_tunnels.txt"))
    assert counts == {("wt.app1-9090", "app1-9090"): rt.StreamCounts(requests=1, tunnels=0),
                      ("wt.app1-9090", "ws"): rt.StreamCounts(requests=0, tunnels=2),
                      ("wt.app1-9091", "ws"): rt.StreamCounts(requests=0, tunnels=1)}
    assert rt.parse_streams("") == {}
    with pytest.raises(rt.CommandError, match="unexpected reply to `show sess all`"):
        rt.parse_streams("Unknown command\n")


def test_an_instances_streams_are_those_of_both_its_servers(captured):
    busy = views(captured, "show_servers_state_tunnels.txt", "show_stat_tunnels.txt")
    counts = rt.parse_streams(captured("show_sess_all_tunnels.txt"))
    assert busy["app1-9090"].scur == 3
    assert rt.streams_of(busy["app1-9090"], counts) == rt.StreamCounts(1, 2)
    assert rt.streams_of(busy["app2-9090"], counts) == rt.StreamCounts(0, 0)
    counts[("wt", "app2-9090")] = rt.StreamCounts(1, 0)
    assert rt.streams_of(busy["app2-9090"], counts) == rt.StreamCounts(1, 0)
    assert rt.streams_of(busy["solo"], {("static", "solo"): rt.StreamCounts(0, 3)}) == rt.StreamCounts(0, 3)


def test_quiet_waits_for_requests_and_not_for_websockets(captured):
    busy = views(captured, "show_servers_state_tunnels.txt", "show_stat_tunnels.txt")["app1-9090"]
    tunnels_only = views(captured, "show_servers_state_tunnels.txt", "show_stat_tunnels_only.txt")["app1-9090"]
    assert (busy.scur, tunnels_only.scur) == (3, 2)
    assert rt.quiet_requests(busy, 0, rt.StreamCounts(1, 2)) == \
        (rt.WAITING, "1 request(s) in flight and 2 WebSocket(s) open")
    assert rt.quiet_requests(busy, 0) == (rt.WAITING, "3 session(s) active")  # streams not read yet
    verdict, reason = rt.quiet_requests(tunnels_only, 0, rt.StreamCounts(0, 2))
    assert verdict == rt.REACHED and reason.endswith("; 2 WebSocket(s) open, which its restart will close")
    assert rt.quiet_requests(tunnels_only, 600, rt.StreamCounts(0, 2))[0] == rt.WAITING  # lastsess < 600
    # drained counts every connection: with WebSockets open it is never reached.
    assert rt.drained(tunnels_only, 0) == (rt.WAITING, "2 session(s) active and 0 queued")
    ready = views(captured)["app1-9090"]
    assert rt.quiet_requests(ready, 0)[0] == rt.HOPELESS


# --- several servers at once -------------------------------------------------------------

def test_commands_are_grouped_in_lines_haproxy_can_read():
    commands = [f"set server wt/app{n:04d}-9090 state drain" for n in range(1000)]
    lines = rt.command_lines(commands)
    assert [command for line in lines for command in line] == commands
    assert all(len("; ".join(line)) < rt.MAX_COMMAND_LINE for line in lines) and len(lines) > 1
    assert rt.command_lines([]) == []


def test_send_runs_a_batch_in_one_exchange_and_names_what_was_rejected(captured):
    socket_ = ReplaySocket("\n\n")
    client = rt.RuntimeClient("/x", connect=lambda: socket_)
    assert client.send(["set server wt/a state drain", "set server wt/b state drain"]) == 2
    assert socket_.sent == b"set server wt/a state drain; set server wt/b state drain\n"
    client = rt.RuntimeClient("/x", connect=lambda: ReplaySocket("\n" + captured("error_static_weight.txt")))
    with pytest.raises(rt.CommandError) as caught:
        client.send(["set server wt/a state drain", "set server static/solo weight 5"])
    assert caught.value.accepted == 1
    assert str(caught.value).startswith("HAProxy rejected `set server static/solo weight 5` on /x: Backend is using")


def test_servers_named_reads_once_and_names_every_missing_server(fake_haproxy):
    client = rt.RuntimeClient(fake_haproxy.address)
    found = client.servers_named("wt", ["app2-9090", "app1-9090"])
    assert list(found) == ["app2-9090", "app1-9090"] and found["app1-9090"].is_instance
    assert len(fake_haproxy.received) == 1
    with pytest.raises(rt.UnknownServer, match=r"has no server 'nope', 'gone'; its servers are: app1-9090, "):
        client.servers_named("wt", ["app1-9090", "nope", "gone"])


def many(*rounds):
    """poll(names) replaying one {name: view} per call (the last one forever)."""
    rounds = list(rounds)

    def poll(names):
        item = rounds.pop(0) if len(rounds) > 1 else rounds[0]
        if isinstance(item, Exception):
            raise item
        return {name: (item[name], None) for name in names}

    return poll


def test_wait_for_servers_waits_for_all_at_once_and_each_stops_when_it_is_done(captured):
    busy = views(captured, "show_servers_state_drain.txt", "show_stat_drain_busy.txt")
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")
    both_busy = {"a": busy["app1-9090"], "b": busy["app1-9090"]}
    a_idle = {"a": idle["app1-9090"], "b": busy["app1-9090"]}
    clock = FakeClock()
    check = rt.wait_check("drained", 2)
    outcomes = rt.wait_for_servers("drained", many(both_busy, a_idle), ["a", "b"], check, timeout=6, interval=2,
                                   clock=clock, sleep=clock.sleep)
    assert (outcomes["a"].reached, outcomes["a"].polls, outcomes["a"].elapsed) == (True, 2, 2.0)
    assert (outcomes["b"].reached, outcomes["b"].polls, outcomes["b"].elapsed) == (False, 4, 6.0)
    assert outcomes["b"].reason == "timed out after 6 s: 1 session(s) active and 0 queued"
    assert outcomes["b"].observed["scur"] == 1
    assert clock.sleeps == [2, 2, 2]


def test_hold_needs_the_condition_to_last_and_a_relapse_ends_the_wait(captured):
    up_view = view_of(captured)
    down = views(captured, "show_servers_state.txt", "show_stat_check_failing.txt")["app1-9090"]
    down = rt.ServerView(**{**down.as_dict(), "operational_state": "stopped"})
    clock = FakeClock()
    steady = rt.wait_for_servers("up", many({"c": up_view}), ["c"], rt.wait_check("up", 0), timeout=60, interval=1,
                                 hold=3, clock=clock, sleep=clock.sleep)["c"]
    assert (steady.reached, steady.elapsed, steady.reason) == (True, 3.0, "status UP, last check L7OK, for 3 s")
    clock = FakeClock()
    checking = rt.ServerView(**{**up_view.as_dict(), "check_result": "unknown", "status": "UP 1/2"})
    flapped = rt.wait_for_servers("up", many({"c": up_view}, {"c": checking}, {"c": down}), ["c"],
                                  rt.wait_check("up", 0), timeout=60, interval=1, hold=5,
                                  keep=rt.keep_check("up", 0), clock=clock, sleep=clock.sleep)["c"]
    assert (flapped.reached, flapped.elapsed) == (False, 2.0)
    assert flapped.reason.startswith("was up for 2.0 s, then: status DOWN")


def test_wait_for_servers_rides_out_a_reload(captured):
    clock = FakeClock()
    refused = rt.SocketConnectionRefused("nothing accepts connections")
    outcomes = rt.wait_for_servers("up", many(refused, {"x": view_of(captured)}), ["x"], rt.wait_check("up", 0),
                                   timeout=60, interval=1, clock=clock, sleep=clock.sleep)
    assert outcomes["x"].reached and outcomes["x"].polls == 2


def test_the_poller_reads_streams_only_when_quiet_needs_them(captured):
    class Client:
        def __init__(self, views):
            self.views, self.stream_reads = views, 0

        def servers_named(self, backend, names):
            return {name: self.views[name] for name in names}

        def streams(self):
            self.stream_reads += 1
            return rt.parse_streams(captured("show_sess_all_tunnels.txt"))

    busy = views(captured, "show_servers_state_tunnels.txt", "show_stat_tunnels.txt")
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")
    client = Client(busy)
    assert rt.server_poller(client, "wt", "quiet")(["app1-9090"]) == {
        "app1-9090": (busy["app1-9090"], rt.StreamCounts(1, 2))}
    assert rt.server_poller(client, "wt", "drained")(["app1-9090"])["app1-9090"][1] is None
    client = Client(idle)
    assert rt.server_poller(client, "wt", "quiet")(["app1-9090"])["app1-9090"][1] is None
    assert client.stream_reads == 0

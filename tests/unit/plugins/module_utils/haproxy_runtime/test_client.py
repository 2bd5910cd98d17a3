"""The client over sockets (stand-ins answering captured replies; no HAProxy runs)."""

import errno
import os
import socket

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import client, errors, parsing
from haproxy_replies import INSTANCES, FakeHAProxy, ReplaySocket


def test_client_sends_set_commands(fake_haproxy):
    api = client.RuntimeClient(fake_haproxy.address)
    api.command(client.state_command("wt", "app1-9090", "drain"))
    assert fake_haproxy.received[-1] == "set server wt/app1-9090 state drain"
    with pytest.raises(errors.CommandError, match="Absolute weight can only be between 0 and 256"):
        api.command("set server wt/app1-9090 weight 300")


def test_batch_replies_are_split_at_empty_lines(captured):
    api = client.RuntimeClient("/x", connect=lambda: ReplaySocket(captured("batch_show_servers_state_and_stat.txt")))
    state, stat = api.execute_batch(["show servers state", "show stat -1 4 -1"])
    assert [r["srv_name"] for r in parsing.parse_servers_state(state) if r["be_name"] == "wt"] == INSTANCES
    assert len(parsing.parse_show_stat(stat)) == 17
    api = client.RuntimeClient("/x", connect=lambda: ReplaySocket("\n\n" + captured("show_info.txt")))
    replies = api.execute_batch(["set server wt/a weight 1", "set server wt/a state ready", "show info"])
    assert replies[:2] == ["", ""] and replies[2].startswith("Name: HAProxy")
    api = client.RuntimeClient("/x", connect=lambda: ReplaySocket(captured("show_info.txt")))
    with pytest.raises(errors.CommandError, match="HAProxy answered 1 of 2 commands"):
        api.execute_batch(["show info", "show stat"])
    with pytest.raises(errors.RuntimeApiError, match="cannot contain ';'"):
        api.execute_batch(["show info; show stat"])


def test_batch_with_errors(captured):
    api = client.RuntimeClient("/x", connect=lambda: ReplaySocket(captured("batch_error_no_backend.txt")))
    assert api.execute_batch(["show servers state nope", "show stat nope 4 -1"]) == \
        ["Can't find backend.\n", "No such proxy.\n"]


def test_client_over_tcp(captured):
    server = FakeHAProxy({"show info": captured("show_info.txt")}, family=socket.AF_INET)
    try:
        assert client.RuntimeClient(server.address).show_info()["Version"].startswith(captured.version)
    finally:
        server.close()


def test_missing_socket(tmp_path):
    with pytest.raises(errors.SocketMissing, match="does not exist: is HAProxy running"):
        client.RuntimeClient(str(tmp_path / "admin.sock")).show_info()


def test_stale_socket_file_is_connection_refused(tmp_path):
    path = str(tmp_path / "admin.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # bound, never listening: what a crashed HAProxy leaves behind
    try:
        with pytest.raises(errors.SocketConnectionRefused, match="HAProxy is stopped or restarting"):
            client.RuntimeClient(path).show_info()
    finally:
        stale.close()


def test_permission_denied_on_the_socket_file():
    def refuse():
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    with pytest.raises(errors.SocketPermissionDenied, match=r"become: true"):
        client.RuntimeClient(client.DEFAULT_SOCKET, connect=refuse).show_info()


def test_silence_times_out(tmp_path):
    server = FakeHAProxy({}, path=str(tmp_path / "admin.sock"), silent=True)
    try:
        with pytest.raises(errors.SocketTimeout, match="did not finish answering `show info` within 0.2 s"):
            client.RuntimeClient(server.address, timeout=0.2).show_info()
    finally:
        server.close()


@pytest.mark.parametrize("address, expected", [
    (client.DEFAULT_SOCKET, (socket.AF_UNIX, client.DEFAULT_SOCKET)),
    ("unix@" + client.DEFAULT_SOCKET, (socket.AF_UNIX, client.DEFAULT_SOCKET)),
    ("tcp:127.0.0.1:9999", (socket.AF_INET, ("127.0.0.1", 9999))),
    ("ipv4@127.0.0.1:9999", (socket.AF_INET, ("127.0.0.1", 9999))),
    ("tcp:[::1]:9999", (socket.AF_INET6, ("::1", 9999))),
    ("ipv6@[::1]:9999", (socket.AF_INET6, ("::1", 9999))),
    ("tcp:localhost:9999", (socket.AF_INET, ("localhost", 9999))),
])
def test_addresses(address, expected):
    assert client.parse_address(address) == expected


@pytest.mark.parametrize("address", ["", "admin.sock", "tcp:127.0.0.1", "tcp:127.0.0.1:99999", "tcp::9999"])
def test_bad_addresses(address):
    with pytest.raises(errors.RuntimeApiError):
        client.parse_address(address)


@pytest.mark.parametrize("name", ["wt;disable server wt/app1", "wt app1", "", "wt\n"])
def test_names_cannot_inject_commands(name):
    with pytest.raises(errors.RuntimeApiError, match="is not a HAProxy identifier"):
        client.state_command(name, "app1-9090", "drain")
    with pytest.raises(errors.RuntimeApiError, match="is not a HAProxy identifier"):
        client.weight_command("wt", name, 10)


def test_commands_are_grouped_in_lines_haproxy_can_read():
    commands = [f"set server wt/app{n:04d}-9090 state drain" for n in range(1000)]
    lines = client.command_lines(commands)
    assert [command for line in lines for command in line] == commands
    assert all(len("; ".join(line)) < client.MAX_COMMAND_LINE for line in lines) and len(lines) > 1
    assert client.command_lines([]) == []


def test_send_runs_a_batch_in_one_exchange_and_names_what_was_rejected(captured):
    socket_ = ReplaySocket("\n\n")
    api = client.RuntimeClient("/x", connect=lambda: socket_)
    assert api.send(["set server wt/a state drain", "set server wt/b state drain"]) == 2
    assert socket_.sent == b"set server wt/a state drain; set server wt/b state drain\n"
    api = client.RuntimeClient("/x", connect=lambda: ReplaySocket("\n" + captured("error_static_weight.txt")))
    with pytest.raises(errors.CommandError) as caught:
        api.send(["set server wt/a state drain", "set server static/solo weight 5"])
    assert caught.value.accepted == 1
    assert str(caught.value).startswith("HAProxy rejected `set server static/solo weight 5` on /x: Backend is using")

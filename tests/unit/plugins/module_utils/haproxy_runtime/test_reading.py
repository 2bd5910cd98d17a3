"""Reading server views from HAProxy (a stand-in answering captured replies; no HAProxy runs)."""

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import client, errors, reading
from haproxy_replies import INSTANCES, FakeHAProxy, instance_replies


def test_client_reads_an_instance_in_one_exchange(fake_haproxy):
    api = client.RuntimeClient(fake_haproxy.address)
    view = reading.read_named(api, "wt", ["app1-9090"])["app1-9090"]
    assert (view.backend, view.server, view.status, view.admin_state, view.own_backend) == \
        ("wt", "app1-9090", "UP", "ready", "wt.app1-9090")
    assert fake_haproxy.received[-1] == "show servers state; show stat -1 4 -1"  # no ids: the whole table
    assert [view.server for view in reading.read_servers(api, "static")] == ["solo"]
    assert [view.server for view in reading.read_servers(api)] == INSTANCES + ["solo"]
    assert len(reading.read_servers(api, fold=False)) == 17
    assert api.show_info()["Name"] == "HAProxy"


def test_an_instances_own_backend_can_still_be_read_by_name(fake_haproxy):
    own = reading.read_servers(client.RuntimeClient(fake_haproxy.address), "wt.app1-9090")
    assert [(view.server, view.status, view.own_backend) for view in own] == \
        [("app1-9090", "UP", None), ("ws", "UP", None), ("relay", "no check", None)]


def test_unknown_backend_names_the_backends_there_are(fake_haproxy):
    with pytest.raises(errors.UnknownBackend) as caught:
        reading.read_named(client.RuntimeClient(fake_haproxy.address), "nope", ["app1-9090"])
    assert str(caught.value) == f"HAProxy on {fake_haproxy.address} has no backend 'nope'; its backends are: static, wt"


def test_unknown_server_names_the_servers_there_are(fake_haproxy):
    with pytest.raises(errors.UnknownServer) as caught:
        reading.read_whole_named(client.RuntimeClient(fake_haproxy.address), "wt", ["app9-9090"])
    assert str(caught.value) == (f"backend 'wt' on {fake_haproxy.address} has no server 'app9-9090'; its servers "
                                 "are: app1-9090, app1-9091, app2-9090, app2-9091")


def test_without_the_ids_the_instances_are_read_from_the_whole_table(fake_haproxy):
    api = client.RuntimeClient(fake_haproxy.address)
    found = reading.read_named(api, "wt", ["app2-9090", "app1-9090"])
    assert list(found) == ["app2-9090", "app1-9090"] and found["app1-9090"].is_instance
    assert fake_haproxy.received[1:] == ["show servers state; show stat -1 4 -1"]
    with pytest.raises(errors.UnknownServer, match=r"has no server 'nope', 'gone'; its servers are: app1-9090, "):
        reading.read_named(api, "wt", ["app1-9090", "nope", "gone"])


# (show servers state, show stat) pairs captured in each interesting state
STATES = [("show_servers_state.txt", "show_stat_servers.txt"), ("show_servers_state_drain.txt", "show_stat_drain.txt"),
          ("show_servers_state_drain.txt", "show_stat_drain_busy.txt"),
          ("show_servers_state_maint.txt", "show_stat_maint.txt"),
          ("show_servers_state_maint_drain.txt", "show_stat_rejoining.txt"),
          ("show_servers_state_drain_both.txt", "show_stat_drain_both.txt"),
          ("show_servers_state_weight.txt", "show_stat_weight.txt"),
          ("show_servers_state_enabled_from_config.txt", "show_stat_enabled_from_config.txt"),
          ("show_servers_state_tunnels.txt", "show_stat_tunnels.txt")]


@pytest.mark.parametrize("state, stat", STATES)
def test_instances_alone_read_as_the_whole_table_does(captured, tmp_path, state, stat):
    replies = {"show servers state": captured(state), "show stat -1 4 -1": captured(stat),
               **instance_replies(captured, state, stat)}
    server = FakeHAProxy(replies, path=str(tmp_path / "admin.sock"))
    try:
        api = client.RuntimeClient(server.address)
        alone = reading.read_instances(api, INSTANCES)
        assert alone == reading.read_whole_named(api, "wt", INSTANCES)
        assert {name: view.as_dict() for name, view in alone.items()} == \
            {name: view.as_dict() for name, view in reading.read_whole_named(api, "wt", INSTANCES).items()}
        assert not any("show stat -1" in line for line in server.received[:2])
    finally:
        server.close()


def test_unknown_instances_are_all_named_without_reading_the_table(captured, tmp_path):
    server = FakeHAProxy(instance_replies(captured), path=str(tmp_path / "admin.sock"))
    try:
        with pytest.raises(errors.UnknownServer) as caught:
            reading.read_named(client.RuntimeClient(server.address), "wt", ["app1-9090", "nope", "gone"])
        assert str(caught.value) == f"backend 'wt' on {server.address} has no server 'nope', 'gone'"
        assert len(server.received) == 1
    finally:
        server.close()


@pytest.mark.parametrize("status, own_mask, flags", [
    ("UP", 0, 0), ("no check", 0, 0), ("UP 1/2", 0, 0), ("DRAIN", 0, 0x08), ("DRAIN 1/2", 0, 0x08),
    ("DRAIN", 0x08, None), ("DOWN", 0, None), ("DOWN 1/2", 0, None), ("MAINT", 0, None),
    ("MAINT (via wt.app1-9090/app1-9090)", 0x01, None), ("NOLB", 0, None), (None, 0, None)])
def test_the_placement_servers_flags_where_its_status_shows_them(status, own_mask, flags):
    assert reading.placement_flags(status, own_mask) == flags

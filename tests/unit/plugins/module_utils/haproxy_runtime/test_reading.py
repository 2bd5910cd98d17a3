"""Reading server views from HAProxy (a stand-in answering captured replies; no HAProxy runs)."""

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import client, errors, reading
from haproxy_replies import INSTANCES


def test_client_reads_an_instance_in_one_exchange(fake_haproxy):
    api = client.RuntimeClient(fake_haproxy.address)
    view = reading.read_named(api, "wt", ["app1-9090"])["app1-9090"]
    assert (view.backend, view.server, view.status, view.admin_state, view.own_backend) == \
        ("wt", "app1-9090", "UP", "ready", "wt.app1-9090")
    assert fake_haproxy.received == ["show servers state; show stat -1 4 -1"]
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
        reading.read_named(client.RuntimeClient(fake_haproxy.address), "wt", ["app9-9090"])
    assert str(caught.value) == (f"backend 'wt' on {fake_haproxy.address} has no server 'app9-9090'; its servers "
                                 "are: app1-9090, app1-9091, app2-9090, app2-9091")


def test_servers_named_reads_once_and_names_every_missing_server(fake_haproxy):
    api = client.RuntimeClient(fake_haproxy.address)
    found = reading.read_named(api, "wt", ["app2-9090", "app1-9090"])
    assert list(found) == ["app2-9090", "app1-9090"] and found["app1-9090"].is_instance
    assert len(fake_haproxy.received) == 1
    with pytest.raises(errors.UnknownServer, match=r"has no server 'nope', 'gone'; its servers are: app1-9090, "):
        reading.read_named(api, "wt", ["app1-9090", "nope", "gone"])

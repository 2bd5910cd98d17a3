"""Reading only the instances asked about, against a real HAProxy (tests/integration/local_haproxy.py,
whose backend wt has the ids the role gives it): the same views as the whole table, in every state."""

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import client, reading

INSTANCES = ["app1-9090", "app1-9091", "app2-9090", "app2-9091"]


class Recording(client.RuntimeClient):
    """The client, keeping every command line it sends."""

    def __init__(self, address):
        super().__init__(address)
        self.lines = []

    def execute(self, command):
        self.lines.append(command)
        return super().execute(command)


# What the two reads, taken moments apart, must agree on; health checks (every 300 ms here) may move the
# operational state, status, check and session fields in between (tests/unit compares every field on
# captured replies).
STEADY = ("backend", "server", "address", "admin_state", "admin_flags", "admin_mask",
          "checks_enabled", "weight", "initial_weight", "own_backend", "tracks")


def comparable(view):
    return {key: value for key, value in view.as_dict().items() if key in STEADY}


@pytest.mark.parametrize("commands", [
    [],
    ["set server wt/app1-9090 state drain"],
    ["set server wt/app1-9090 state drain", "set server wt.app1-9090/app1-9090 state maint"],
    ["set server wt/app1-9091 state maint"],
    ["set server wt.app1-9091/app1-9091 state drain", "set server wt/app1-9091 state drain"],
    ["set server wt.app1-9091/app1-9091 state drain"],
    ["set server wt/app2-9090 state drain", "set server wt/app1-9090 weight 40"],
    ["set server wt.app2-9091/app2-9091 state ready"],
], ids=["configured", "drain", "maint-after-drain", "placement-maint", "both-drained", "own-drained",
        "down-and-drained", "enabled-from-config"])
def test_the_instances_alone_read_as_the_whole_table_does(haproxy_lab, commands):
    for command in commands:
        assert haproxy_lab.command(command) == "\n"
    api = Recording(haproxy_lab.admin_socket)
    alone = reading.read_instances(api, INSTANCES)
    whole = reading.read_whole_named(api, "wt", INSTANCES)
    assert alone is not None
    assert {name: comparable(view) for name, view in alone.items()} == \
        {name: comparable(view) for name, view in whole.items()}
    assert not any("show stat -1" in line for line in api.lines[:2])


def test_a_running_instance_costs_one_exchange_of_its_own_commands(haproxy_lab):
    api = Recording(haproxy_lab.admin_socket)
    views = reading.read_named(api, "wt", ["app1-9091", "app1-9090"])
    assert list(views) == ["app1-9091", "app1-9090"] and views["app1-9090"].status == "UP"
    assert api.lines == ["; ".join(reading.instance_commands("app1-9091") + reading.instance_commands("app1-9090"))]


def test_a_down_instance_reads_the_placement_servers_flags_too(haproxy_lab):
    api = Recording(haproxy_lab.admin_socket)
    assert reading.read_named(api, "wt", ["app2-9090"])["app2-9090"].status == "DOWN"
    assert api.lines[1:] == ["show servers state wt"]


def test_unknown_instances_are_all_named(haproxy_lab):
    with pytest.raises(reading.UnknownServer, match=r"has no server 'nope', 'gone'$"):
        reading.read_named(client.RuntimeClient(haproxy_lab.admin_socket), "wt", ["app1-9090", "nope", "gone"])

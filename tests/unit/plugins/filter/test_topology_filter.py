import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.filter.topology import FilterModule, topology

GROUPS = {"all": ["lb1", "app1", "db1"], "haproxy": ["lb1"], "wt": ["app1"]}


def test_registered_under_its_documented_name():
    assert FilterModule().filters() == {"topology": topology}


def test_reads_only_the_variables_it_needs():
    hostvars = {
        "lb1": {"ansible_host": "198.51.100.10"},
        "app1": {"ansible_host": "198.51.100.21", "wt_instances": 1, "wt_app_command": "/opt/app.wt",
                 "unrelated": object()},
        "db1": {"ansible_host": "db.example.com"},
    }
    result = topology(GROUPS, hostvars)
    assert result["instances"][0]["prefix"] == "app1-9090-"
    assert result["lb_hosts"] == ["lb1"]


def test_inventory_problems_become_one_filter_error():
    hostvars = {"lb1": {}, "app1": {"ansible_host": "nope", "wt_instances": "x"}, "db1": {}}
    with pytest.raises(AnsibleFilterError) as caught:
        topology(GROUPS, hostvars)
    message = str(caught.value)
    assert "the inventory is not a valid Wt fleet" in message
    assert "app1: ansible_host: 'nope' is not an IP address" in message


def test_group_names_are_parameters():
    groups = {"all": ["edge1", "web1"], "edge": ["edge1"], "web": ["web1"]}
    hostvars = {"edge1": {}, "web1": {"ansible_host": "10.1.1.1", "wt_instances": 2}}
    result = topology(groups, hostvars, haproxy_group="edge", wt_group="web")
    assert (result["haproxy_group"], result["wt_group"], len(result["instances"])) == ("edge", "web", 2)


def test_misuse_is_explained():
    with pytest.raises(AnsibleFilterError, match="groups | wtstack.fleet.topology"):
        topology(["lb1"], {})


class StrictVars(dict):
    """A host's variables that fail when one the filter has no business reading is read."""

    def __init__(self, values, readable):
        super().__init__(values)
        self.readable = readable

    def __getitem__(self, name):
        assert name in self.readable, f"read {name}"
        return super().__getitem__(name)


def test_vips_are_checked_against_the_addresses_of_hosts_outside_the_fleet():
    vips = ["198.51.100.50"]
    hostvars = {"lb1": {"ansible_host": "198.51.100.10", "haproxy_vips": vips},
                "lb2": {"ansible_host": "198.51.100.11", "haproxy_vips": vips},
                "app1": {"ansible_host": "198.51.100.21"},
                "db1": {"ansible_host": "198.51.100.50", "db_password": "never read"}}
    groups = {"all": ["lb1", "lb2", "app1", "db1"], "haproxy": ["lb1", "lb2"], "wt": ["app1"]}
    with pytest.raises(AnsibleFilterError, match="haproxy_vips.0..address: 198.51.100.50 is db1's ansible_host"):
        topology(groups, hostvars)
    hostvars["db1"] = StrictVars(hostvars["db1"], {"ansible_host"})
    hostvars["db1"]["ansible_host"] = "198.51.100.60"
    result = topology(groups, hostvars)
    assert [vip["address"] for vip in result["vips"]] == ["198.51.100.50"]
    assert [balancer["vrrp_address"] for balancer in result["balancers"]] == ["198.51.100.10", "198.51.100.11"]


def test_without_vips_hosts_outside_the_fleet_keep_their_addresses_unread():
    hostvars = {"lb1": {"ansible_host": "198.51.100.10"}, "app1": {"ansible_host": "198.51.100.21"},
                "db1": StrictVars({"ansible_host": "{{ undefined_here }}"}, {"wt_instances"})}
    assert topology(GROUPS, hostvars)["vips"] == []

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

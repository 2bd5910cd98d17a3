import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.filter.unknown_variables import FilterModule, unknown_variables

GROUPS = {"all": ["lb1", "app1", "db1"], "haproxy": ["lb1"], "wt": ["app1"]}


class Unreadable:
    """A value the filter must never template (only names are read, and the allow list)."""

    def __repr__(self):
        raise AssertionError("templated")


def test_registered_under_its_documented_name():
    assert FilterModule().filters() == {"unknown_variables": unknown_variables}


def test_reports_the_fleets_hosts_only_and_reads_only_names():
    hostvars = {
        "lb1": {"ansible_host": "198.51.100.10", "haproxy_tls_enabeld": Unreadable()},
        "app1": {"wt_instances": 1, "wt_app_verison": Unreadable(), "wt_app_version": Unreadable()},
        "db1": {"haproxy_socket": "/run/haproxy.sock"},  # another role's variable on a host outside the fleet
    }
    assert unknown_variables(GROUPS, hostvars) == [
        "lb1: haproxy_tls_enabeld: unknown variable; did you mean haproxy_tls_enabled?",
        "app1: wt_app_verison: unknown variable; did you mean wt_app_version?"]


def test_the_allow_list_comes_from_each_host_and_group_names_are_parameters():
    groups = {"all": ["edge1", "web1"], "edge": ["edge1"], "web": ["web1"]}
    hostvars = {"edge1": {"haproxy_site": 1, "wtstack_allowed_variables": ["haproxy_site"]},
                "web1": {"haproxy_site": 1}}
    assert unknown_variables(groups, hostvars, haproxy_group="edge", wt_group="web") == [
        "web1: haproxy_site: unknown variable; the haproxy role reads no such variable (see roles/haproxy/README.md); "
        "if it is your own, add it to wtstack_allowed_variables."]


def test_a_host_missing_from_hostvars_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="wtstack.fleet.unknown_variables"):
        unknown_variables(GROUPS, {"lb1": {}})

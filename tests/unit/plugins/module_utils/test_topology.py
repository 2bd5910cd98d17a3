import time

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import (
    TopologyError,
    build_topology,
    find_prefix_overlaps,
    generated_prefix,
)


def inventory(apps, lbs=None, extra_groups=None):
    """groups, hostvars for app hosts given as {name: hostvars} and one load balancer."""
    lbs = lbs if lbs is not None else {"lb1": {"ansible_host": "198.51.100.10"}}
    hostvars = {**lbs, **apps}
    groups = {"all": list(hostvars), "haproxy": list(lbs), "wt": list(apps), "ungrouped": []}
    for name, hosts in (extra_groups or {}).items():
        groups[name] = list(hosts)
        groups["all"] += [host for host in hosts if host not in groups["all"]]
    return groups, hostvars


def two_hosts(**overrides):
    apps = {
        "app1": {"ansible_host": "198.51.100.21", "wt_instances": 2},
        "app2": {"ansible_host": "198.51.100.22", "wt_instances": 2},
    }
    for host, values in overrides.items():
        apps[host] = {**apps.get(host, {}), **values}
    return inventory(apps)


def problems_of(groups, hostvars, **kwargs):
    with pytest.raises(TopologyError) as caught:
        build_topology(groups, hostvars, **kwargs)
    return [str(problem) for problem in caught.value.problems]


def assert_one_problem(groups, hostvars, host, variable, *words):
    problems = problems_of(groups, hostvars)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{host}: {variable}: "), problems[0]
    for word in words:
        assert word in problems[0], problems[0]


# --- the happy path -------------------------------------------------------

def test_design_example():
    groups, hostvars = inventory({
        "app1": {"ansible_host": "198.51.100.21", "wt_instances": 2},
        "app2": {"ansible_host": "198.51.100.22",
                 "wt_instances": [{"prefix": "app2a", "port": 9090}, {"prefix": "app2b", "port": 9091, "weight": 50}]},
    })
    # app2a/app2b are prefix-free (neither begins the other), so docs/design.md's inventory example is valid.
    topology = build_topology(groups, hostvars)
    assert topology.lb_hosts == ("lb1",)
    assert topology.app_hosts == ("app1", "app2")
    summary = [(i.host, i.prefix, i.connect_address, i.port, i.weight, i.server_name, i.unit_name)
               for i in topology.instances]
    assert summary == [
        ("app1", "app1-9090-", "198.51.100.21", 9090, 100, "app1-9090", "wt@9090.service"),
        ("app1", "app1-9091-", "198.51.100.21", 9091, 100, "app1-9091", "wt@9091.service"),
        ("app2", "app2a", "198.51.100.22", 9090, 100, "app2-9090", "wt@9090.service"),
        ("app2", "app2b", "198.51.100.22", 9091, 50, "app2-9091", "wt@9091.service"),
    ]


def test_to_dict_is_plain_data_grouped_by_host():
    data = build_topology(*two_hosts()).to_dict()
    assert set(data) == {"haproxy_group", "wt_group", "lb_hosts", "app_hosts", "instances", "instances_by_host",
                         "balancers", "proxy_addresses", "vips"}
    assert data["vips"] == []
    assert [i["port"] for i in data["instances_by_host"]["app2"]] == [9090, 9091]
    assert data["instances"][0] == {
        "host": "app1", "prefix": "app1-9090-", "listen_address": "198.51.100.21",
        "connect_address": "198.51.100.21", "port": 9090, "weight": 100, "server_name": "app1-9090",
        "backend_name": "wt.app1-9090", "unit_name": "wt@9090.service", "prefix_generated": True,
    }


def test_base_port_and_string_count_from_extra_vars():
    topology = build_topology(*two_hosts(app1={"wt_base_port": "10000", "wt_instances": "3"}))
    assert [i.port for i in topology.instances_on("app1")] == [10000, 10001, 10002]


def test_list_entries_default_their_port_by_position():
    topology = build_topology(*two_hosts(app1={"wt_instances": [{}, {"weight": 0}, None]}))
    assert [(i.port, i.weight) for i in topology.instances_on("app1")] == [(9090, 100), (9091, 0), (9092, 100)]


def test_listen_on_every_address_only_when_asked_and_connect_to_ansible_host():
    topology = build_topology(*two_hosts(app1={"wt_listen_address": "0.0.0.0"}))
    first = topology.instances_on("app1")[0]
    assert (first.listen_address, first.connect_address) == ("0.0.0.0", "198.51.100.21")


def test_separate_connect_address_and_ipv6():
    topology = build_topology(*two_hosts(app1={"wt_listen_address": "2001:db8::21"},
                                         app2={"wt_listen_address": "10.0.0.22", "wt_connect_address": "10.0.0.122"}))
    assert topology.instances_on("app1")[0].connect_address == "2001:db8::21"
    assert topology.instances_on("app2")[0].connect_address == "10.0.0.122"


def test_zero_instances_on_one_host_is_allowed():
    topology = build_topology(*two_hosts(app2={"wt_instances": 0}))
    assert topology.instances_on("app2") == ()
    assert topology.to_dict()["instances_by_host"]["app2"] == []


def test_host_may_be_both_balancer_and_app_host():
    groups, hostvars = inventory({"app1": {"ansible_host": "198.51.100.21", "wt_instances": 1}},
                                 lbs={"app1": {"ansible_host": "198.51.100.21"}})
    assert build_topology(groups, hostvars).lb_hosts == ("app1",)


def test_other_group_names():
    groups, hostvars = two_hosts()
    groups["edge"], groups["app"] = groups.pop("haproxy"), groups.pop("wt")
    topology = build_topology(groups, hostvars, haproxy_group="edge", wt_group="app")
    assert topology.haproxy_group == "edge" and len(topology.instances) == 4


def test_hosts_outside_the_fleet_are_ignored():
    groups, hostvars = inventory({"app1": {"ansible_host": "198.51.100.21"}},
                                 extra_groups={"db": ["db1"]})
    hostvars["db1"] = {"ansible_host": "db.example.com", "wt_typo": 1}
    assert len(build_topology(groups, hostvars).instances) == 1


# --- prefixes: the wt1/wt10 trap and stability ------------------------------

def test_seed_style_prefixes_wt1_and_wt10_are_refused():
    apps = {f"app{n}": {"ansible_host": f"198.51.100.{n}", "wt_instances": [{"prefix": f"wt{n}"}]}
            for n in range(1, 11)}
    problems = problems_of(*inventory(apps))
    assert len(problems) == 1
    assert problems[0].startswith("app10: wt_instances[0].prefix: ")
    assert "'wt10' begins with 'wt1' of app1" in problems[0]


def test_generated_prefixes_never_overlap_even_for_tricky_host_names():
    # "a" port 1090 against "a-1090" would overlap if '-' were kept in host tokens.
    apps = {name: {"ansible_host": f"198.51.100.{n}", "wt_instances": 11, "wt_base_port": 1090}
            for n, name in enumerate(["a", "a-1090", "a.1090", "a1", "a10", "a_1"], start=1)}
    del apps["a_1"]  # a-1090 and a_1090 share the token "a_1090"; tested below
    topology = build_topology(*inventory(apps))
    assert find_prefix_overlaps([i.prefix for i in topology.instances]) == []


def test_hosts_whose_generated_prefixes_collide_are_told_to_set_one():
    apps = {"app-1": {"ansible_host": "198.51.100.1"}, "app_1": {"ansible_host": "198.51.100.2"}}
    problems = problems_of(*inventory(apps))
    assert problems == ["app_1: wt_instances[0] (generated prefix): prefix 'app_1-9090-' is already used by "
                        "app-1 wt_instances[0]; set wt_instances[0].prefix explicitly."]


def test_prefixes_are_stable_when_hosts_and_instances_come_and_go():
    before = {i.server_name: i.prefix for i in build_topology(*two_hosts()).instances}
    groups, hostvars = inventory({
        "app0": {"ansible_host": "198.51.100.20", "wt_instances": 1},       # new host first in the group
        "app1": {"ansible_host": "198.51.100.21", "wt_instances": 3},       # grown
        "app2": {"ansible_host": "198.51.100.22", "wt_instances": 1},       # shrunk
    })
    after = {i.server_name: i.prefix for i in build_topology(groups, hostvars).instances}
    for name in set(before) & set(after):
        assert before[name] == after[name]
    assert set(before) - set(after) == {"app2-9091"}
    assert set(after) - set(before) == {"app0-9090", "app1-9092"}


def test_listing_instances_by_port_keeps_prefixes_when_one_is_removed_from_the_middle():
    three = [{"port": 9090}, {"port": 9091}, {"port": 9092}]
    before = build_topology(*two_hosts(app1={"wt_instances": three})).instances_on("app1")
    after = build_topology(*two_hosts(app1={"wt_instances": [three[0], three[2]]})).instances_on("app1")
    assert [i.prefix for i in after] == [before[0].prefix, before[2].prefix]


def test_find_prefix_overlaps():
    assert find_prefix_overlaps(["wt1", "wt2", "wt10", "wt11", "x"]) == [("wt1", "wt10"), ("wt1", "wt11")]
    assert find_prefix_overlaps(["a-", "a-b", "ab"]) == [("a-", "a-b")]
    assert find_prefix_overlaps(["wt1-", "wt10-", "wt2-"]) == []


def test_generated_prefix_format():
    assert generated_prefix("app1.example.com", 9090) == "app1.example.com-9090-"
    assert generated_prefix("web-1", 9091) == "web_1-9091-"


# --- every validation error names host and variable -------------------------

@pytest.mark.parametrize("overrides, host, variable, words", [
    ({"app1": {"wt_instances": "two"}}, "app1", "wt_instances", ["'two' is neither a whole number nor a list"]),
    ({"app1": {"wt_instances": 2.5}}, "app1", "wt_instances", ["neither a whole number"]),
    ({"app1": {"wt_instances": True}}, "app1", "wt_instances", ["neither a whole number"]),
    ({"app1": {"wt_instances": -1}}, "app1", "wt_instances", ["negative"]),
    ({"app1": {"wt_instances": {"prefix": "x"}}}, "app1", "wt_instances", ["neither a whole number nor a list"]),
    ({"app1": {"wt_instances": ["x"]}}, "app1", "wt_instances[0]", ["not a mapping"]),
    ({"app1": {"wt_instances": [{"prefx": "a-"}]}}, "app1", "wt_instances[0].prefx", ["did you mean prefix?"]),
    ({"app1": {"wt_instances": [{"colour": "a-"}]}}, "app1", "wt_instances[0].colour", ["allowed keys are"]),
    ({"app1": {"wt_instances": [{"port": 80}]}}, "app1", "wt_instances[0].port",
     ["80 is out of range", "1024 to 65535"]),
    ({"app1": {"wt_instances": [{"port": 70000}]}}, "app1", "wt_instances[0].port", ["out of range"]),
    ({"app1": {"wt_instances": [{"port": "http"}]}}, "app1", "wt_instances[0].port", ["not a whole number"]),
    ({"app1": {"wt_instances": [{"port": 9090}, {"port": 9090}]}}, "app1", "wt_instances[1].port",
     ["port 9090 is already used by wt_instances[0]"]),
    ({"app1": {"wt_instances": [{}, {"port": 9090}]}}, "app1", "wt_instances[1].port", ["already used"]),
    ({"app1": {"wt_instances": [{"weight": 300}]}}, "app1", "wt_instances[0].weight", ["0 to 256"]),
    ({"app1": {"wt_instances": [{"weight": -1}]}}, "app1", "wt_instances[0].weight", ["out of range"]),
    ({"app1": {"wt_instances": [{"prefix": "a b"}]}}, "app1", "wt_instances[0].prefix", ["not URL-safe"]),
    ({"app1": {"wt_instances": [{"prefix": "a&wtd="}]}}, "app1", "wt_instances[0].prefix", ["not URL-safe"]),
    ({"app1": {"wt_instances": [{"prefix": ""}]}}, "app1", "wt_instances[0].prefix", ["not a non-empty string"]),
    ({"app1": {"wt_instances": [{"prefix": 12}]}}, "app1", "wt_instances[0].prefix", ["not a non-empty string"]),
    ({"app1": {"wt_instances": [{"prefix": "x" * 65}]}}, "app1", "wt_instances[0].prefix", ["longer than 64"]),
    ({"app1": {"wt_instances": [{"prefix": "app2-9090-"}]}}, "app2", "wt_instances[0] (generated prefix)",
     ["'app2-9090-' is already used by app1 wt_instances[0]", "set wt_instances[0].prefix explicitly"]),
    ({"app1": {"wt_base_port": 65535}}, "app1", "wt_instances", ["run past port 65535"]),
    ({"app1": {"wt_base_port": 22}}, "app1", "wt_base_port", ["out of range"]),
    ({"app1": {"ansible_host": "app1.example.com"}}, "app1", "ansible_host",
     ["'app1.example.com' is not an IP address", "set wt_listen_address"]),
    ({"app1": {"wt_listen_address": "300.1.1.1"}}, "app1", "wt_listen_address", ["not an IP address"]),
    ({"app1": {"wt_listen_address": "0.0.0.0", "ansible_host": "app1.example.com"}}, "app1", "ansible_host",
     ["set wt_connect_address"]),
    ({"app1": {"wt_connect_address": "::"}}, "app1", "wt_connect_address", ["not an address HAProxy can connect to"]),
    ({"app1": {"wt_instance": 2}}, "app1", "wt_instance", ["did you mean wt_instances?"]),
    ({"app1": {"wt_listen_adress": "10.0.0.1"}}, "app1", "wt_listen_adress", ["did you mean wt_listen_address?"]),
    ({"app2": {"ansible_host": "198.51.100.21", "wt_instances": 1}}, "app2", "wt_instances[0].port",
     ["198.51.100.21:9090 is also where app1 wt_instances[0] listens"]),
])
def test_bad_input_names_host_and_variable(overrides, host, variable, words):
    assert_one_problem(*two_hosts(**overrides), host, variable, *words)


def test_empty_and_missing_groups():
    groups, hostvars = two_hosts()
    groups["haproxy"] = []
    del groups["wt"]
    problems = problems_of(groups, hostvars)
    assert problems == [
        "inventory: groups['haproxy']: the group of load balancers has no hosts; add hosts to group 'haproxy' "
        "or set wtstack_haproxy_group to the group that holds them.",
        "inventory: groups['wt']: the group of Wt application hosts does not exist; add hosts to group 'wt' "
        "or set wtstack_wt_group to the group that holds them.",
    ]


def test_fleet_without_any_instance():
    problems = problems_of(*two_hosts(app1={"wt_instances": 0}, app2={"wt_instances": []}))
    assert problems == ["inventory: wt_instances: the hosts of group 'wt' declare no Wt instances at all; "
                        "give at least one host wt_instances: 1 or more."]


def test_host_with_instances_in_neither_group():
    groups, hostvars = two_hosts()
    groups["all"].append("app3")
    hostvars["app3"] = {"ansible_host": "198.51.100.23", "wt_instances": 2}
    assert problems_of(groups, hostvars) == [
        "app3: wt_instances: this host declares Wt instances but is in neither group; "
        "add it to group 'wt' or remove wt_instances."]


def test_balancer_with_instances_outside_the_wt_group():
    groups, hostvars = two_hosts()
    hostvars["lb1"]["wt_instances"] = 2
    assert problems_of(groups, hostvars) == [
        "lb1: wt_instances: this load balancer declares Wt instances but is not in group 'wt'; "
        "add it to group 'wt' as well (a host may be in both) or remove wt_instances."]


def test_instance_on_the_balancers_own_port():
    groups, hostvars = inventory({"app1": {"ansible_host": "198.51.100.21", "wt_instances": [{"port": 8080}]}},
                                 lbs={"app1": {"ansible_host": "198.51.100.21", "haproxy_bind_port": 8080}})
    hostvars["app1"]["haproxy_bind_port"] = 8080
    assert_one_problem(groups, hostvars, "app1", "wt_instances[0].port", "haproxy_bind_port")


def test_every_problem_is_reported_at_once():
    problems = problems_of(*two_hosts(app1={"wt_instances": "x"}, app2={"wt_instances": [{"port": 1}, {"prefx": 1}]}))
    assert sorted(p.split(": ")[0:2] for p in problems) == [
        ["app1", "wt_instances"], ["app2", "wt_instances[0].port"], ["app2", "wt_instances[1].prefx"]]


def test_server_names_that_collide_after_sanitising():
    apps = {"app/1": {"ansible_host": "198.51.100.1", "wt_instances": [{"prefix": "a-"}]},
            "app?1": {"ansible_host": "198.51.100.2", "wt_instances": [{"prefix": "b-"}]}}
    assert_one_problem(*inventory(apps), "app?1", "inventory_hostname", "'app_1-9090' collides with app/1's")


# --- scale --------------------------------------------------------------------

def test_ten_thousand_instances_in_well_under_a_second():
    apps = {f"app{n}": {"ansible_host": f"10.0.{n // 250}.{n % 250 + 1}", "wt_instances": 20} for n in range(500)}
    groups, hostvars = inventory(apps)
    started = time.perf_counter()
    topology = build_topology(groups, hostvars)
    elapsed = time.perf_counter() - started
    assert len(topology.instances) == 10_000
    assert len({i.prefix for i in topology.instances}) == 10_000
    assert elapsed < 1.0, f"10,000 instances took {elapsed:.2f}s"


def test_overlap_among_thousands_is_found():
    apps = {f"app{n}": {"ansible_host": f"10.0.{n // 250}.{n % 250 + 1}", "wt_instances": 10} for n in range(100)}
    apps["app7"]["wt_instances"] = [{"prefix": "app70-9090"}]  # begins app70's generated "app70-9090-"
    problems = problems_of(*inventory(apps))
    assert len(problems) == 1 and "'app70-9090-' begins with 'app70-9090' of app7" in problems[0]


# --- load balancers: where HAProxy connects from, whom Wt trusts --------------

def test_balancers_are_trusted_at_their_ansible_host_by_default():
    groups, hostvars = inventory({"app1": {"ansible_host": "198.51.100.21"}},
                                 lbs={"lb1": {"ansible_host": "198.51.100.10"}, "lb2": {}})
    data = build_topology(groups, hostvars).to_dict()
    assert data["balancers"] == [
        {"host": "lb1", "source_address": None, "proxy_address": "198.51.100.10", "vrrp_address": None},
        {"host": "lb2", "source_address": None, "proxy_address": "lb2", "vrrp_address": None},
    ]
    assert data["proxy_addresses"] == ["198.51.100.10", "lb2"]


@pytest.mark.parametrize("source, expected", [
    ("127.0.10.1", "127.0.10.1"), ("2001:db8::10", "2001:db8::10"), ("[2001:db8::10]", "2001:db8::10"),
    (None, "198.51.100.10"), ("", "198.51.100.10"),
])
def test_source_address_is_where_the_balancer_connects_from_and_is_trusted(source, expected):
    groups, hostvars = inventory({"app1": {"ansible_host": "198.51.100.21"}},
                                 lbs={"lb1": {"ansible_host": "198.51.100.10", "haproxy_source_address": source}})
    topology = build_topology(groups, hostvars)
    assert topology.balancers[0].source_address == (expected if source else None)
    assert topology.to_dict()["proxy_addresses"] == [expected]


@pytest.mark.parametrize("source, words", [
    ("lb1.example.com", ["'lb1.example.com' is not an IP address", "connect to the Wt instances from"]),
    ("10.0.0.0/8", ["is not an IP address"]),
    (42, ["42 is not an IP address"]),
    ("0.0.0.0", ["not a single address"]),
    ("::", ["not a single address"]),
])
def test_a_bad_source_address_names_the_balancer_and_the_variable(source, words):
    groups, hostvars = inventory({"app1": {"ansible_host": "198.51.100.21"}},
                                 lbs={"lb1": {"ansible_host": "198.51.100.10", "haproxy_source_address": source}})
    assert_one_problem(groups, hostvars, "lb1", "haproxy_source_address", *words)

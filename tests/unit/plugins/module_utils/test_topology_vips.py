"""Floating VIPs (keepalived, VRRP) in the topology: holders, router ids, priorities, and every refusal."""

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import (
    TopologyError,
    build_topology,
    vrrp_priorities,
)

LB_ADDRESSES = {"lb1": "198.18.1.2", "lb2": "198.18.1.3", "lb3": "198.18.1.4"}


def fleet(vips, balancers=2, lb_vars=None, app_vars=None, others=None):
    """groups, hostvars: `balancers` balancers sharing `vips` (as group_vars would), app1, and other hosts."""
    lbs = list(LB_ADDRESSES)[:balancers]
    hostvars = {lb: {"ansible_host": LB_ADDRESSES[lb]} for lb in lbs}
    if vips is not None:
        for lb in lbs:
            hostvars[lb]["haproxy_vips"] = vips
    for lb, values in (lb_vars or {}).items():
        hostvars[lb].update(values)
    hostvars["app1"] = {"ansible_host": "198.18.1.21", "wt_instances": 1, **(app_vars or {})}
    hostvars.update(others or {})
    groups = {"all": list(hostvars), "haproxy": lbs, "wt": ["app1"], "ungrouped": list(others or {})}
    return groups, hostvars


def problems_of(groups, hostvars):
    with pytest.raises(TopologyError) as caught:
        build_topology(groups, hostvars)
    return [str(problem) for problem in caught.value.problems]


def assert_one_problem(groups, hostvars, host, variable, *words):
    problems = problems_of(groups, hostvars)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{host}: {variable}: "), problems[0]
    for word in words:
        assert word in problems[0], problems[0]


def summary(topology):
    return [(vip.address, vip.holder, vip.router_id, tuple(host for host, dummy in vip.priorities))
            for vip in topology.vips]


# --- the happy paths ------------------------------------------------------------

def test_one_vip_on_two_balancers():
    topology = build_topology(*fleet(["198.18.1.10"]))
    (vip,) = topology.vips
    assert (vip.address, vip.prefix_length, vip.family, vip.holder, vip.router_id, vip.origin) == (
        "198.18.1.10", 32, 4, "lb1", 51, "haproxy_vips[0]")
    assert vip.priorities == (("lb1", 250), ("lb2", 240))
    assert [balancer.vrrp_address for balancer in topology.balancers] == ["198.18.1.2", "198.18.1.3"]


def test_to_dict_is_plain_data():
    data = build_topology(*fleet(["198.18.1.10/24", {"address": "198.18.1.11/24", "router_id": 7}])).to_dict()
    assert data["vips"] == [
        {"address": "198.18.1.10", "prefix_length": 24, "family": 4, "holder": "lb1", "router_id": 51,
         "priorities": [{"host": "lb1", "priority": 250}, {"host": "lb2", "priority": 240}], "name": "wtstack_vip_51"},
        {"address": "198.18.1.11", "prefix_length": 24, "family": 4, "holder": "lb2", "router_id": 7,
         "priorities": [{"host": "lb2", "priority": 250}, {"host": "lb1", "priority": 240}], "name": "wtstack_vip_7"},
    ]
    assert data["balancers"] == [
        {"host": "lb1", "source_address": None, "proxy_address": "198.18.1.2", "vrrp_address": "198.18.1.2"},
        {"host": "lb2", "source_address": None, "proxy_address": "198.18.1.3", "vrrp_address": "198.18.1.3"},
    ]


def test_three_vips_spread_over_two_balancers():
    topology = build_topology(*fleet(["198.18.1.10", "198.18.1.11", "198.18.1.12"]))
    assert summary(topology) == [
        ("198.18.1.10", "lb1", 51, ("lb1", "lb2")),
        ("198.18.1.11", "lb2", 52, ("lb2", "lb1")),
        ("198.18.1.12", "lb1", 53, ("lb1", "lb2")),
    ]


def test_the_others_follow_the_holder_in_group_order_rotating():
    topology = build_topology(*fleet(["198.18.1.10", "198.18.1.11", "198.18.1.12"], balancers=3))
    assert [vip.priorities for vip in topology.vips] == [
        (("lb1", 250), ("lb2", 240), ("lb3", 230)),
        (("lb2", 250), ("lb3", 240), ("lb1", 230)),
        (("lb3", 250), ("lb1", 240), ("lb2", 230)),
    ]


def test_a_dead_balancers_vips_spread_over_the_survivors():
    topology = build_topology(*fleet([f"198.18.1.{n}" for n in range(10, 16)], balancers=3))
    for dead in ("lb1", "lb2", "lb3"):
        # Each VIP goes to its first live balancer in priority order.
        takers = [next(host for host, dummy in vip.priorities if host != dead)
                  for vip in topology.vips if vip.holder == dead]
        assert sorted(takers) == sorted(set(LB_ADDRESSES) - {dead}), (dead, takers)


def test_an_explicit_holder_is_honoured_and_the_others_keep_their_place():
    topology = build_topology(*fleet(["198.18.1.10", {"address": "198.18.1.11", "holder": "lb1"}, "198.18.1.12"],
                                     balancers=3))
    assert summary(topology) == [
        ("198.18.1.10", "lb1", 51, ("lb1", "lb2", "lb3")),
        ("198.18.1.11", "lb1", 52, ("lb1", "lb3", "lb2")),  # lb1's second VIP fails over to lb3 first
        ("198.18.1.12", "lb3", 53, ("lb3", "lb1", "lb2")),
    ]


def test_explicit_router_id_and_base():
    vips = [{"address": "198.18.1.10", "router_id": "200"}, "198.18.1.11", "198.18.1.12"]
    topology = build_topology(*fleet(vips, lb_vars={lb: {"haproxy_vrrp_router_id_base": "100"}
                                                    for lb in ("lb1", "lb2")}))
    assert [vip.router_id for vip in topology.vips] == [200, 102, 103]
    assert [vip.name for vip in topology.vips] == ["wtstack_vip_200", "wtstack_vip_102", "wtstack_vip_103"]


@pytest.mark.parametrize("base, last", [(0, 3), (252, 255)])
def test_every_base_that_keeps_the_ids_in_range_is_accepted(base, last):
    vips = ["198.18.1.10", "198.18.1.11", "198.18.1.12"]
    lb_vars = {lb: {"haproxy_vrrp_router_id_base": base} for lb in ("lb1", "lb2")}
    assert build_topology(*fleet(vips, lb_vars=lb_vars)).vips[-1].router_id == last


def test_appending_a_vip_keeps_the_others_ids_holders_and_priorities():
    vips = ["198.18.1.10", {"address": "198.18.1.11", "holder": "lb3"}, "198.18.1.12", "198.18.1.13"]
    before = build_topology(*fleet(vips, balancers=3)).vips
    after = build_topology(*fleet(vips + ["198.18.1.14", "198.18.1.15"], balancers=3)).vips
    assert after[:len(before)] == before
    assert [vip.router_id for vip in after[len(before):]] == [55, 56]


def test_stated_networks_ipv6_and_haproxy_vrrp_address():
    lb_vars = {"lb1": {"haproxy_vrrp_address": "2001:db8:1::2"}, "lb2": {"haproxy_vrrp_address": "[2001:db8:1::3]"}}
    topology = build_topology(*fleet(["2001:db8:1::10/64", "2001:db8:1:0::11/128"], lb_vars=lb_vars))
    assert [(vip.address, vip.prefix_length, vip.family) for vip in topology.vips] == [
        ("2001:db8:1::10", 64, 6), ("2001:db8:1::11", 128, 6)]
    assert [balancer.vrrp_address for balancer in topology.balancers] == ["2001:db8:1::2", "2001:db8:1::3"]
    assert [balancer.proxy_address for balancer in topology.balancers] == ["198.18.1.2", "198.18.1.3"]


def test_a_full_length_prefix_states_no_network():
    topology = build_topology(*fleet(["198.18.9.10/32"]))
    assert (topology.vips[0].address, topology.vips[0].prefix_length) == ("198.18.9.10", 32)


@pytest.mark.parametrize("vips", [None, [], ""])
def test_no_vips_no_vrrp(vips):
    lb_vars = {"lb1": {"haproxy_vrrp_address": "not checked without VIPs"}}
    topology = build_topology(*fleet(vips, balancers=1, lb_vars=lb_vars))
    assert topology.vips == () and topology.balancers[0].vrrp_address is None


def test_unset_on_one_balancer_and_empty_on_another_agree():
    groups, hostvars = fleet(None)
    hostvars["lb2"]["haproxy_vips"] = []
    assert build_topology(groups, hostvars).vips == ()


def test_group_vars_with_numbers_from_extra_vars_agree():
    lb_vars = {"lb1": {"haproxy_vrrp_router_id_base": 60}, "lb2": {"haproxy_vrrp_router_id_base": "60"}}
    assert build_topology(*fleet(["198.18.1.10"], lb_vars=lb_vars)).vips[0].router_id == 61


@pytest.mark.parametrize("count", [2, 3, 24, 25, 26, 100, 241, 242, 250, 251, 300])
def test_priorities_stay_within_vrrp_range_and_descend(count):
    hosts = [f"lb{n}" for n in range(count)]
    priorities = [priority for dummy, priority in vrrp_priorities(hosts, hosts[count // 2], rank=3)]
    assert priorities[0] == 250 and all(1 <= priority <= 254 for priority in priorities)
    assert priorities == sorted(priorities, reverse=True)
    if count <= 250:
        assert len(set(priorities)) == count
    if count <= 24:
        assert priorities == list(range(250, 250 - 10 * count, -10))


# --- refusals ---------------------------------------------------------------------

@pytest.mark.parametrize("vip, words", [
    ("vip.example.com", ["'vip.example.com' is not an IP address", "198.18.1.10/24 to state its network"]),
    ({"address": 42}, ["42 is not an IP address"]),
    ("198.18.1.300", ["is not an IP address"]),
    ("198.18.1.10/33", ["'198.18.1.10/33' has a bad prefix length", "from 1 to 32"]),
    ("198.18.1.10/0", ["bad prefix length"]),
    ("198.18.1.10/", ["bad prefix length"]),
    ("198.18.1.10/24/1", ["bad prefix length"]),
    ("198.18.1.10/255.255.255.0", ["bad prefix length"]),
    ("2001:db8::10/129", ["bad prefix length", "from 1 to 128"]),
    ("0.0.0.0", ["0.0.0.0 is an unspecified address", "routable unicast address that clients reach"]),
    ("::", [":: is an unspecified address"]),
    ("127.0.10.9", ["127.0.10.9 is a loopback address"]),
    ("::1", ["::1 is a loopback address"]),
    ("224.0.0.18", ["224.0.0.18 is a multicast address"]),
    ("ff02::12", ["ff02::12 is a multicast address"]),
    ("169.254.1.1", ["169.254.1.1 is a link-local address"]),
    ("fe80::10", ["fe80::10 is a link-local address"]),
    ("255.255.255.255", ["255.255.255.255 is the broadcast address"]),
    ("198.18.1.0/24", ["198.18.1.0 is the network address of 198.18.1.0/24", "correct the prefix length"]),
    ("198.18.1.255/24", ["198.18.1.255 is the broadcast address of 198.18.1.0/24"]),
])
def test_a_bad_vip_address(vip, words):
    assert_one_problem(*fleet([vip]), "lb1", "haproxy_vips[0].address", *words)


def test_a_duplicate_vip_names_both_positions():
    assert_one_problem(*fleet(["198.18.1.10", "198.18.1.11", {"address": "198.18.1.10/24"}]), "lb1",
                       "haproxy_vips[2].address", "198.18.1.10 is also haproxy_vips[0]; list each VIP once.")


@pytest.mark.parametrize("owner_vars, owner, variable", [
    ({"app1": {"ansible_host": "198.18.1.10"}}, "app1", "ansible_host"),
    ({"app1": {"wt_listen_address": "198.18.1.10"}}, "app1", "wt_listen_address"),
    ({"app1": {"wt_connect_address": "198.18.1.10"}}, "app1", "wt_connect_address"),
    ({"lb2": {"haproxy_source_address": "198.18.1.10"}}, "lb2", "haproxy_source_address"),
    ({"db1": {"ansible_host": "198.18.1.10"}}, "db1", "ansible_host"),  # outside the fleet, still on the network
    ({"db1": {"haproxy_vrrp_address": "198.18.1.10"}}, "db1", "haproxy_vrrp_address"),
])
def test_a_vip_that_is_a_hosts_own_address(owner_vars, owner, variable):
    others = {"db1": {"ansible_host": "198.18.1.30"}}
    groups, hostvars = fleet(["198.18.1.10"], others=others)
    for host, values in owner_vars.items():
        hostvars[host].update(values)
    assert_one_problem(groups, hostvars, "lb1", "haproxy_vips[0].address",
                       f"198.18.1.10 is {owner}'s {variable}; keepalived adds a VIP to whichever balancer holds it")


def test_a_vip_that_is_a_balancers_vrrp_address():
    # lb2's VRRP address is also the VIP: named as lb2's own address, not as a VRRP problem.
    lb_vars = {"lb2": {"haproxy_vrrp_address": "198.18.1.10"}}
    assert_one_problem(*fleet(["198.18.1.10"], lb_vars=lb_vars), "lb1", "haproxy_vips[0].address",
                       "is lb2's haproxy_vrrp_address")


def test_a_vip_that_haproxy_binds_to():
    lb_vars = {lb: {"haproxy_bind_address": "198.18.1.10"} for lb in ("lb1", "lb2")}
    assert_one_problem(*fleet(["198.18.1.10"], lb_vars=lb_vars), "lb1", "haproxy_vips[0].address",
                       "198.18.1.10 is lb1's haproxy_bind_address", "leave haproxy_bind_address at '*'")


def test_addresses_that_are_no_ip_are_no_vips_address():
    lb_vars = {lb: {"haproxy_bind_address": "*"} for lb in ("lb1", "lb2")}
    others = {"db1": {"ansible_host": "db1.example.com", "haproxy_bind_address": 5}}
    assert build_topology(*fleet(["198.18.1.10"], lb_vars=lb_vars, others=others)).vips


def test_an_ipv6_vip_on_ipv4_balancers():
    problems = problems_of(*fleet(["2001:db8::10"]))
    assert problems == [
        f"{lb}: ansible_host: {address} is IPv4 but the VIPs are IPv6 (VRRP for a VIP runs in the VIP's family); "
        "set haproxy_vrrp_address to this balancer's IPv6 address."
        for lb, address in (("lb1", "198.18.1.2"), ("lb2", "198.18.1.3"))]


def test_one_ipv6_balancer_among_ipv4_vips():
    lb_vars = {"lb2": {"haproxy_vrrp_address": "2001:db8::3"}}
    assert_one_problem(*fleet(["198.18.1.10"], lb_vars=lb_vars), "lb2", "haproxy_vrrp_address",
                       "2001:db8::3 is IPv6 but the VIPs are IPv4")


def test_vips_of_both_families():
    assert_one_problem(*fleet(["198.18.1.10", "2001:db8::10"]), "lb1", "haproxy_vips[1].address",
                       "2001:db8::10 is IPv6 but the balancers' VRRP addresses are IPv4", "give an IPv4 VIP")


def test_a_balancer_outside_the_vips_network():
    lb_vars = {"lb2": {"haproxy_vrrp_address": "198.18.2.3"}}
    assert_one_problem(*fleet(["198.18.1.10/24", "198.18.1.11/24"], lb_vars=lb_vars),
                       "lb2", "haproxy_vrrp_address",
                       "198.18.2.3 is outside 198.18.1.0/24, the network of haproxy_vips[0] (198.18.1.10/24), "
                       "haproxy_vips[1] (198.18.1.11/24); a VIP moves only between balancers on its network")


def test_a_balancer_outside_the_vips_network_by_its_ansible_host():
    lb_vars = {"lb1": {"haproxy_vrrp_address": "198.18.1.9"}}
    assert_one_problem(*fleet(["198.18.1.10/30"], lb_vars=lb_vars), "lb2", "ansible_host",
                       "198.18.1.3 is outside 198.18.1.8/30", "set haproxy_vrrp_address")


@pytest.mark.parametrize("holder, words", [
    ("lb3", ["'lb3' is not a load balancer of group 'haproxy'; did you mean lb2?", "leave holder out"]),
    ("app1", ["'app1' is not a load balancer", "give one of lb1, lb2"]),
    ("", ["'' is not a load balancer"]),
    (["lb1"], ["['lb1'] is not a load balancer"]),
])
def test_a_holder_that_is_no_balancer(holder, words):
    assert_one_problem(*fleet([{"address": "198.18.1.10", "holder": holder}]), "lb1", "haproxy_vips[0].holder", *words)


@pytest.mark.parametrize("router_id, words", [
    (0, ["0 is out of range; give a number from 1 to 255."]),
    (256, ["256 is out of range"]),
    ("fifty", ["'fifty' is not a whole number; give one from 1 to 255."]),
    (True, ["True is not a whole number"]),
    (51.5, ["51.5 is not a whole number"]),
])
def test_a_bad_router_id(router_id, words):
    assert_one_problem(*fleet([{"address": "198.18.1.10", "router_id": router_id}]), "lb1",
                       "haproxy_vips[0].router_id", *words)


def test_an_explicit_router_id_that_a_generated_one_has():
    vips = ["198.18.1.10", "198.18.1.11", {"address": "198.18.1.12", "router_id": 52}]
    assert problems_of(*fleet(vips)) == [
        "lb1: haproxy_vips[2].router_id: 52 is also the router id of haproxy_vips[1] (generated: "
        "haproxy_vrrp_router_id_base 50 + 1 + 1); give each VIP its own router id."]


def test_two_explicit_router_ids_alike():
    vips = [{"address": "198.18.1.10", "router_id": 9}, "198.18.1.11", {"address": "198.18.1.12", "router_id": 9}]
    assert_one_problem(*fleet(vips), "lb1", "haproxy_vips[2].router_id",
                       "9 is also the router id of haproxy_vips[0] (its router_id)")


@pytest.mark.parametrize("base, words", [
    (253, ["253 gives haproxy_vips[2] router id 256, outside VRRP's 1 to 255; give a base from 0 to 252."]),
    (-1, ["-1 gives haproxy_vips[0] router id 0, outside VRRP's 1 to 255"]),
    ("high", ["'high' is not a whole number; give one from 0 to 252."]),
])
def test_a_base_that_puts_a_generated_id_out_of_range(base, words):
    lb_vars = {lb: {"haproxy_vrrp_router_id_base": base} for lb in ("lb1", "lb2")}
    assert_one_problem(*fleet(["198.18.1.10", "198.18.1.11", "198.18.1.12"], lb_vars=lb_vars), "lb1",
                       "haproxy_vrrp_router_id_base", *words)


def test_a_base_is_not_needed_when_every_vip_has_its_router_id():
    lb_vars = {lb: {"haproxy_vrrp_router_id_base": 300} for lb in ("lb1", "lb2")}
    assert build_topology(*fleet([{"address": "198.18.1.10", "router_id": 1}], lb_vars=lb_vars)).vips


@pytest.mark.parametrize("item, variable, words", [
    ({"address": "198.18.1.10", "holdr": "lb1"}, "haproxy_vips[0].holdr", ["unknown key; did you mean holder?"]),
    ({"address": "198.18.1.10", "routerid": 5}, "haproxy_vips[0].routerid", ["did you mean router_id?"]),
    ({"address": "198.18.1.10", "colour": "red"}, "haproxy_vips[0].colour",
     ["allowed keys are address, holder, router_id."]),
    ({"holder": "lb1"}, "haproxy_vips[0].address", ["is missing; every VIP needs its address"]),
    (12, "haproxy_vips[0]", ["12 is neither an address nor a mapping"]),
    (["198.18.1.10"], "haproxy_vips[0]", ["neither an address nor a mapping"]),
])
def test_a_malformed_vip(item, variable, words):
    assert_one_problem(*fleet([item]), "lb1", variable, *words)


@pytest.mark.parametrize("vips, words", [
    ("198.18.1.10", ["'198.18.1.10' is not a list", "haproxy_vips: ['198.18.1.10/24']"]),
    ({"address": "198.18.1.10"}, ["{'address': '198.18.1.10'} is not a list"]),
    (5, ["5 is not a list"]),
])
def test_haproxy_vips_that_is_not_a_list(vips, words):
    assert_one_problem(*fleet(vips), "lb1", "haproxy_vips", *words)


def test_vips_on_a_single_balancer_are_refused():
    assert problems_of(*fleet(["198.18.1.10"], balancers=1)) == [
        "lb1: haproxy_vips: a VIP needs at least two load balancers to move between, and group 'haproxy' has only "
        "lb1; add a second balancer, or remove haproxy_vips."]


def test_balancers_that_see_different_vips():
    groups, hostvars = fleet(["198.18.1.10"], balancers=3)
    hostvars["lb3"]["haproxy_vips"] = ["198.18.1.11"]
    assert problems_of(groups, hostvars) == [
        "lb3: haproxy_vips: ['198.18.1.11'] differs from ['198.18.1.10'] on lb1, lb2; it is one setting for the "
        "whole fleet: set it once, in group_vars of group 'haproxy'."]


def test_a_balancer_without_the_vips_is_named_when_most_have_them():
    groups, hostvars = fleet(["198.18.1.10"], balancers=3)
    del hostvars["lb2"]["haproxy_vips"]
    assert_one_problem(groups, hostvars, "lb2", "haproxy_vips", "unset differs from ['198.18.1.10'] on lb1, lb3",
                       "group_vars of group 'haproxy'")


def test_balancers_that_see_different_bases():
    lb_vars = {"lb1": {"haproxy_vrrp_router_id_base": 60}, "lb2": {"haproxy_vrrp_router_id_base": 70}}
    assert_one_problem(*fleet(["198.18.1.10"], lb_vars=lb_vars), "lb2", "haproxy_vrrp_router_id_base",
                       "70 differs from 60 on lb1", "set it once")


@pytest.mark.parametrize("lb_vars, host, variable, words", [
    ({"lb2": {"haproxy_vrrp_address": "lb2.example.com"}}, "lb2", "haproxy_vrrp_address",
     ["'lb2.example.com' is not an IP address; give the IP address this load balancer sends VRRP from."]),
    ({"lb2": {"ansible_host": "lb2.example.com"}}, "lb2", "ansible_host",
     ["'lb2.example.com' is not an IP address", "set haproxy_vrrp_address"]),
    ({"lb2": {"haproxy_vrrp_address": "0.0.0.0"}}, "lb2", "haproxy_vrrp_address",
     ["0.0.0.0 is not an address the other balancers can send VRRP to"]),
    ({"lb2": {"haproxy_vrrp_address": "198.18.1.2"}}, "lb2", "haproxy_vrrp_address",
     ["198.18.1.2 is also lb1's VRRP address; give each balancer its own."]),
    ({"lb2": {"ansible_host": "198.18.1.2"}}, "lb2", "ansible_host",
     ["198.18.1.2 is also lb1's VRRP address; haproxy_vrrp_address defaults to ansible_host"]),
])
def test_a_bad_or_shared_vrrp_address(lb_vars, host, variable, words):
    assert_one_problem(*fleet(["198.18.1.10"], lb_vars=lb_vars), host, variable, *words)


def test_two_balancers_behind_one_address_each_with_its_own_vrrp_address():
    lb_vars = {"lb1": {"ansible_host": "203.0.113.1", "haproxy_vrrp_address": "198.18.1.2"},
               "lb2": {"ansible_host": "203.0.113.1", "haproxy_vrrp_address": "198.18.1.3"}}
    topology = build_topology(*fleet(["198.18.1.10/24"], lb_vars=lb_vars))
    assert [balancer.vrrp_address for balancer in topology.balancers] == ["198.18.1.2", "198.18.1.3"]


def test_every_vip_problem_is_reported_at_once_with_the_others():
    vips = ["nope", {"address": "198.18.1.11", "holder": "lb9"}, "198.18.1.21"]
    problems = problems_of(*fleet(vips, balancers=1, app_vars={"wt_instances": "x"}))
    assert [problem.split(": ")[:2] for problem in problems] == [
        ["lb1", "haproxy_vips"], ["lb1", "haproxy_vips[0].address"], ["lb1", "haproxy_vips[1].holder"],
        ["lb1", "haproxy_vips[2].address"], ["app1", "wt_instances"]]

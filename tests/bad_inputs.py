"""Bad inventories and variables that site.yml must refuse before any host is contacted (issue 6).

Shared by tests/e2e/test_65_bad_inputs.py (against the lab) and tests/integration/test_bad_inputs.py
(against a copy of the lab's inventory that points nowhere). Each case is a small mutation of an
inventory in the shape tests/lab/lab.py writes (all.children.<group>.hosts.<host>: vars, a host's
vars under the first group listing it) and/or `-e` extra vars, plus the fragments the output must
contain: the host and the variable at least. Host names come from the inventory itself (first and
second load balancer, first and last app host), so the table fits any lab fleet with two app hosts; a
fleet of one load balancer gets a second one (SPARE_BALANCER) where a case needs two. Fleet-wide
balancer settings (haproxy_vips) go where an inventory keeps them, in the vars of group haproxy.

A TLS certificate path that is absolute but names no file is not here: only the load balancer can
tell, and the haproxy role refuses it there before it changes anything (tests/e2e/test_70_security.py).
"""

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOPOLOGY_PLAY = "Validate the inventory and compute the fleet topology"
# playbooks/topology.yml's plays: the topology, then every host's role variables (both on the controller).
TOPOLOGY_PLAYS = [TOPOLOGY_PLAY, "Check the role variables of every host"]
# A second load balancer for the VIP cases on a lab fleet that has one; never contacted (every case is refused).
SPARE_BALANCER = "lb-spare"
SPARE_BALANCER_ADDRESS = "127.0.99.254"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@dataclass(frozen=True)
class Case:
    name: str
    mutate: object  # (inventory dict, Hosts) -> None, edits in place
    expected: object  # (Hosts) -> list of fragments the output must contain
    extra_vars: tuple = field(default=())


@dataclass(frozen=True)
class Hosts:
    lb: str
    lb_b: str  # the second load balancer, or SPARE_BALANCER that second_balancer adds
    app_a: str
    app_b: str
    address: dict


def hosts_of(inventory):
    children = inventory["all"]["children"]
    apps = list(children["wt"]["hosts"])
    lbs = list(children["haproxy"]["hosts"])
    address = {host: host_vars(inventory, host).get("ansible_host") for host in lbs + apps}
    address.setdefault(SPARE_BALANCER, SPARE_BALANCER_ADDRESS)
    return Hosts(lb=lbs[0], lb_b=lbs[1] if len(lbs) > 1 else SPARE_BALANCER, app_a=apps[0], app_b=apps[-1],
                 address=address)


def host_vars(inventory, host):
    """The mapping that holds the host's variables (lab.py writes them under its first group)."""
    for group in inventory["all"]["children"].values():
        hosts = group.get("hosts") or {}
        if host in hosts and hosts[host] is not None:
            return hosts[host]
    raise KeyError(host)


def set_vars(host_key, **values):
    def mutate(inventory, hosts):
        host_vars(inventory, getattr(hosts, host_key)).update(values)
    return mutate


def both(*mutations):
    def mutate(inventory, hosts):
        for mutation in mutations:
            mutation(inventory, hosts)
    return mutate


def empty_group(group):
    def mutate(inventory, hosts):
        inventory["all"]["children"][group]["hosts"] = {}
    return mutate


def second_balancer(inventory, hosts):
    balancers = inventory["all"]["children"]["haproxy"]["hosts"]
    if hosts.lb_b not in balancers:
        balancers[hosts.lb_b] = {**host_vars(inventory, hosts.lb), "ansible_host": SPARE_BALANCER_ADDRESS}


def balancer_vars(**values):
    """Fleet-wide balancer settings in group haproxy's vars (group_vars), on at least two balancers."""
    def mutate(inventory, hosts):
        second_balancer(inventory, hosts)
        inventory["all"]["children"]["haproxy"].setdefault("vars", {}).update(values)
    return mutate


def group_vars(group, **values):
    """Variables of a whole group (the inventory's group vars)."""
    def mutate(inventory, hosts):
        inventory["all"]["children"][group].setdefault("vars", {}).update(values)
    return mutate


def misspelt(host, name, suggestion):
    return [f"{host}: {name}: unknown variable", f"did you mean {suggestion}?"]


def single_balancer_with_a_vip(inventory, hosts):
    balancers = inventory["all"]["children"]["haproxy"]
    balancers["hosts"] = {hosts.lb: balancers["hosts"][hosts.lb]}
    balancers["vars"] = {"haproxy_vips": ["198.18.0.10"]}


def vip_of_a_host_outside_the_fleet(inventory, hosts):
    inventory["all"]["children"].setdefault("ungrouped", {"hosts": {}})["hosts"]["db1"] = {
        "ansible_host": "198.18.0.10"}
    balancer_vars(haproxy_vips=["198.18.0.10"])(inventory, hosts)


def vip_held_by_a_misspelt_balancer(inventory, hosts):
    balancer_vars(haproxy_vips=[{"address": "198.18.0.10", "holder": hosts.lb + "x"}])(inventory, hosts)


def second_balancer_at_the_first_ones_vrrp_address(inventory, hosts):
    balancer_vars(haproxy_vips=["198.18.0.10"])(inventory, hosts)
    host_vars(inventory, hosts.lb_b)["haproxy_vrrp_address"] = hosts.address[hosts.lb]


def balancer_also_app_host_on_its_own_port(inventory, hosts):
    host_vars(inventory, hosts.lb).update(haproxy_bind_port=9300, wt_instances=[{"port": 9300}])
    inventory["all"]["children"]["wt"]["hosts"][hosts.lb] = None


def stray_host_with_instances(inventory, hosts):
    inventory["all"]["children"].setdefault("ungrouped", {"hosts": {}})["hosts"]["stray1"] = {
        "ansible_host": "127.0.99.250", "wt_instances": 2}


def listen_on_the_other_hosts_address(inventory, hosts):
    host_vars(inventory, hosts.app_a)["wt_instances"] = 1
    host_vars(inventory, hosts.app_b).update(wt_instances=1, wt_listen_address=hosts.address[hosts.app_a])


def type_error(host, variable, kind):
    # Ansible's argument spec message; "of type str" (2.19) / "of type <class 'str'>" (2.17).
    return [f"fatal: [{host}]", f"argument '{variable}' is of type", f"unable to convert to {kind}"]


CASES = [
    Case("duplicate prefix across hosts",
         both(set_vars("app_a", wt_instances=[{"prefix": "dup-"}]),
              set_vars("app_b", wt_instances=[{"prefix": "dup-"}])),
         lambda h: [f"{h.app_b}: wt_instances[0].prefix: prefix 'dup-' is already used by {h.app_a} wt_instances[0]"]),
    Case("overlapping prefixes wt1 and wt10",
         both(set_vars("app_a", wt_instances=[{"prefix": "wt1"}]),
              set_vars("app_b", wt_instances=[{"prefix": "wt10"}])),
         lambda h: [f"{h.app_b}: wt_instances[0].prefix: prefix 'wt10' begins with 'wt1' of {h.app_a}"]),
    Case("port clash on a host",
         set_vars("app_a", wt_instances=[{"prefix": "c1-", "port": 9100}, {"prefix": "c2-", "port": 9100}]),
         lambda h: [f"{h.app_a}: wt_instances[1].port: port 9100 is already used by wt_instances[0]"]),
    Case("two hosts on one address and port",
         listen_on_the_other_hosts_address,
         lambda h: [f"{h.app_b}: wt_instances[0].port: {h.address[h.app_a]}:9090 is also where {h.app_a} "
                    "wt_instances[0] listens"]),
    Case("port 0", set_vars("app_a", wt_instances=[{"port": 0}]),
         lambda h: [f"{h.app_a}: wt_instances[0].port: 0 is out of range"]),
    Case("port 70000", set_vars("app_a", wt_instances=[{"port": 70000}]),
         lambda h: [f"{h.app_a}: wt_instances[0].port: 70000 is out of range"]),
    Case("privileged base port", set_vars("app_b", wt_base_port=80),
         lambda h: [f"{h.app_b}: wt_base_port: 80 is out of range"]),
    Case("count 'two'", set_vars("app_a", wt_instances="two"),
         lambda h: [f"{h.app_a}: wt_instances: 'two' is neither a whole number nor a list"]),
    Case("count -1", set_vars("app_a", wt_instances=-1),
         lambda h: [f"{h.app_a}: wt_instances: -1 is negative"]),
    Case("count 2.5", set_vars("app_a", wt_instances=2.5),
         lambda h: [f"{h.app_a}: wt_instances: 2.5 is neither a whole number nor a list"]),
    Case("count true", set_vars("app_a", wt_instances=True),
         lambda h: [f"{h.app_a}: wt_instances: True is neither a whole number nor a list"]),
    Case("listen address 999.1.1.1", set_vars("app_a", wt_listen_address="999.1.1.1"),
         lambda h: [f"{h.app_a}: wt_listen_address: '999.1.1.1' is not an IP address"]),
    Case("listen address 'not an ip'", set_vars("app_b", wt_listen_address="not an ip"),
         lambda h: [f"{h.app_b}: wt_listen_address: 'not an ip' is not an IP address"]),
    Case("ansible_host a name and no listen address", set_vars("app_a", ansible_host="app.invalid"),
         lambda h: [f"{h.app_a}: ansible_host: 'app.invalid' is not an IP address", "set wt_listen_address"]),
    Case("connect address ::", set_vars("app_a", wt_connect_address="::"),
         lambda h: [f"{h.app_a}: wt_connect_address: :: is not an address HAProxy can connect to"]),
    Case("unknown key in an instance", set_vars("app_b", wt_instances=[{"prefix": "k-", "prot": 9200}]),
         lambda h: [f"{h.app_b}: wt_instances[0].prot: unknown key; did you mean port?"]),
    Case("misspelt host variable wt_instance", set_vars("app_a", wt_instance=2),
         lambda h: [f"{h.app_a}: wt_instance: unknown variable; did you mean wt_instances?"]),
    Case("weight 300", set_vars("app_a", wt_instances=[{"weight": 300}]),
         lambda h: [f"{h.app_a}: wt_instances[0].weight: 300 is out of range; give a number from 0 to 256"]),
    Case("prefix with a slash", set_vars("app_a", wt_instances=[{"prefix": "wt/1-"}]),
         lambda h: [f"{h.app_a}: wt_instances[0].prefix: 'wt/1-' has characters that are not URL-safe"]),
    Case("prefix with a space", set_vars("app_a", wt_instances=[{"prefix": "wt 1-"}]),
         lambda h: [f"{h.app_a}: wt_instances[0].prefix: 'wt 1-' has characters that are not URL-safe"]),
    Case("prefix too long", set_vars("app_a", wt_instances=[{"prefix": "p" * 65}]),
         lambda h: [f"{h.app_a}: wt_instances[0].prefix: '{'p' * 65}' is longer than 64 characters"]),
    Case("empty haproxy group", empty_group("haproxy"),
         lambda h: ["inventory: groups['haproxy']: the group of load balancers has no hosts"]),
    Case("empty wt group", empty_group("wt"),
         lambda h: ["inventory: groups['wt']: the group of Wt application hosts has no hosts"]),
    Case("no instance in the whole fleet",
         both(set_vars("app_a", wt_instances=0), set_vars("app_b", wt_instances=[])),
         lambda h: ["inventory: wt_instances: the hosts of group 'wt' declare no Wt instances at all"]),
    Case("load balancer declares instances outside the wt group", set_vars("lb", wt_instances=2),
         lambda h: [f"{h.lb}: wt_instances: this load balancer declares Wt instances but is not in group 'wt'"]),
    Case("host in both groups with an instance on the balancer's port", balancer_also_app_host_on_its_own_port,
         lambda h: [f"{h.lb}: wt_instances[0].port: port 9300 is HAProxy's haproxy_bind_port on this host"]),
    Case("host in neither group declares instances", stray_host_with_instances,
         lambda h: ["stray1: wt_instances: this host declares Wt instances but is in neither group"]),
    Case("wtstack_haproxy_group names no group", lambda inventory, hosts: None,
         lambda h: ["inventory: groups['nosuchgroup']: the group of load balancers does not exist",
                    "set wtstack_haproxy_group"],
         extra_vars=("wtstack_haproxy_group=nosuchgroup",)),
    Case("haproxy_bind_port 'eighty' (argument spec)", lambda inventory, hosts: None,
         lambda h: type_error(h.lb, "haproxy_bind_port", "int"),
         extra_vars=("haproxy_bind_port=eighty",)),
    Case("haproxy_bind_port 70000 on one balancer", set_vars("lb", haproxy_bind_port=70000),
         lambda h: [f"{h.lb}: haproxy_bind_port: 70000 is out of range"]),
    Case("haproxy_check_uri without a leading slash", lambda inventory, hosts: None,
         lambda h: [f"{h.lb}: haproxy_check_uri: \"health\" is not a URL path"],
         extra_vars=("haproxy_check_uri=health",)),
    Case("HTTPS redirect without TLS", set_vars("lb", haproxy_tls_redirect=True),
         lambda h: [f"{h.lb}: haproxy_tls_redirect: redirecting to https needs TLS"]),
    Case("relative TLS certificate path",
         set_vars("lb", haproxy_tls_enabled=True, haproxy_tls_pem_path="certs/site.pem"),
         lambda h: [f"{h.lb}: haproxy_tls_pem_path: certs/site.pem is not an absolute path"]),
    Case("statistics page without a password",
         set_vars("lb", haproxy_stats_enabled=True, haproxy_stats_bind_address="127.0.0.1"),
         lambda h: [f"{h.lb}: haproxy_stats_password: is required with haproxy_stats_enabled"]),
    # Floating VIPs (haproxy_vips): the topology refuses them before keepalived is configured anywhere.
    Case("VIPs on a single load balancer", single_balancer_with_a_vip,
         lambda h: [f"{h.lb}: haproxy_vips: a VIP needs at least two load balancers to move between",
                    "add a second balancer, or remove haproxy_vips"]),
    Case("VIP that is not an IP address", balancer_vars(haproxy_vips=["vip.example.com"]),
         lambda h: [f"{h.lb}: haproxy_vips[0].address: 'vip.example.com' is not an IP address"]),
    Case("loopback VIP", balancer_vars(haproxy_vips=["127.0.10.200"]),
         lambda h: [f"{h.lb}: haproxy_vips[0].address: 127.0.10.200 is a loopback address",
                    "a VIP must be a routable unicast address that clients reach"]),
    Case("VIP that is the network address of its network", balancer_vars(haproxy_vips=["198.18.0.0/24"]),
         lambda h: [f"{h.lb}: haproxy_vips[0].address: 198.18.0.0 is the network address of 198.18.0.0/24"]),
    Case("VIP listed twice", balancer_vars(haproxy_vips=["198.18.0.10", "198.18.0.11", "198.18.0.10"]),
         lambda h: [f"{h.lb}: haproxy_vips[2].address: 198.18.0.10 is also haproxy_vips[0]; list each VIP once"]),
    Case("VIP that is the address of a host outside the fleet", vip_of_a_host_outside_the_fleet,
         lambda h: [f"{h.lb}: haproxy_vips[0].address: 198.18.0.10 is db1's ansible_host"]),
    Case("VIP holder that is not a load balancer", vip_held_by_a_misspelt_balancer,
         lambda h: [f"{h.lb}: haproxy_vips[0].holder: '{h.lb}x' is not a load balancer of group 'haproxy'; "
                    f"did you mean {h.lb}?"]),
    Case("unknown key in a VIP", balancer_vars(haproxy_vips=[{"address": "198.18.0.10", "routerid": 60}]),
         lambda h: [f"{h.lb}: haproxy_vips[0].routerid: unknown key; did you mean router_id?"]),
    Case("VIP router id that another VIP gets from the base",
         balancer_vars(haproxy_vips=["198.18.0.10", {"address": "198.18.0.11", "router_id": 51}]),
         lambda h: [f"{h.lb}: haproxy_vips[1].router_id: 51 is also the router id of haproxy_vips[0] "
                    "(generated: haproxy_vrrp_router_id_base 50 + 0 + 1)"]),
    Case("VRRP router id base past 255",
         balancer_vars(haproxy_vips=["198.18.0.10"], haproxy_vrrp_router_id_base=255),
         lambda h: [f"{h.lb}: haproxy_vrrp_router_id_base: 255 gives haproxy_vips[0] router id 256, outside "
                    "VRRP's 1 to 255"]),
    Case("haproxy_vips as a string extra var", second_balancer,
         lambda h: [f"{h.lb}: haproxy_vips: '198.18.0.10' is not a list"],
         extra_vars=("haproxy_vips=198.18.0.10",)),
    Case("VIPs that differ between load balancers",
         both(balancer_vars(haproxy_vips=["198.18.0.10"]), set_vars("lb_b", haproxy_vips=["198.18.0.11"])),
         lambda h: [f"{h.lb_b}: haproxy_vips: ['198.18.0.11'] differs from ['198.18.0.10'] on {h.lb}",
                    "set it once, in group_vars of group 'haproxy'"]),
    Case("IPv6 VIP on load balancers with IPv4 addresses", balancer_vars(haproxy_vips=["2001:db8::10"]),
         lambda h: [f"{h.lb}: ansible_host: {h.address[h.lb]} is IPv4 but the VIPs are IPv6"]),
    Case("load balancer outside the VIP's network", balancer_vars(haproxy_vips=["198.18.0.10/24"]),
         lambda h: [f"{h.lb}: ansible_host: {h.address[h.lb]} is outside 198.18.0.0/24, the network of "
                    "haproxy_vips[0]"]),
    Case("two load balancers with one VRRP address", second_balancer_at_the_first_ones_vrrp_address,
         lambda h: [f"{h.lb_b}: haproxy_vrrp_address: {h.address[h.lb]} is also {h.lb}'s VRRP address"]),
    Case("wt_app_session_timeout 'soon' on one app host (argument spec)",
         set_vars("app_b", wt_app_session_timeout="soon"),
         lambda h: type_error(h.app_b, "wt_app_session_timeout", "int")),
    Case("relative wt_app_command", set_vars("app_a", wt_app_command="bin/app.wt"),
         lambda h: [f"{h.app_a}: wt_app_command: \"bin/app.wt\" is not an absolute path"]),
    Case("wt_app_artifact without wt_app_command", set_vars("app_a", wt_app_artifact=str(REPO / "galaxy.yml")),
         lambda h: [f"{h.app_a}: wt_app_command: is empty, so the bundled demo would run"]),
    Case("wt_app_artifact missing on the controller",
         set_vars("app_b", wt_app_command="/opt/wtstack/app/app.wt", wt_app_artifact="/nonexistent/app.tar.gz"),
         lambda h: [f"{h.app_b}: wt_app_artifact: \"/nonexistent/app.tar.gz\" is not a file on the controller"]),
    # Misspelt role variables, once accepted and ignored (the role's default silently in force), refused with the
    # name meant (issue 22): a host's variable, a group's, an extra var (every host has it: reported once).
    Case("misspelt haproxy_tls_enabled on a balancer", set_vars("lb", haproxy_tls_enabeld=True),
         lambda h: misspelt(h.lb, "haproxy_tls_enabeld", "haproxy_tls_enabled")),
    Case("misspelt haproxy_bind_port in the balancers' group vars", group_vars("haproxy", haproxy_bind_prot=8080),
         lambda h: misspelt(h.lb, "haproxy_bind_prot", "haproxy_bind_port")),
    Case("misspelt wt_app_version on an app host", set_vars("app_a", wt_app_verison="2.0"),
         lambda h: misspelt(h.app_a, "wt_app_verison", "wt_app_version")),
    Case("misspelt wt_app_command on an app host", set_vars("app_b", wt_app_comand="/opt/wtstack/app/app.wt"),
         lambda h: misspelt(h.app_b, "wt_app_comand", "wt_app_command")),
    Case("misspelt rolling_restart_quiet in the app hosts' group vars", group_vars("wt", rolling_restart_quite=2),
         lambda h: misspelt(h.app_a, "rolling_restart_quite", "rolling_restart_quiet")),
    Case("misspelt rolling_max_unavailable as an extra var", lambda inventory, hosts: None,
         lambda h: misspelt(h.lb, "rolling_max_unavailabel", "rolling_max_unavailable")
         + ["unknown variable (also on "],
         extra_vars=("rolling_max_unavailabel=50%",)),
    Case("misspelt wtstack_wt_group as an extra var", lambda inventory, hosts: None,
         lambda h: misspelt(h.lb, "wtstack_wt_grop", "wtstack_wt_group"), extra_vars=("wtstack_wt_grop=wt",)),
    Case("wtstack_allowed_variables that is not a list",
         set_vars("lb", haproxy_site_tier="gold", wtstack_allowed_variables="haproxy_site_tier"),
         lambda h: [f"{h.lb}: wtstack_allowed_variables: 'haproxy_site_tier' is not a list of variable names"]),
]


def bad_inventory(inventory, case):
    """A deep copy of the inventory with the case's mutation applied, and the case's hosts."""
    hosts = hosts_of(inventory)
    mutated = copy.deepcopy(inventory)
    case.mutate(mutated, hosts)
    return mutated, hosts


def extra_var_args(case):
    return [arg for value in case.extra_vars for arg in ("-e", value)]


def flat(text):
    """Output with YAML folding and quote doubling undone, so a message matches however it was printed."""
    return re.sub(r"\s+", " ", text).replace("''", "'")


def refusal_problems(case, hosts, returncode, output):
    """Why this run is not a proper early refusal; empty when it is.

    Proper: a non-zero exit; every expected fragment (host and variable) in the output; and the run
    stopped inside the topology plays. They have gather_facts: false and run only actions that
    execute on the controller (set_fact delegated to localhost, include_role, argument spec
    validation, assert, debug), while every later play of site.yml contacts its hosts first (the
    retire tasks' stat, fact gathering). So "no PLAY header but the topology plays'" means no host
    was contacted, hence none changed; the recap must also show changed=0 and unreachable=0
    everywhere.
    """
    problems = []
    if returncode == 0:
        problems.append("the playbook succeeded")
    text = flat(output)
    for fragment in case.expected(hosts):
        if flat(fragment) not in text:
            problems.append(f"the output lacks {fragment!r}")
    plays = re.findall(r"^PLAY \[(.*)\] \*", output, re.M)
    if plays != TOPOLOGY_PLAYS[:len(plays)] or not plays:
        problems.append(f"plays beyond the topology play started: {plays}")
    for host, _ok, changed, unreachable, _failed in RECAP.findall(output):
        if int(changed) or int(unreachable):
            problems.append(f"recap {host}: changed={changed} unreachable={unreachable}")
    return problems


def groups_and_hostvars(inventory, extra_vars=()):
    """groups and hostvars as Ansible builds them from this inventory shape: group vars under host vars,
    extra vars on top."""
    extra = dict(value.split("=", 1) for value in extra_vars)
    groups, own, inherited = {"all": []}, {}, {}
    for group, body in inventory["all"]["children"].items():
        body = body or {}
        groups[group] = list(body.get("hosts") or {})
        for host, values in (body.get("hosts") or {}).items():
            if host not in own:
                groups["all"].append(host)
            own.setdefault(host, {}).update(values or {})
            inherited.setdefault(host, {}).update(body.get("vars") or {})
    everyone = inventory["all"].get("vars") or {}
    hostvars = {host: {**everyone, **inherited[host], **own[host], **extra} for host in groups["all"]}
    return groups, hostvars, extra

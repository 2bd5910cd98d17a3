# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's topology: Ansible inventory in, validated routing facts out.

Plain Python with no Ansible import, so it is unit-tested without Ansible running and
shared by filters, modules and tests. Everything the roles write (HAProxy servers and
session map, Wt units and their --session-id-prefix) reads the one Topology built here,
so the load balancers and the Wt instances can never disagree about a prefix or a port.
The load balancers' floating VIPs (keepalived, VRRP) are computed here too: which balancer
holds each, its VRRP router id and every balancer's priority for it.

Input is the shape Ansible already has: ``groups`` (group name -> host names) and
``hostvars`` (host name -> variables). Bad input raises TopologyError listing every
problem found, each naming the host, the variable and what to do.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

try:  # netaddr is a controller requirement; the import guard keeps ansible-test's import sanity check happy
    import netaddr
except ImportError:  # pragma: no cover - exercised only on controllers without netaddr
    netaddr = None

DEFAULT_BASE_PORT = 9090
DEFAULT_WEIGHT = 100
DEFAULT_INSTANCE_COUNT = 1
MIN_PORT = 1024  # Wt runs unprivileged with no capabilities, so it cannot bind below 1024
MAX_PORT = 65535
MAX_WEIGHT = 256  # HAProxy's limit
MAX_PREFIX_LENGTH = 64

# Wt appends 16 characters of [A-Za-z0-9] to the prefix, and the browser sends the result
# back as ?wtd=...; these characters survive Wt's JavaScript escape() and HAProxy's urlp()
# unencoded (checked against Wt 4.13.2), so a prefix matches the raw query string as is.
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
# Generated prefixes are "<host token>-<port>-". The token never contains "-", which makes
# generated prefixes prefix-free by construction: the first "-" ends the token.
_HOST_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9.]")
# HAProxy identifiers accept letters, digits, "-", "_", "." and ":".
_SERVER_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")

INSTANCE_KEYS = ("prefix", "port", "weight")
# The HAProxy backend that places new sessions; each instance also has a backend of its own.
PLACEMENT_BACKEND = "wt"
# Host variables this module reads. Any other wt_* variable (outside the wt_app role's
# own wt_app_* namespace) is almost certainly a typo of one of these.
TOPOLOGY_VARIABLES = ("wt_instances", "wt_base_port", "wt_listen_address", "wt_connect_address")
# Load balancer variables read here rather than only by the haproxy role, because each must be
# checked against other hosts before any host is contacted: the Wt side trusts haproxy_source_address
# (trusted proxies), and a VIP must be no host's own address, on the balancers' network, with a router
# id and a holder every balancer agrees on (each balancer's keepalived renders the same VIPs).
BALANCER_VARIABLES = ("haproxy_source_address", "haproxy_vips", "haproxy_vrrp_router_id_base", "haproxy_vrrp_address")
# Every variable that gives a host an address of its own: no VIP may be one of them, wherever the
# host is in the inventory, or keepalived would add a second holder of that address to the network.
HOST_ADDRESS_VARIABLES = ("ansible_host", "wt_listen_address", "wt_connect_address", "haproxy_source_address",
                          "haproxy_vrrp_address", "haproxy_bind_address")
VIP_KEYS = ("address", "holder", "router_id")
DEFAULT_VRRP_ROUTER_ID_BASE = 50
MIN_ROUTER_ID = 1  # VRRP's virtual router id is 1..255
MAX_ROUTER_ID = 255
# VRRP priorities run 1..254 for a backup (255 is for the owner of the address, which a VIP has not):
# the holder gets 250, the next balancers 240, 230, ... so a dead balancer's VIPs go to its successor.
TOP_PRIORITY = 250
PRIORITY_STEP = 10
ROLE_VARIABLE_PREFIXES = ("wt_app_",)
INVENTORY = "inventory"


class TopologyError(ValueError):
    """Bad inventory. ``problems`` holds one ``Problem`` per mistake found."""

    def __init__(self, problems):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class Problem:
    host: str
    variable: str
    message: str

    def __str__(self):
        return f"{self.host}: {self.variable}: {self.message}"


@dataclass(frozen=True)
class Instance:
    host: str
    prefix: str
    listen_address: str
    connect_address: str
    port: int
    weight: int
    server_name: str
    # The instance's own HAProxy backend, where the session map sends its sessions.
    backend_name: str
    unit_name: str
    prefix_generated: bool
    # Where this instance was declared, e.g. "wt_instances[1]"; used in messages.
    origin: str


@dataclass(frozen=True)
class Balancer:
    host: str
    # HAProxy's "source" for connections and health checks to the instances; None: the kernel picks.
    source_address: str | None
    # The address the instances see this load balancer connect from, so trust X-Forwarded-For from:
    # source_address when set, else ansible_host (else the inventory name, which may resolve).
    proxy_address: str
    # Where keepalived sends and receives VRRP (unicast_src_ip; the other balancers' unicast peer):
    # haproxy_vrrp_address, else ansible_host. None when the fleet has no VIPs.
    vrrp_address: str | None = None


@dataclass(frozen=True)
class Vip:
    """A floating address held by one load balancer at a time (one VRRP instance of keepalived)."""

    address: str
    # The mask the VIP gets on its interface: the stated one, else 32 (IPv4) or 128 (IPv6).
    prefix_length: int
    family: int  # 4 or 6
    # The balancer that holds it while it is up: the highest priority.
    holder: str
    router_id: int
    # ((balancer, priority), ...) highest first: the holder, then the other balancers in group order
    # starting after it, so the VIPs of a dead balancer spread over the survivors.
    priorities: tuple
    # Where it was declared, e.g. "haproxy_vips[0]"; used in messages.
    origin: str

    @property
    def name(self):
        """keepalived's vrrp_instance name: the router id is unique fleet-wide, so the name is too."""
        return f"wtstack_vip_{self.router_id}"


@dataclass(frozen=True)
class Topology:
    haproxy_group: str
    wt_group: str
    lb_hosts: tuple
    app_hosts: tuple
    instances: tuple
    balancers: tuple = ()
    vips: tuple = ()

    def instances_on(self, host):
        return tuple(instance for instance in self.instances if instance.host == host)

    def to_dict(self):
        """The Topology as plain data, the form filters hand to Jinja."""
        instances = [_instance_dict(instance) for instance in self.instances]
        by_host = {host: [] for host in self.app_hosts}
        for instance in instances:
            by_host[instance["host"]].append(instance)
        return {
            "haproxy_group": self.haproxy_group,
            "wt_group": self.wt_group,
            "lb_hosts": list(self.lb_hosts),
            "app_hosts": list(self.app_hosts),
            "instances": instances,
            "instances_by_host": by_host,
            "balancers": [asdict(balancer) for balancer in self.balancers],
            "proxy_addresses": [balancer.proxy_address for balancer in self.balancers],
            "vips": [_vip_dict(vip) for vip in self.vips],
        }


def _instance_dict(instance):
    data = asdict(instance)
    del data["origin"]
    return data


def _vip_dict(vip):
    return {"address": vip.address, "prefix_length": vip.prefix_length, "family": vip.family, "holder": vip.holder,
            "router_id": vip.router_id,
            "priorities": [{"host": host, "priority": priority} for host, priority in vip.priorities],
            "name": vip.name}


def generated_prefix(host, port):
    """The prefix an instance gets when the inventory names none.

    It depends only on the host's name and the instance's port, so adding or removing
    other hosts or instances never renames it (a rename would orphan its live sessions).
    """
    return f"{_HOST_TOKEN_UNSAFE.sub('_', host)}-{port}-"


def server_name(host, port):
    return f"{_SERVER_NAME_UNSAFE.sub('_', host)}-{port}"


def instance_backend_name(server):
    """The HAProxy backend of one instance, unique because server names are unique fleet-wide."""
    return f"{PLACEMENT_BACKEND}.{server}"


def unit_name(port):
    return f"wt@{port}.service"


def vrrp_priorities(lb_hosts, holder, rank=0):
    """((balancer, priority), ...) for a VIP: the holder first, then the others in group order from it.

    The others start right after the holder, not at the group's first balancer, so different
    balancers' VIPs fail over to different survivors; and the holder's rank-th VIP (0 for its first)
    starts rank balancers further on, so one dead balancer's several VIPs spread over the survivors
    too. Priorities are 250, 240, ...; past 24 balancers the step shrinks to keep the last at 10 or
    more, down to step 1 at 241 balancers; past 250 the tail shares priority 1, VRRP's lowest (VRRP
    then prefers the higher address).
    """
    start = list(lb_hosts).index(holder)
    others = list(lb_hosts[start + 1:]) + list(lb_hosts[:start])
    shift = rank % len(others) if others else 0
    order = [holder] + others[shift:] + others[:shift]
    step = PRIORITY_STEP if len(order) <= 24 else max(1, (TOP_PRIORITY - 10) // (len(order) - 1))
    return tuple((host, max(1, TOP_PRIORITY - place * step)) for place, host in enumerate(order))


def find_prefix_overlaps(prefixes):
    """Pairs (shorter, longer) where one prefix is the beginning of another, or equal.

    After sorting, a string that begins with p sorts right after p, with only strings
    that also begin with p in between; so comparing neighbours finds every overlap
    in O(n log n), which matters at thousands of instances.
    """
    ordered = sorted(prefixes)
    overlaps = []
    for index, shorter in enumerate(ordered):
        for longer in ordered[index + 1:]:
            if not longer.startswith(shorter):
                break
            overlaps.append((shorter, longer))
    return overlaps


def build_topology(groups, hostvars, haproxy_group="haproxy", wt_group="wt"):
    """Validate the inventory and return its Topology, or raise TopologyError."""
    if netaddr is None:
        raise RuntimeError("wtstack.fleet needs the Python package netaddr on the controller: pip install netaddr")
    problems = []
    lb_hosts = _group_hosts(groups, haproxy_group, "wtstack_haproxy_group", "load balancers", problems)
    app_hosts = _group_hosts(groups, wt_group, "wtstack_wt_group", "Wt application hosts", problems)
    if app_hosts:  # without the group, "declares instances but is in no group" would only repeat that
        _check_stray_hosts(groups, hostvars, lb_hosts, app_hosts, wt_group, problems)

    balancers = [_balancer(host, hostvars.get(host, {}), problems) for host in lb_hosts]
    vips, balancers = _vips(groups, hostvars, haproxy_group, balancers, problems)

    instances = []
    for host in app_hosts:
        host_vars = hostvars.get(host, {})
        _check_variable_names(host, host_vars, problems)
        instances.extend(_host_instances(host, host_vars, host in lb_hosts, problems))

    if app_hosts and not instances and not problems:
        problems.append(Problem(INVENTORY, "wt_instances",
                                f"the hosts of group '{wt_group}' declare no Wt instances at all; "
                                "give at least one host wt_instances: 1 or more."))
    _check_fleet_wide(instances, problems)
    if problems:
        raise TopologyError(problems)
    return Topology(haproxy_group, wt_group, tuple(lb_hosts), tuple(app_hosts), tuple(instances),
                    tuple(balancers), tuple(vips))


def _group_hosts(groups, group, selector, role, problems):
    hosts = groups.get(group)
    if not hosts:
        state = "does not exist" if hosts is None else "has no hosts"
        problems.append(Problem(INVENTORY, f"groups['{group}']",
                                f"the group of {role} {state}; add hosts to group '{group}' "
                                f"or set {selector} to the group that holds them."))
        return []
    return list(hosts)


def _check_stray_hosts(groups, hostvars, lb_hosts, app_hosts, wt_group, problems):
    # Hosts outside both groups are none of our business (a shared inventory has databases,
    # bastions, ...) unless they declare Wt instances: then they were meant to be in the fleet.
    # A load balancer may run instances too, but only as a member of the Wt group; otherwise
    # its wt_instances would be silently ignored.
    for host in groups.get("all", ()):
        if host in app_hosts or "wt_instances" not in hostvars.get(host, {}):
            continue
        if host in lb_hosts:
            problems.append(Problem(host, "wt_instances",
                                    f"this load balancer declares Wt instances but is not in group '{wt_group}'; "
                                    f"add it to group '{wt_group}' as well (a host may be in both) "
                                    "or remove wt_instances."))
        else:
            problems.append(Problem(host, "wt_instances",
                                    f"this host declares Wt instances but is in neither group; "
                                    f"add it to group '{wt_group}' or remove wt_instances."))


def _check_variable_names(host, host_vars, problems):
    for name in host_vars:
        if (not isinstance(name, str) or not name.startswith("wt_") or name in TOPOLOGY_VARIABLES
                or name.startswith(ROLE_VARIABLE_PREFIXES)):
            continue
        close = difflib.get_close_matches(name, TOPOLOGY_VARIABLES, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known variables are {', '.join(TOPOLOGY_VARIABLES)}."
        problems.append(Problem(host, name, f"unknown variable; {hint}"))


def _balancer(host, host_vars, problems):
    source = host_vars.get("haproxy_source_address")
    if source is None or source == "":
        proxy = host_vars.get("ansible_host", host_vars.get("inventory_hostname", host))
        return Balancer(host=host, source_address=None, proxy_address=str(proxy))
    address = _ip(host, "haproxy_source_address", source, problems,
                  fix="give the IP address this load balancer should connect to the Wt instances from, "
                      "or leave it unset to let the kernel choose.")
    if address is not None and address.value == 0:
        problems.append(Problem(host, "haproxy_source_address",
                                f"{source!r} is not a single address the instances could trust; give one of "
                                "this load balancer's own IP addresses, or leave it unset."))
        address = None
    return Balancer(host=host, source_address=str(address) if address is not None else None,
                    proxy_address=str(address) if address is not None else str(source))


# --- floating VIPs (keepalived, VRRP) ------------------------------------------

@dataclass(frozen=True)
class _DeclaredVip:
    """A VIP as declared and parsed, before its holder and priorities are known."""

    index: int
    origin: str
    address: object  # netaddr.IPAddress
    prefix_length: int
    network: object  # netaddr.IPNetwork when the prefix length was stated, else None
    holder: str | None
    router_id: int | None


def _vips(groups, hostvars, haproxy_group, balancers, problems):
    """(the fleet's Vips, the balancers with their VRRP addresses); ((), balancers) without VIPs."""
    lb_hosts = [balancer.host for balancer in balancers]
    if not lb_hosts:
        return (), balancers
    value, host = _fleet_setting(lb_hosts, hostvars, "haproxy_vips", haproxy_group, problems)
    if value is None:
        return (), balancers
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        problems.append(Problem(host, "haproxy_vips",
                                f"{_shown(value)} is not a list; give one item per VIP, such as "
                                "haproxy_vips: ['198.18.1.10/24'], in group_vars of the balancer group."))
        return (), balancers
    if len(lb_hosts) < 2:
        problems.append(Problem(host, "haproxy_vips",
                                f"a VIP needs at least two load balancers to move between, and group '{haproxy_group}' "
                                f"has only {host}; add a second balancer, or remove haproxy_vips."))

    declared = [vip for vip in (_declared_vip(host, index, item, lb_hosts, haproxy_group, problems)
                                for index, item in enumerate(value)) if vip is not None]
    _check_vip_duplicates(host, declared, problems)
    _check_vips_are_no_hosts_address(host, groups, hostvars, declared, problems)
    router_ids = _router_ids(host, lb_hosts, hostvars, haproxy_group, declared, problems)
    vrrp_addresses = _vrrp_addresses(lb_hosts, hostvars, problems)
    _check_vrrp_families(host, declared, vrrp_addresses, problems)
    _check_vrrp_networks(declared, vrrp_addresses, problems)

    vips = []
    held = {}  # balancer -> how many VIPs before this one it holds; depends on the list's beginning only
    for vip in declared:
        holder = vip.holder if vip.holder is not None else lb_hosts[vip.index % len(lb_hosts)]
        rank = held[holder] = held.get(holder, -1) + 1
        if vip.index not in router_ids:
            continue
        vips.append(Vip(address=str(vip.address), prefix_length=vip.prefix_length, family=vip.address.version,
                        holder=holder, router_id=router_ids[vip.index],
                        priorities=vrrp_priorities(lb_hosts, holder, rank), origin=vip.origin))
    balancers = [replace(balancer, vrrp_address=str(vrrp_addresses[balancer.host][1]))
                 if balancer.host in vrrp_addresses else balancer for balancer in balancers]
    return vips, balancers


def _fleet_setting(lb_hosts, hostvars, name, haproxy_group, problems):
    """The one value of a fleet-wide balancer variable, and the first balancer that has it.

    Every balancer's keepalived renders every VIP, so all must read the same list; a balancer that
    differs is reported against the value most balancers have (the first balancer's on a tie).
    """
    values = []  # [[value, hosts]]; values may be lists or mappings, so no dict
    for host in lb_hosts:
        value = _normalized(hostvars.get(host, {}).get(name))
        for entry in values:
            if entry[0] == value:
                entry[1].append(host)
                break
        else:
            values.append([value, [host]])
    value, hosts = max(values, key=lambda entry: len(entry[1]))
    for other, differing in values:
        if other == value:
            continue
        for host in differing:
            problems.append(Problem(host, name,
                                    f"{_shown(other)} differs from {_shown(value)} on {_some(hosts, 3)}; it is one "
                                    "setting for the whole fleet: set it once, in group_vars of group "
                                    f"'{haproxy_group}'."))
    return value, hosts[0]


def _normalized(value):
    """A setting's value as compared across balancers: unset and empty are alike, so are 50 and '50'."""
    if value is None or (isinstance(value, (str, Sequence, Mapping)) and len(value) == 0):
        return None
    if _is_integer_like(value) and isinstance(value, str):
        return int(value)
    return value


def _shown(value):
    text = "unset" if value is None else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _declared_vip(host, index, item, lb_hosts, haproxy_group, problems):
    origin = f"haproxy_vips[{index}]"
    if isinstance(item, str):
        spec = {"address": item}
    elif isinstance(item, Mapping):
        spec = item
    else:
        problems.append(Problem(host, origin,
                                f"{_shown(item)} is neither an address nor a mapping; write '198.18.1.10/24' "
                                "or {address: 198.18.1.10/24, holder: lb1, router_id: 51} (holder and router_id "
                                "optional)."))
        return None
    before = len(problems)
    for key in spec:
        if key not in VIP_KEYS:
            close = difflib.get_close_matches(str(key), VIP_KEYS, n=1)
            hint = f"did you mean {close[0]}?" if close else f"allowed keys are {', '.join(VIP_KEYS)}."
            problems.append(Problem(host, f"{origin}.{key}", f"unknown key; {hint}"))
    if spec.get("address") in (None, ""):
        problems.append(Problem(host, f"{origin}.address",
                                "is missing; every VIP needs its address, such as 198.18.1.10/24."))
        return None
    parsed = _vip_address(host, f"{origin}.address", spec["address"], problems)

    holder = spec.get("holder")
    if holder is not None and holder not in lb_hosts:
        close = difflib.get_close_matches(str(holder), lb_hosts, n=1)
        hint = f"did you mean {close[0]}?" if close else f"give one of {_some(lb_hosts)}"
        problems.append(Problem(host, f"{origin}.holder",
                                f"{_shown(holder)} is not a load balancer of group '{haproxy_group}'; {hint} "
                                "(or leave holder out to spread the VIPs over the balancers)."))
    router_id = spec.get("router_id")
    if router_id is not None:
        router_id = _integer(host, f"{origin}.router_id", router_id, MIN_ROUTER_ID, MAX_ROUTER_ID, problems)
    if parsed is None or len(problems) > before:
        return None
    address, prefix_length, network = parsed
    return _DeclaredVip(index=index, origin=origin, address=address, prefix_length=prefix_length, network=network,
                        holder=holder, router_id=router_id)


def _some(names, at_most=8):
    shown = ", ".join(names[:at_most])
    return shown + (f" (and {len(names) - at_most} more)" if len(names) > at_most else "")


def _vip_address(host, variable, value, problems):
    """(address, prefix length, stated network or None) of 'a.b.c.d' or 'a.b.c.d/len', or None."""
    text, slash, length = value.strip().partition("/") if isinstance(value, str) else ("", "", "")
    try:
        address = netaddr.IPAddress(text.strip("[]"), flags=netaddr.INET_PTON)
    except (ValueError, netaddr.AddrFormatError):
        problems.append(Problem(host, variable,
                                f"{_shown(value)} is not an IP address; give a VIP such as 198.18.1.10, or "
                                "198.18.1.10/24 to state its network."))
        return None
    bits = 32 if address.version == 4 else 128
    if slash and not (re.fullmatch(r"[0-9]{1,3}", length) and 1 <= int(length) <= bits):
        problems.append(Problem(host, variable,
                                f"{_shown(value)} has a bad prefix length; after the '/' give the length of the VIP's "
                                f"network, from 1 to {bits}, or leave it out."))
        return None
    kind = ("an unspecified" if address.value == 0 else "a loopback" if address.is_loopback()
            else "a multicast" if address.is_multicast() else "a link-local" if address.is_link_local()
            else "the broadcast" if address.version == 4 and address.value == 0xFFFFFFFF else None)
    if kind:
        problems.append(Problem(host, variable,
                                f"{address} is {kind} address; a VIP must be a routable unicast address that clients "
                                "reach, so give a free address of the balancers' network."))
        return None
    if not slash or int(length) == bits:
        return address, bits, None  # a /32 or /128 is the VIP alone: it states no network the balancers share
    network = netaddr.IPNetwork(f"{address}/{length}")
    if address.version == 4 and network.prefixlen < 31 and address in (network.network, network.broadcast):
        which = "network" if address == network.network else "broadcast"
        problems.append(Problem(host, variable,
                                f"{address} is the {which} address of {network.cidr}, which no host may hold; give "
                                "another address of that network, or correct the prefix length."))
        return None
    return address, network.prefixlen, network.cidr


def _check_vip_duplicates(host, declared, problems):
    first_of = {}
    for vip in declared:
        if vip.address in first_of:
            problems.append(Problem(host, f"{vip.origin}.address",
                                    f"{vip.address} is also {first_of[vip.address].origin}; list each VIP once."))
        first_of.setdefault(vip.address, vip)


def _check_vips_are_no_hosts_address(host, groups, hostvars, declared, problems):
    if not declared:
        return
    owners = {}  # address -> (host, variable), first declared
    for owner in groups.get("all", ()):
        owner_vars = hostvars.get(owner, {})
        for variable in HOST_ADDRESS_VARIABLES:
            value = owner_vars.get(variable)
            if not isinstance(value, str):
                continue
            try:
                address = netaddr.IPAddress(value.strip().strip("[]"), flags=netaddr.INET_PTON)
            except (ValueError, netaddr.AddrFormatError):
                continue  # a name, '*' or a mistake some other check names; no VIP equals it
            owners.setdefault(address, (owner, variable))
    for vip in declared:
        if vip.address not in owners:
            continue
        owner, variable = owners[vip.address]
        if variable == "haproxy_bind_address":
            why = ("HAProxy bound to one VIP listens on no other VIP, and does not start where the VIP is not held "
                   "(without ip_nonlocal_bind); leave haproxy_bind_address at '*', its default")
        else:
            why = ("keepalived adds a VIP to whichever balancer holds it, so it must be no host's own address; "
                   "choose a free one")
        problems.append(Problem(host, f"{vip.origin}.address", f"{vip.address} is {owner}'s {variable}; {why}."))


def _router_ids(host, lb_hosts, hostvars, haproxy_group, declared, problems):
    """{VIP index: router id} of the VIPs whose id is valid and unique; the rest are problems.

    A generated id depends only on the VIP's place in the list (base + index + 1), so appending a VIP
    never renumbers the others: while a run converges the balancers one after another, renumbered
    ids would have the old and the new configuration claim one router id for two different VIPs.
    """
    generated = [vip for vip in declared if vip.router_id is None]
    base = DEFAULT_VRRP_ROUTER_ID_BASE
    if generated:
        value, base_host = _fleet_setting(lb_hosts, hostvars, "haproxy_vrrp_router_id_base", haproxy_group, problems)
        base = _base(base_host, DEFAULT_VRRP_ROUTER_ID_BASE if value is None else value, generated, problems)
    ids = {vip.index: vip.router_id for vip in declared if vip.router_id is not None}
    if base is not None:
        ids.update({vip.index: base + vip.index + 1 for vip in generated})
    first_with = {}
    # Generated ids claim first (they never clash among themselves), so a clash is reported on the
    # router_id someone wrote, or on the later of two written ones.
    for vip in sorted(declared, key=lambda vip: (vip.router_id is not None, vip.index)):
        if vip.index not in ids:
            continue
        router_id = ids[vip.index]
        if router_id in first_with:
            other = first_with[router_id]
            how = ("its router_id" if other.router_id is not None
                   else f"generated: haproxy_vrrp_router_id_base {base} + {other.index} + 1")
            problems.append(Problem(host, f"{vip.origin}.router_id",
                                    f"{router_id} is also the router id of {other.origin} ({how}); give each VIP "
                                    "its own router id."))
            del ids[vip.index]
            continue
        first_with[router_id] = vip
    return ids


def _base(host, value, generated, problems):
    variable = "haproxy_vrrp_router_id_base"
    highest = MAX_ROUTER_ID - (generated[-1].index + 1)
    if not _is_integer_like(value):
        problems.append(Problem(host, variable,
                                f"{_shown(value)} is not a whole number; give one from 0 to {highest}."))
        return None
    base = int(value)
    for vip in (generated[0], generated[-1]):
        router_id = base + vip.index + 1
        if not MIN_ROUTER_ID <= router_id <= MAX_ROUTER_ID:
            fix = f"give a base from 0 to {highest}" if highest >= 0 else "give more VIPs a router_id of their own"
            problems.append(Problem(host, variable,
                                    f"{base} gives {vip.origin} router id {router_id}, outside VRRP's "
                                    f"{MIN_ROUTER_ID} to {MAX_ROUTER_ID}; {fix}."))
            return None
    return base


def _vrrp_addresses(lb_hosts, hostvars, problems):
    """{balancer: (variable it comes from, address)} of the balancers whose VRRP address is valid."""
    addresses = {}
    first_with = {}
    for host in lb_hosts:
        host_vars = hostvars.get(host, {})
        if host_vars.get("haproxy_vrrp_address") not in (None, ""):
            variable = "haproxy_vrrp_address"
            address = _ip(host, variable, host_vars[variable], problems,
                          fix="give the IP address this load balancer sends VRRP from.")
        else:
            variable = "ansible_host"
            address = _ip(host, variable, host_vars.get("ansible_host", host_vars.get("inventory_hostname", host)),
                          problems, fix="VRRP needs an IP address: set haproxy_vrrp_address to the address this "
                                        "load balancer sends VRRP from.")
        if address is None:
            continue
        if address.value == 0 or address.is_multicast():
            problems.append(Problem(host, variable,
                                    f"{address} is not an address the other balancers can send VRRP to; "
                                    "set haproxy_vrrp_address to this load balancer's own address."))
            continue
        if address in first_with:
            fix = ("haproxy_vrrp_address defaults to ansible_host, so set haproxy_vrrp_address on each "
                   "balancer to its own address" if variable == "ansible_host" else "give each balancer its own")
            problems.append(Problem(host, variable, f"{address} is also {first_with[address]}'s VRRP address; {fix}."))
            continue
        first_with[address] = host
        addresses[host] = (variable, address)
    return addresses


def _check_vrrp_families(host, declared, vrrp_addresses, problems):
    """keepalived sends a VIP's VRRP in the VIP's IP family, to the peers' addresses of that family.

    A VIP list of one family is the reference, so the balancers that differ are named; a mixed list
    is checked against the balancers' family when they agree, else against its first VIP.
    """
    vip_families = {vip.address.version for vip in declared}
    balancer_families = {address.version for dummy, address in vrrp_addresses.values()}
    if not vip_families or not balancer_families:
        return
    if len(vip_families) == 1:
        family, name_balancers, name_vips = min(vip_families), True, False
    elif len(balancer_families) == 1:
        family, name_balancers, name_vips = min(balancer_families), False, True
    else:
        family, name_balancers, name_vips = declared[0].address.version, True, True
    for balancer, (variable, address) in vrrp_addresses.items():
        if name_balancers and address.version != family:
            problems.append(Problem(balancer, variable,
                                    f"{address} is IPv{address.version} but the VIPs are IPv{family} (VRRP for a VIP "
                                    f"runs in the VIP's family); set haproxy_vrrp_address to this balancer's "
                                    f"IPv{family} address."))
    for vip in declared:
        if name_vips and vip.address.version != family:
            problems.append(Problem(host, f"{vip.origin}.address",
                                    f"{vip.address} is IPv{vip.address.version} but the balancers' VRRP addresses are "
                                    f"IPv{family} (VRRP for a VIP runs in the VIP's family, and each balancer has one "
                                    f"VRRP address); give an IPv{family} VIP."))


def _check_vrrp_networks(declared, vrrp_addresses, problems):
    """Each balancer's VRRP address must lie in every stated VIP network of its family.

    A stated network says which link the VIP lives on, and so where clients reach it: any balancer
    may have to take the VIP over, so every balancer must be on that link, at its VRRP address.
    """
    by_network = {}
    for vip in declared:
        if vip.network is not None:
            by_network.setdefault(vip.network, []).append(vip)
    for network, vips in by_network.items():
        for balancer, (variable, address) in vrrp_addresses.items():
            if address.version != network.version or address in network:
                continue
            names = ", ".join(f"{vip.origin} ({vip.address}/{vip.prefix_length})" for vip in vips)
            problems.append(Problem(balancer, variable,
                                    f"{address} is outside {network}, the network of {names}; a VIP moves only "
                                    "between balancers on its network: set haproxy_vrrp_address to this balancer's "
                                    "address there, or correct the VIP's prefix length."))


def _host_instances(host, host_vars, also_balancer, problems):
    before = len(problems)
    base_port = _integer(host, "wt_base_port", host_vars.get("wt_base_port", DEFAULT_BASE_PORT),
                         MIN_PORT, MAX_PORT, problems)
    listen_address, connect_address = _addresses(host, host_vars, problems)
    if len(problems) > before:
        return []
    declared = _declared_instances(host, host_vars.get("wt_instances", DEFAULT_INSTANCE_COUNT), base_port, problems)

    instances = []
    ports_seen = {}
    for position, origin, spec in declared:
        port = _integer(host, f"{origin}.port", spec.get("port", base_port + position), MIN_PORT, MAX_PORT,
                        problems)
        weight = _integer(host, f"{origin}.weight", spec.get("weight", DEFAULT_WEIGHT), 0, MAX_WEIGHT, problems)
        prefix = _prefix(host, origin, spec, port, problems)
        if port is None or weight is None or prefix is None:
            continue
        if port in ports_seen:
            problems.append(Problem(host, f"{origin}.port",
                                    f"port {port} is already used by {ports_seen[port]} on this host; "
                                    "give each instance its own port."))
            continue
        if also_balancer and port == _balancer_port(host_vars):
            problems.append(Problem(host, f"{origin}.port",
                                    f"port {port} is HAProxy's haproxy_bind_port on this host, which is also "
                                    "a load balancer; choose another port."))
            continue
        ports_seen[port] = origin
        instances.append(Instance(
            host=host, prefix=prefix, listen_address=listen_address, connect_address=connect_address,
            port=port, weight=weight, server_name=server_name(host, port),
            backend_name=instance_backend_name(server_name(host, port)), unit_name=unit_name(port),
            prefix_generated="prefix" not in spec, origin=origin))
    return instances


def _declared_instances(host, value, base_port, problems):
    """(position, origin, spec mapping) for each well-formed declared instance."""
    if _is_integer_like(value):
        count = int(value)
        if count < 0:
            problems.append(Problem(host, "wt_instances",
                                    f"{value!r} is negative; give a count of 0 or more, or a list of instances."))
            return []
        if base_port is not None and base_port + count - 1 > MAX_PORT:
            problems.append(Problem(host, "wt_instances",
                                    f"{count} instances from port {base_port} run past port {MAX_PORT}; "
                                    "lower wt_base_port or the count."))
            return []
        return [(index, f"wt_instances[{index}]", {}) for index in range(count)]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        declared = []
        for index, spec in enumerate(value):
            origin = f"wt_instances[{index}]"
            if spec is None:
                spec = {}
            if not isinstance(spec, Mapping):
                problems.append(Problem(host, origin,
                                        f"{spec!r} is not a mapping; write each instance as "
                                        "{prefix: ..., port: ..., weight: ...} (every key optional)."))
                continue
            unknown = [key for key in spec if key not in INSTANCE_KEYS]
            for key in unknown:
                close = difflib.get_close_matches(str(key), INSTANCE_KEYS, n=1)
                hint = f"did you mean {close[0]}?" if close else f"allowed keys are {', '.join(INSTANCE_KEYS)}."
                problems.append(Problem(host, f"{origin}.{key}", f"unknown key; {hint}"))
            if not unknown:
                declared.append((index, origin, spec))
        return declared
    problems.append(Problem(host, "wt_instances",
                            f"{value!r} is neither a whole number nor a list; give a count such as 2, "
                            "or a list of {prefix, port, weight} mappings."))
    return []


def _prefix(host, origin, spec, port, problems):
    if "prefix" not in spec:
        return None if port is None else generated_prefix(host, port)
    prefix = spec["prefix"]
    variable = f"{origin}.prefix"
    if not isinstance(prefix, str) or not prefix:
        problems.append(Problem(host, variable, f"{prefix!r} is not a non-empty string; give a prefix such as app1a-."))
        return None
    if not PREFIX_PATTERN.match(prefix):
        problems.append(Problem(host, variable,
                                f"{prefix!r} has characters that are not URL-safe in Wt session ids; "
                                "use only letters, digits, '.', '_' and '-'."))
        return None
    if len(prefix) > MAX_PREFIX_LENGTH:
        problems.append(Problem(host, variable,
                                f"{prefix!r} is longer than {MAX_PREFIX_LENGTH} characters; it goes into every URL, "
                                "use a shorter one."))
        return None
    return prefix


def _addresses(host, host_vars, problems):
    """(listen address, connect address) of the host's instances, as strings."""
    default = host_vars.get("ansible_host", host_vars.get("inventory_hostname", host))
    if "wt_listen_address" in host_vars:
        listen = _ip(host, "wt_listen_address", host_vars["wt_listen_address"], problems)
    else:
        listen = _ip(host, "ansible_host", default, problems,
                     fix="set wt_listen_address to the IP address the Wt instances should listen on.")
    if listen is None:
        return None, None
    if "wt_connect_address" in host_vars:
        connect = _ip(host, "wt_connect_address", host_vars["wt_connect_address"], problems)
    elif listen.value == 0:
        # Listening on every address is allowed when asked for explicitly, but HAProxy
        # still needs one concrete address to reach the instances.
        connect = _ip(host, "ansible_host", default, problems,
                      fix=f"wt_listen_address is {listen}, so set wt_connect_address to the address "
                          "HAProxy should connect to.")
    else:
        connect = listen
    if connect is not None and connect.value == 0:
        problems.append(Problem(host, "wt_connect_address",
                                f"{connect} is not an address HAProxy can connect to; "
                                "give this host's real IP address."))
        return None, None
    if connect is None:
        return None, None
    return str(listen), str(connect)


def _ip(host, variable, value, problems, fix=None):
    if isinstance(value, str):
        try:
            return netaddr.IPAddress(value.strip("[]"), flags=netaddr.INET_PTON)
        except (ValueError, netaddr.AddrFormatError):
            pass
    problems.append(Problem(host, variable,
                            f"{value!r} is not an IP address; {fix or 'give an IPv4 or IPv6 address.'}"))
    return None


def _balancer_port(host_vars):
    port = host_vars.get("haproxy_bind_port", 80)
    return int(port) if _is_integer_like(port) else None


def _is_integer_like(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()) is not None


def _integer(host, variable, value, lowest, highest, problems):
    if not _is_integer_like(value):
        problems.append(Problem(host, variable,
                                f"{value!r} is not a whole number; give one from {lowest} to {highest}."))
        return None
    number = int(value)
    if not lowest <= number <= highest:
        problems.append(Problem(host, variable, f"{number} is out of range; give a number from {lowest} to {highest}."))
        return None
    return number


def _check_fleet_wide(instances, problems):
    by_prefix = {}
    for instance in instances:
        by_prefix.setdefault(instance.prefix, []).append(instance)
    for prefix, owners in by_prefix.items():
        for duplicate in owners[1:]:
            first = owners[0]
            problems.append(Problem(duplicate.host, _prefix_variable(duplicate),
                                    f"prefix {prefix!r} is already used by {first.host} {first.origin}; "
                                    f"{_prefix_fix(duplicate)}."))
    for shorter, longer in find_prefix_overlaps(by_prefix):
        if shorter == longer:
            continue
        short_owner, long_owner = by_prefix[shorter][0], by_prefix[longer][0]
        problems.append(Problem(long_owner.host, _prefix_variable(long_owner),
                                f"prefix {longer!r} begins with {shorter!r} of {short_owner.host} "
                                f"{short_owner.origin}, so its sessions would be routed there; "
                                f"{_prefix_fix(long_owner)} (ending every prefix with '-' avoids this)."))

    by_endpoint = {}
    for instance in instances:
        key = (instance.connect_address, instance.port)
        if key in by_endpoint and by_endpoint[key].host != instance.host:
            other = by_endpoint[key]
            problems.append(Problem(instance.host, f"{instance.origin}.port",
                                    f"{instance.connect_address}:{instance.port} is also where {other.host} "
                                    f"{other.origin} listens; give the hosts distinct addresses or ports."))
        by_endpoint.setdefault(key, instance)

    by_server = {}
    for instance in instances:
        if instance.server_name in by_server and by_server[instance.server_name].host != instance.host:
            other = by_server[instance.server_name]
            problems.append(Problem(instance.host, "inventory_hostname",
                                    f"its HAProxy server name {instance.server_name!r} collides with {other.host}'s "
                                    "after replacing characters HAProxy does not allow; rename one of the hosts."))
        by_server.setdefault(instance.server_name, instance)


def _prefix_variable(instance):
    return f"{instance.origin}.prefix" if not instance.prefix_generated else f"{instance.origin} (generated prefix)"


def _prefix_fix(instance):
    if instance.prefix_generated:
        return f"set {instance.origin}.prefix explicitly"
    return f"change {instance.origin}.prefix"

# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's topology: Ansible inventory in, validated routing facts out.

Plain Python with no Ansible import, so it is unit-tested without Ansible running and
shared by filters, modules and tests. Everything the roles write (HAProxy servers and
session map, Wt units and their --session-id-prefix) reads the one Topology built here,
so the load balancers and the Wt instances can never disagree about a prefix or a port.

Input is the shape Ansible already has: ``groups`` (group name -> host names) and
``hostvars`` (host name -> variables). Bad input raises TopologyError listing every
problem found, each naming the host, the variable and what to do.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

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
# Load balancer variable read here, because the Wt side must know it too (trusted proxies).
BALANCER_VARIABLES = ("haproxy_source_address",)
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


@dataclass(frozen=True)
class Topology:
    haproxy_group: str
    wt_group: str
    lb_hosts: tuple
    app_hosts: tuple
    instances: tuple
    balancers: tuple = ()

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
        }


def _instance_dict(instance):
    data = asdict(instance)
    del data["origin"]
    return data


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
                    tuple(balancers))


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

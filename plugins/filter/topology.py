# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology filter: a thin adapter around module_utils/topology.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: topology
author: wtstack.fleet contributors (@wtstack)
version_added: "0.1.0"
short_description: Compute and validate the Wt fleet's routing topology from the inventory
description:
  - Reads the load balancer group, the Wt application host group and their host variables
    (C(wt_instances), C(wt_base_port), C(wt_listen_address), C(wt_connect_address), and the load
    balancers' C(haproxy_source_address), C(haproxy_vips), C(haproxy_vrrp_router_id_base) and
    C(haproxy_vrrp_address)) and returns
    every Wt instance with its session-id prefix, addresses, port, HAProxy weight, server name and
    systemd unit name, and the load balancers' floating VIPs (keepalived, VRRP).
  - Fails with one line per problem, each naming the host and the variable, when the inventory is
    wrong; for example duplicate or overlapping prefixes (C(wt1) would also catch C(wt10)), two
    instances on one port, a port out of range, an address that is not an IP, unknown keys,
    misspelt C(wt_*) variables or an empty group.
  - Prefixes the inventory does not set are generated as C(<host>-<port>-); they depend only on the
    host's name and the instance's port, so adding or removing other hosts or instances never
    renames an instance (which would orphan its users' sessions).
  - C(haproxy_vips) is one list for the whole fleet (set it in group_vars of the balancer group; every
    balancer must see the same value, as must C(haproxy_vrrp_router_id_base)). Each item is an address,
    C(198.18.1.10) or C(198.18.1.10/24) (the length states the VIP's network, which every balancer's
    VRRP address must be in; a VIP without one gets C(/32) or C(/128), which states no network), or a
    mapping with C(address), optional C(holder) (a load balancer) and optional C(router_id) (1 to 255).
  - A VIP without C(holder) is held by the load balancer at its list position modulo the number of
    balancers (active-active behind DNS round robin); one without C(router_id) gets
    C(haproxy_vrrp_router_id_base) (default 50) + position + 1. Both depend only on the position, so
    add new VIPs at the end of the list (or pin C(holder) and C(router_id)); a VIP moved up the list
    takes another id and holder. Adding a load balancer moves the unpinned VIPs' holders.
  - VIPs are refused, before any host is contacted, when one is not a routable unicast address
    (unspecified, loopback, multicast, link-local, or the network or broadcast address of its stated
    network), is listed twice, is any host's own address (C(ansible_host), C(wt_listen_address),
    C(wt_connect_address), C(haproxy_source_address), C(haproxy_vrrp_address), C(haproxy_bind_address))
    anywhere in the inventory, is of another IP family than the balancers' VRRP addresses, has a stated
    network some balancer's VRRP address is outside, names a holder that is not a load balancer, has a
    router id out of range or used twice, or has unknown keys; and when the fleet has a single load
    balancer (a VIP needs two to move between), or two balancers share a VRRP address.
extends_documentation_fragment:
  - wtstack.fleet.inventory_groups
seealso:
  - name: wtstack.fleet inventory reference
    description: The variables the topology reads and the rules it enforces.
    link: https://github.com/wtstack/fleet/blob/main/docs/inventory.md#inventory-reference
  - name: wtstack.fleet design
    description: How the topology feeds the roles, the routing design and the contracts (prefixes, names, paths).
    link: https://github.com/wtstack/fleet/blob/main/docs/design.md
"""

EXAMPLES = r"""
- name: Compute the topology once, on the controller, before any host is touched
  ansible.builtin.set_fact:
    wtstack_topology: "{{ groups | wtstack.fleet.topology(hostvars) }}"
  delegate_to: localhost
  run_once: true

- name: Groups with other names
  ansible.builtin.debug:
    msg: "{{ groups | wtstack.fleet.topology(hostvars, haproxy_group='edge', wt_group='app') }}"

# Inventory:
#   haproxy: {hosts: {lb1: {ansible_host: 198.51.100.10}}}
#   wt:
#     hosts:
#       app1: {ansible_host: 198.51.100.21, wt_instances: 2}
# gives instances app1-9090 (prefix app1-9090-) and app1-9091 (prefix app1-9091-).

# With two balancers and, in group_vars/haproxy.yml,
#   haproxy_vips: [198.51.100.50/24, {address: 198.51.100.51/24, router_id: 70}]
# VIP 198.51.100.50 is held by lb1 (router id 51, lb1 250, lb2 240), 198.51.100.51 by lb2
# (router id 70, lb2 250, lb1 240); every balancer's VRRP address must be in 198.51.100.0/24.
"""

RETURN = r"""
_value:
  description: The topology.
  type: dict
  contains:
    haproxy_group:
      description: The load balancer group's name.
      type: str
    wt_group:
      description: The Wt application host group's name.
      type: str
    lb_hosts:
      description: Inventory names of the load balancers, in inventory order.
      type: list
      elements: str
    app_hosts:
      description: Inventory names of the Wt application hosts, in inventory order.
      type: list
      elements: str
    instances:
      description: Every Wt instance of the fleet, by host then in declaration order.
      type: list
      elements: dict
      contains:
        host:
          description: Inventory name of the host the instance runs on.
          type: str
        prefix:
          description: Wt C(--session-id-prefix); unique and prefix-free across the fleet.
          type: str
        listen_address:
          description: Wt C(--http-address).
          type: str
        connect_address:
          description: The address HAProxy connects to.
          type: str
        port:
          description: Wt C(--http-port).
          type: int
        weight:
          description: HAProxy server weight (0 to 256).
          type: int
        server_name:
          description: HAProxy server name in the backend, C(<host>-<port>).
          type: str
        unit_name:
          description: The systemd unit on the host, C(wt@<port>.service).
          type: str
        prefix_generated:
          description: Whether the prefix was generated rather than set in the inventory.
          type: bool
    instances_by_host:
      description: The same instances grouped by host.
      type: dict
    balancers:
      description: Every load balancer, in inventory order.
      type: list
      elements: dict
      version_added: "1.0.0"
      contains:
        host:
          description: Inventory name of the load balancer.
          type: str
        source_address:
          description:
            - Its C(haproxy_source_address), the address HAProxy connects to the instances from;
              C(None) when unset (the kernel chooses).
          type: str
        proxy_address:
          description:
            - The address the instances see it connect from, so the one whose C(X-Forwarded-For) they trust;
              C(source_address) when set, else C(ansible_host), else the inventory name.
          type: str
        vrrp_address:
          description:
            - The address keepalived sends and receives VRRP from (C(unicast_src_ip); the other balancers
              list it as a unicast peer); C(haproxy_vrrp_address) when set, else C(ansible_host).
            - C(None) when the fleet has no VIPs.
          type: str
    proxy_addresses:
      description: The C(proxy_address) of every load balancer, in inventory order.
      type: list
      elements: str
      version_added: "1.0.0"
    vips:
      description: The floating VIPs, in C(haproxy_vips) order; empty without C(haproxy_vips).
      type: list
      elements: dict
      version_added: "1.0.0"
      contains:
        address:
          description: The VIP, without a prefix length.
          type: str
        prefix_length:
          description: The mask it gets on the interface; the stated one, else 32 (IPv4) or 128 (IPv6).
          type: int
        family:
          description: C(4) or C(6).
          type: int
        holder:
          description: The load balancer that holds it while it is up (the first of C(priorities)).
          type: str
        router_id:
          description: Its VRRP virtual router id, 1 to 255, unique among the fleet's VIPs.
          type: int
        priorities:
          description:
            - Every load balancer with its VRRP priority for this VIP, highest first - the holder at 250,
              then the others in group order starting after it at 240, 230, ... (a smaller step past 24
              balancers). A holder's second, third, ... VIP starts one, two, ... balancers further on, so
              the VIPs of a dead balancer spread over the survivors.
          type: list
          elements: dict
          contains:
            host:
              description: Inventory name of the load balancer.
              type: str
            priority:
              description: Its VRRP priority, 1 to 254.
              type: int
        name:
          description: The keepalived C(vrrp_instance) name, C(wtstack_vip_<router_id>).
          type: str
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import (
    BALANCER_VARIABLES,
    HOST_ADDRESS_VARIABLES,
    ROLE_VARIABLE_PREFIXES,
    TOPOLOGY_VARIABLES,
    TopologyError,
    build_topology,
)

# Only these host variables are read, so a large inventory is not templated wholesale.
_READ_VARIABLES = (TOPOLOGY_VARIABLES + BALANCER_VARIABLES + HOST_ADDRESS_VARIABLES
                   + ("inventory_hostname", "haproxy_bind_port"))


def _plain_hostvars(groups, hostvars, haproxy_group, wt_group):
    fleet_hosts = {host for group in (haproxy_group, wt_group) for host in groups.get(group) or ()}
    plain = {}
    for host in groups.get("all", ()):
        if host in fleet_hosts:
            plain[host] = _read(hostvars[host], lambda name: name in _READ_VARIABLES or (
                str(name).startswith("wt_") and not str(name).startswith(ROLE_VARIABLE_PREFIXES)))
    # A VIP must be no host's own address, so with VIPs the other hosts' addresses are read too;
    # without, a shared inventory's other hosts keep everything but wt_instances untemplated.
    with_vips = any(plain[host].get("haproxy_vips") for host in groups.get(haproxy_group) or () if host in plain)
    outside = ("wt_instances",) + (HOST_ADDRESS_VARIABLES if with_vips else ())
    return {host: plain[host] if host in plain else _read(hostvars[host], lambda name: name in outside)
            for host in groups.get("all", ())}


def _read(host_vars, wanted):
    return {name: host_vars[name] for name in list(host_vars.keys()) if wanted(name)}


def topology(groups, hostvars, haproxy_group="haproxy", wt_group="wt"):
    if not isinstance(groups, Mapping) or not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("topology expects `groups | wtstack.fleet.topology(hostvars)`")
    try:
        plain = _plain_hostvars(groups, hostvars, haproxy_group, wt_group)
        return build_topology(groups, plain, haproxy_group=haproxy_group, wt_group=wt_group).to_dict()
    except (TopologyError, RuntimeError) as error:
        raise AnsibleFilterError(f"wtstack.fleet: the inventory is not a valid Wt fleet:\n{error}") from error


class FilterModule:
    def filters(self):
        return {"topology": topology}

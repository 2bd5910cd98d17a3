# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interface_holding filter: a thin adapter around module_utils/vrrp.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: interface_holding
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: The network interface that carries an address, from a host's gathered facts
description:
  - Looks through C(ansible_facts.interfaces) for the interface whose IPv4 address, secondary IPv4
    addresses or IPv6 addresses include the given address, and returns its name.
  - The haproxy role uses it to put the VIPs on the interface of the balancer's VRRP address.
  - Fails, naming the host's interfaces and their addresses, when no interface has the address.
options:
  _input:
    description: The host's facts (C(ansible_facts), gathered with C(gather_facts) or C(setup)).
    type: dict
    required: true
  address:
    description: The IPv4 or IPv6 address to look for.
    type: str
    required: true
  host:
    description: The host's name, for the error message.
    type: str
    default: this host
"""

EXAMPLES = r"""
- name: The interface of the balancer's own address
  ansible.builtin.debug:
    msg: "{{ ansible_facts | wtstack.fleet.interface_holding(ansible_host, inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: The interface name, for example C(eth0).
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.module_utils.vrrp import VrrpError
from ansible_collections.wtstack.fleet.plugins.module_utils.vrrp import interface_holding as _interface_holding


def interface_holding(facts, address, host="this host"):
    if not isinstance(facts, dict):
        raise AnsibleFilterError("wtstack.fleet.interface_holding: expects the host's facts (ansible_facts)")
    try:
        return _interface_holding(facts, address, host)
    except (VrrpError, ValueError) as error:
        raise AnsibleFilterError(str(error)) from error


class FilterModule:
    def filters(self):
        return {"interface_holding": interface_holding}

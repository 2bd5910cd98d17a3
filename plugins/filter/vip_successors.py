# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vip_successors filter: a thin adapter around module_utils/vrrp.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: vip_successors
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: Which balancer takes each VIP when one balancer gives its VIPs up
description:
  - Given VIPs as the C(wtstack.fleet.topology) filter returns them (each with its C(priorities), the
    preferred holder first) and the balancer that gives them up, returns for each other balancer the VIPs
    it takes - for each VIP, the first balancer of its priority order that is not the one leaving.
  - Assumes every other balancer serves (keepalived skips one that does not); C(playbooks/rolling_balancers.yml)
    checks that first.
options:
  _input:
    description: The VIPs (C(wtstack_topology.vips) or a part of it).
    type: list
    elements: dict
    required: true
  leaving:
    description: The balancer that gives the VIPs up.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Who takes lb1's VIPs
  ansible.builtin.debug:
    msg: "{{ wtstack_topology.vips | wtstack.fleet.vip_successors('lb1') }}"
"""

RETURN = r"""
_value:
  description: Balancer name to the list of VIPs (the same mappings as the input) it takes.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.module_utils.vrrp import VrrpError, successors


def vip_successors(vips, leaving):
    try:
        return successors(list(vips), str(leaving))
    except (VrrpError, KeyError, TypeError) as error:
        raise AnsibleFilterError(f"wtstack.fleet.vip_successors: {error}") from error


class FilterModule:
    def filters(self):
        return {"vip_successors": vip_successors}

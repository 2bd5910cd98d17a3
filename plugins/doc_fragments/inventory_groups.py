# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation shared by the filters that read the whole inventory: its groups and host variables."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  _input:
    description: The inventory's C(groups) magic variable.
    type: dict
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  haproxy_group:
    description: The group of load balancers.
    type: str
    default: haproxy
  wt_group:
    description: The group of hosts that run Wt instances.
    type: str
    default: wt
"""

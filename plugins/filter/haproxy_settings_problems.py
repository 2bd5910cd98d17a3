# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The haproxy_settings_problems filter: a thin adapter around module_utils/haproxy_settings.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: haproxy_settings_problems
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: What is wrong with a load balancer's haproxy role variables beyond their types
description:
  - Checks what the C(wtstack.fleet.haproxy) role's argument spec cannot - settings that depend on each
    other, and values C(haproxy -c) accepts but that would take the fleet down (a health check URI
    without C(/) marks every instance down) - and returns one message per problem,
    C(host: variable: problem; fix).
  - Ports in range and apart (the frontend, TLS, statistics and ACME challenge ports), counts of checks
    at least 1, the VRRP advertisement interval VRRPv3 can carry, TLS settings (ACME, a redirect or HSTS
    need TLS; an absolute certificate path; names for a self-signed certificate), ACME settings (names
    an HTTP-01 challenge can validate, a contact address for a public CA, an https directory URL, a CA
    file on the controller, an issuing balancer that is a load balancer and whose ACME settings this one
    shares) and statistics settings (address, password, user name, URI).
  - No message carries C(haproxy_stats_password).
  - The role's C(validate) entry point calls it for every load balancer, on the controller, before any
    host is contacted.
options:
  _input:
    description:
      - The load balancer's settings - every variable the checks read, by name (the role's
        C(haproxy_validated_settings)), with its value.
    type: dict
    required: true
  host:
    description: The load balancer's inventory name, which every message starts with.
    type: str
    required: true
  lb_hosts:
    description: The fleet's load balancers (C(wtstack_topology.lb_hosts)).
    type: list
    elements: str
    required: true
  hostvars:
    description:
      - The C(hostvars) magic variable. Only the ACME issuer's (C(haproxy_tls_acme_host)) ACME settings are
        read, and only when this balancer or the issuer asks for ACME certificates.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Check the role variables beyond their types
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
  vars:
    problems: >-
      {{ dict(haproxy_validated_settings | zip(query('ansible.builtin.vars', *haproxy_validated_settings)))
         | wtstack.fleet.haproxy_settings_problems(inventory_hostname, wtstack_topology.lb_hosts, hostvars) }}
"""

RETURN = r"""
_value:
  description: One message per problem, in a fixed order; empty when the settings are consistent.
  type: list
  elements: str
  sample:
    - "lb1: haproxy_tls_redirect: redirecting to https needs TLS; set haproxy_tls_enabled to true or drop the redirect."
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_settings import (
    SettingsError,
    settings_problems,
)


def haproxy_settings_problems(settings, host, lb_hosts, hostvars):
    if not isinstance(settings, Mapping) or not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("wtstack.fleet.haproxy_settings_problems expects "
                                 "`settings | wtstack.fleet.haproxy_settings_problems(host, lb_hosts, hostvars)`")
    try:
        return settings_problems(str(host), settings, list(lb_hosts), hostvars)
    except SettingsError as error:
        raise AnsibleFilterError(f"wtstack.fleet.haproxy_settings_problems: {error}") from error


class FilterModule:
    def filters(self):
        return {"haproxy_settings_problems": haproxy_settings_problems}

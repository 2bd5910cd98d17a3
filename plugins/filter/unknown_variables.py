# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The unknown_variables filter: a thin adapter around plugin_utils/role_variables.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: unknown_variables
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: Find the fleet's variables that look like the collection's but are none of them
description:
  - Looks at every variable of every host of the load balancer and Wt application host groups whose
    name starts with C(wt_app_), C(haproxy_), C(rolling_) or C(wtstack_), and returns a message for
    each one the collection does not read - a misspelt C(wt_app_verison) would otherwise be accepted
    and ignored.
  - Known are the options of every entry point of the roles' C(meta/argument_specs.yml) (a close one is
    suggested, C(did you mean wt_app_version?)), the names the roles and playbooks define themselves
    (C(defaults/main.yml), C(vars/main.yml), registered results, C(set_fact), task and play C(vars),
    loop variables), and C(wtstack_haproxy_group), C(wtstack_wt_group), C(wtstack_app_strategy) and
    C(wtstack_allowed_variables). They are read from the collection's files, once per call.
  - A host's C(wtstack_allowed_variables) (a list of names or shell-style patterns such as
    C(haproxy_mycompany_*)) declares variables of your own under those prefixes; they are not reported.
  - Hosts outside both groups are not looked at (a shared inventory may run other roles with such names).
  - C(playbooks/topology.yml) runs it once, on the controller, before any host is contacted, and fails
    the run with the messages it returns.
extends_documentation_fragment:
  - wtstack.fleet.inventory_groups
"""

EXAMPLES = r"""
- name: Refuse misspelt role variables before any host is contacted
  ansible.builtin.assert:
    that: unknown | length == 0
    fail_msg: "{{ unknown | join('\n') }}"
  vars:
    unknown: "{{ groups | wtstack.fleet.unknown_variables(hostvars) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description:
    - >-
      One message per unknown variable, C(host: variable: unknown variable; did you mean name?); a variable
      that several hosts have (an extra var, a group variable) is reported once, naming the first host and
      how many others. Empty when every variable is known.
    - A C(wtstack_allowed_variables) that is not a list of strings is reported too.
  type: list
  elements: str
"""

import os

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.wtstack.fleet.plugins.plugin_utils.role_variables import (
    ALLOWED_VARIABLES,
    PREFIXES,
    VariableNamesError,
    read_known_names,
)
from ansible_collections.wtstack.fleet.plugins.plugin_utils.role_variables import (
    unknown_variables as _unknown_variables,
)

# plugins/filter/ -> the collection's root, which holds roles/ and playbooks/.
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def unknown_variables(groups, hostvars, haproxy_group="haproxy", wt_group="wt"):
    try:
        hosts = list(dict.fromkeys(host for group in (haproxy_group, wt_group) for host in groups.get(group) or ()))
        names = {}
        allowed = {}
        for host in hosts:
            host_vars = hostvars[host]
            # Only the names: no value is templated but the allow list's.
            names[host] = [to_text(name) for name in list(host_vars.keys()) if str(name).startswith(PREFIXES)]
            if ALLOWED_VARIABLES in names[host]:
                allowed[host] = host_vars[ALLOWED_VARIABLES]
        return _unknown_variables(names, read_known_names(COLLECTION_ROOT), allowed)
    except (AttributeError, KeyError, TypeError, VariableNamesError) as error:
        raise AnsibleFilterError(f"wtstack.fleet.unknown_variables: {to_text(error)}") from error


class FilterModule:
    def filters(self):
        return {"unknown_variables": unknown_variables}

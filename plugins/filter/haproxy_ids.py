# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The haproxy_ids filter: a thin adapter around module_utils/haproxy_runtime/ids.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: haproxy_ids
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: The HAProxy ids of backend wt and of its placement servers
description:
  - Returns the numeric ids (HAProxy's C(id) keyword) the haproxy role gives backend C(wt) and each
    of its placement servers, so that the runtime modules read one server with
    C(show stat <backend id> 4 <server id>) instead of the whole table.
  - A server's id is computed from its name, the way M(wtstack.fleet.haproxy_server) and
    M(wtstack.fleet.haproxy_info) compute it; names whose ids would collide are given distinct ones.
options:
  _input:
    description: The placement servers' names.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: The ids of the fleet's placement servers
  ansible.builtin.debug:
    msg: "{{ wtstack_topology.instances | map(attribute='server_name') | wtstack.fleet.haproxy_ids }}"
"""

RETURN = r"""
_value:
  description: C(backend), the id of backend wt, and C(servers), each server's name to its id.
  type: dict
  sample: {backend: 1000000, servers: {app1-9090: 441127140}}
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.ids import (
    PLACEMENT_BACKEND_ID,
    placement_server_ids,
)


def haproxy_ids(names):
    names = [names] if isinstance(names, str) else list(names)
    if not all(isinstance(name, str) for name in names):
        raise AnsibleFilterError(f"wtstack.fleet.haproxy_ids: {names!r} is not a list of server names")
    return {"backend": PLACEMENT_BACKEND_ID, "servers": placement_server_ids(names)}


class FilterModule:
    def filters(self):
        return {"haproxy_ids": haproxy_ids}

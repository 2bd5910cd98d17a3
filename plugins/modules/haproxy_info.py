#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_info
short_description: Read the state of HAProxy backend servers from the runtime API
description:
  - Returns, for every server of every backend (or of one backend, or the servers named), its
    administrative state, status, health check, weight, sessions and queue, read from the runtime API
    (the C(stats socket)) with C(show servers state) and C(show stat), both in one exchange.
  - Wt instances named with O(backend=wt) and O(server) or O(servers) are read alone, so the cost
    follows the instances asked about, not the fleet. Each one's own backend (C(show servers state
    wt.<server>), C(show stat wt.<server> 4 -1)), its placement server (C(get weight), and
    C(show stat) by the ids the haproxy role gives backend C(wt) and its servers), all in one exchange.
    While an instance is down or in maint, its placement server's drain is not in those replies, and
    C(show servers state wt) is read as well (in a second exchange, only the lines asked about parsed).
    A configuration without those ids, or a server that is not an instance, is read from the whole table.
  - A Wt instance of the wtstack.fleet roles is one row, backend C(wt) and its server name, whatever
    HAProxy objects route it. HAProxy holds it as two servers of that name, a placement server in backend
    C(wt) (new sessions) tracking the health checked server in the instance's own backend
    (C(wt.<server>), where its sessions go, WebSocket upgrades through its C(ws) server); the row has
    the state, health and address of the instance, the weight of its placement server and the sessions
    of all three. The own backends are not listed, unless O(backend) names one or O(raw=true).
  - Read only; works the same in check mode.
version_added: 0.1.0
author:
  - wtstack.fleet contributors (@wtstack)
options:
  backend:
    description: Only this backend's servers. The module fails if HAProxy has no such backend.
    type: str
  server:
    description: Only servers of this name (in O(backend), or in any backend). The module fails if there is none.
    type: str
  servers:
    description:
      - Only servers of these names (in O(backend), or in any backend), in this order. The module fails
        naming those there are none of. Mutually exclusive with O(server).
    type: list
    elements: str
    version_added: 1.0.0
  vips:
    description:
      - Also report this balancer's view of these floating VIPs (RV(vrrp)) - the topology's C(wtstack_topology.vips),
        or any mappings with a C(name) (the VRRP instance) and an C(address); other keys are ignored.
      - Reported even when HAProxy does not answer (the module then fails, with RV(vrrp) in its result).
    type: list
    elements: dict
    version_added: 1.0.0
  vrrp_state_dir:
    description: Where keepalived's notify script of the C(wtstack.fleet.haproxy) role records each VIP's VRRP state.
    type: path
    default: /run/wtstack/vrrp
    version_added: 1.0.0
  vrrp_release_dir:
    description: Where a VIP released by M(wtstack.fleet.vrrp_vip) is marked.
    type: path
    default: /var/lib/wtstack/vrrp
    version_added: 1.0.0
  raw:
    version_added: 1.0.0
    description:
      - List every HAProxy server as HAProxy does, each instance's own backend with its C(ws) and relay
        servers included, instead of one row per instance.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wtstack.fleet.runtime_api
attributes:
  check_mode:
    support: full
    details: Read only.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: wtstack.fleet.haproxy_server
"""

EXAMPLES = r"""
- name: Which balancer holds which VIP, and its VRRP state here
  wtstack.fleet.haproxy_info:
    backend: wt
    vips: "{{ wtstack_topology.vips }}"
  register: balancer

- name: Read every server of backend wt
  wtstack.fleet.haproxy_info:
    backend: wt
  register: haproxy
  become: true

- name: Fail unless every instance is up and ready
  ansible.builtin.assert:
    that: haproxy.servers | rejectattr('status', 'eq', 'UP') | list | length == 0
    fail_msg: "{{ haproxy.servers | rejectattr('status', 'eq', 'UP') | map(attribute='server') | join(', ') }} not UP"

- name: Sessions still on app1-9090
  wtstack.fleet.haproxy_info:
    socket: tcp:127.0.0.1:9999
    server: app1-9090
  register: app1

- name: A batch of instances, read alone whatever the fleet's size
  wtstack.fleet.haproxy_info:
    backend: wt
    servers: [app1-9090, app2-9091, app3-9090]
  register: batch
"""

RETURN = r"""
vrrp:
  version_added: 1.0.0
  description: With O(vips), this balancer's view of each VIP, in the order given.
  returned: when vips is given
  type: list
  elements: dict
  contains:
    name:
      description: The VRRP instance, C(wtstack_vip_<router id>).
      type: str
    address:
      description: The VIP.
      type: str
    held:
      description: Whether this balancer has the VIP on an interface now.
      type: bool
    state:
      description: keepalived's VRRP state for it (C(MASTER), C(BACKUP), C(FAULT), C(STOP)), null if none was recorded.
      type: str
      sample: MASTER
    priority:
      description: The priority keepalived reported with that state.
      type: int
    since:
      description: When keepalived entered that state (seconds since the epoch).
      type: float
    released:
      description: Whether the VIP is released here (this balancer stays out of its election).
      type: bool
haproxy:
  description: The HAProxy process that answered (from C(show info)).
  returned: always
  type: dict
  contains:
    version:
      description: HAProxy's version.
      type: str
      sample: 3.0.11-1+deb13u5
    node:
      description: Node name.
      type: str
      sample: lb1
    pid:
      description: Process id of the worker that answered.
      type: int
    uptime_sec:
      description: Seconds since that worker started.
      type: int
servers:
  description: One entry per server, in configuration order (with O(servers) and O(backend), in that order).
  returned: always
  type: list
  elements: dict
  contains:
    backend:
      description: Backend name.
      type: str
      sample: wt
    server:
      description: Server name.
      type: str
      sample: app1-9090
    address:
      description: Address and port HAProxy connects to.
      type: str
      sample: 127.0.10.2:9090
    admin_state:
      description: Administrative state, V(ready), V(drain) or V(maint), as HAProxy ranks the flags.
      type: str
      sample: drain
    admin_flags:
      description:
        - The administrative flags that are set (C(srv_admin_state) bits) FMAINT, IMAINT, CMAINT,
          FDRAIN, IDRAIN, RMAINT, HMAINT. F = forced over the runtime API, I = inherited from a tracked
          server, C = C(disabled) in the configuration, R = address resolution failed.
      type: list
      elements: str
      sample: [FDRAIN]
    admin_mask:
      description: The raw C(srv_admin_state) bit mask.
      type: int
      sample: 8
    operational_state:
      description: V(stopped), V(starting), V(running) or V(stopping) (C(srv_op_state)).
      type: str
      sample: running
    status:
      description:
        - The status column of C(show stat), for example C(UP), C(DOWN), C(DRAIN), C(MAINT), C(NOLB),
          C(no check), or a transition such as C(UP 1/2) (up, one failed check) and C(DOWN 1/2).
      type: str
      sample: DRAIN
    check_status:
      description: Result of the last health check (C(L7OK), C(L4CON), C(L7STS)...), null if not checked.
      type: str
      sample: L7OK
    check_description:
      description: HAProxy's words for RV(servers[].check_status).
      type: str
      sample: Layer7 check passed
    check_result:
      description: V(unknown), V(neutral), V(failed), V(passed) or V(condpass).
      type: str
    checks_enabled:
      description: Whether health checks run now (they are paused in maint).
      type: bool
    check_health:
      description: Check health counter, from 0 to rise+fall-1 (full health).
      type: int
    check_rise:
      description: Consecutive passing checks needed to go up.
      type: int
    check_fall:
      description: Consecutive failing checks needed to go down.
      type: int
    weight:
      description: Current user weight.
      type: int
      sample: 100
    initial_weight:
      description: Weight from the configuration.
      type: int
      sample: 100
    scur:
      description: Current sessions.
      type: int
      sample: 0
    qcur:
      description: Queued requests waiting for this server.
      type: int
      sample: 0
    stot:
      description: Sessions since HAProxy started.
      type: int
      sample: 42
    lastsess:
      description: Seconds since a session was last given to the server, -1 if never.
      type: int
      sample: 17
    own_backend:
      version_added: 1.0.0
      description:
        - On a Wt instance's row, the backend its sessions are routed to (the health checked server's);
          null on any other server.
      type: str
      sample: wt.app1-9090
    tracks:
      version_added: 1.0.0
      description: The C(backend/server) whose state this server follows (C(track) in haproxy.cfg), else null.
      type: str
      sample: wt.app1-9090/app1-9090
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.client import DEFAULT_SOCKET
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.info_module import run_info_module
from ansible_collections.wtstack.fleet.plugins.module_utils.vrrp import VRRP_RELEASE_DIR, VRRP_STATE_DIR


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="str", default=DEFAULT_SOCKET),
            backend=dict(type="str"),
            server=dict(type="str"),
            servers=dict(type="list", elements="str"),
            raw=dict(type="bool", default=False),
            socket_timeout=dict(type="float", default=10),
            vips=dict(type="list", elements="dict"),
            vrrp_state_dir=dict(type="path", default=VRRP_STATE_DIR),
            vrrp_release_dir=dict(type="path", default=VRRP_RELEASE_DIR),
        ),
        mutually_exclusive=[("server", "servers")],
        supports_check_mode=True,
    )
    failed, msg, result = run_info_module(module.params)
    if failed:
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

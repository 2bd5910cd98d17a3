#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_server
short_description: Put a HAProxy server in ready, drain or maint, set its weight, and wait for it
description:
  - Sets the administrative state and the weight of one server of a HAProxy backend through the
    runtime API (the C(stats socket)), then optionally waits until the server has drained or is up.
  - Idempotent. It reads the server first (C(show servers state) and C(show stat)) and sends only
    the C(set server) commands needed, so a server already in the wanted state reports C(changed=false).
  - A Wt instance of the wtstack.fleet roles is named as it always is, O(backend=wt) and its server
    name. HAProxy holds it as two servers of that name, a placement server in backend C(wt), where new
    sessions are placed, tracking the health checked server of the instance's own backend C(wt.<server>),
    where the session map sends its sessions. The module sends each state where it belongs, V(drain) to the
    placement server only (the own backend must keep serving the instance's sessions), V(maint) to the
    own backend's server (the placement server inherits it), V(ready) to both; the weight is the placement
    server's. Results report the instance as one server, as M(wtstack.fleet.haproxy_info) does.
  - Changes made over the runtime API last until HAProxy restarts. The wtstack.fleet haproxy role
    saves them across C(systemctl reload haproxy) with a server-state file.
  - Designed for rolling restarts of Wt instances; see C(playbooks/rolling_restart.yml).
version_added: 0.1.0
author:
  - wtstack.fleet contributors (@wtstack)
options:
  backend:
    description: Name of the backend that holds O(server).
    type: str
    default: wt
  server:
    description: Name of the server in O(backend), as written in C(haproxy.cfg) (for example C(app1-9090)).
    type: str
    required: true
  state:
    description:
      - Wanted administrative state. Omit it to leave the state alone.
      - V(ready) takes new sessions. V(drain) takes no new sessions but still serves the sessions
        that the Wt session map routes to it, and keeps being health checked. V(maint) takes no traffic
        at all and is not health checked; its sessions go to another instance, where Wt starts new ones.
      - States inherited from a tracked server, or set because an address did not resolve, cannot be
        overridden; the module fails and says which.
    type: str
    choices: [ready, drain, maint]
  weight:
    description:
      - Wanted weight, 0 to 256, or a percentage of the weight in C(haproxy.cfg) such as V(50%)
        (truncated and capped at 256 the way HAProxy computes it). Omit it to leave the weight alone.
      - Backends with a static algorithm (for example C(balance source)) only accept 0 and the configured weight.
    type: str
  wait:
    description:
      - What to wait for after the change. The module fails if it is not reached within O(timeout).
      - V(drained) waits until the server has no active and no queued session and has not been
        given a new one for O(quiet) seconds. It needs the server in drain or maint (after the change).
      - V(up) waits until the server runs and, when it is health checked, a check has passed at full
        health (not merely HAProxy's optimistic state right after leaving maint). Allowed in ready and
        in drain, so an instance can be verified before it takes new sessions.
      - V(none) does not wait. In check mode the module never waits.
    type: str
    choices: [none, drained, up]
    default: none
  quiet:
    description: Seconds without a new session for the server to count as drained (O(wait=drained)).
    type: int
    default: 2
  timeout:
    description: Seconds to wait for O(wait) before failing.
    type: float
    default: 60
  interval:
    description: Seconds between two polls while waiting.
    type: float
    default: 1
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - wtstack.fleet.runtime_api
attributes:
  check_mode:
    support: full
    details: Reads the server and reports what would change; sends no command that changes anything and does not wait.
  diff_mode:
    support: full
    details: The diff shows the server's administrative state and weight before and after.
  platform:
    platforms: posix
notes:
  - Run it on the load balancer (C(delegate_to) each host of the haproxy group), usually with
    C(become) because the socket is owned by root and the haproxy group.
  - A module cannot print progress while it waits; the result reports how long it waited, how many
    times it polled, why it stopped, and the last values it observed.
seealso:
  - module: wtstack.fleet.haproxy_info
  - name: HAProxy management guide, runtime API
    description: The C(set server) and C(show servers state) commands this module uses.
    link: https://docs.haproxy.org/3.0/management.html#9.3
"""

EXAMPLES = r"""
- name: Stop sending new sessions to app1-9090 and wait until its sessions are gone
  wtstack.fleet.haproxy_server:
    server: app1-9090
    state: drain
    wait: drained
    quiet: 5
    timeout: 600
  delegate_to: "{{ item }}"
  loop: "{{ groups['haproxy'] }}"
  become: true

- name: After restarting it, wait for a passing health check while it is still draining
  wtstack.fleet.haproxy_server:
    server: app1-9090
    wait: up
    timeout: 120

- name: Give it new sessions again
  wtstack.fleet.haproxy_server:
    server: app1-9090
    state: ready

- name: Halve its share of new sessions (relative to the weight in haproxy.cfg)
  wtstack.fleet.haproxy_server:
    socket: tcp:127.0.0.1:9999
    backend: wt
    server: app2-9091
    weight: 50%
"""

RETURN = r"""
backend:
  description: The backend.
  returned: always
  type: str
  sample: wt
server:
  description: The server.
  returned: always
  type: str
  sample: app1-9090
commands:
  description: The runtime API commands sent (in check mode, the commands that would be sent).
  returned: always
  type: list
  elements: str
  sample: ["set server wt/app1-9090 state drain", "set server wt.app1-9090/app1-9090 state ready"]
before:
  description: The server before the change, as M(wtstack.fleet.haproxy_info) reports servers.
  returned: always
  type: dict
  sample: {admin_state: ready, status: UP, weight: 100, scur: 3, qcur: 0, lastsess: 0}
after:
  description:
    - The server after the change; when O(wait) is given, as last observed while waiting.
    - In check mode, the server as it was, since nothing was changed.
  returned: success
  type: dict
  sample: {admin_state: drain, status: DRAIN, weight: 100, scur: 0, qcur: 0, lastsess: 12}
wait:
  description: The outcome of waiting; absent when O(wait=none) or in check mode.
  returned: when O(wait) is not V(none) and not in check mode
  type: dict
  contains:
    condition:
      description: What was waited for.
      type: str
      sample: drained
    reached:
      description: Whether it was reached (the module fails when it was not).
      type: bool
    reason:
      description: Why the wait stopped, with the values that decided it.
      type: str
      sample: "no active or queued session, last one assigned 7 s ago"
    elapsed:
      description: Seconds spent waiting.
      type: float
      sample: 6.02
    polls:
      description: How many times the server was read.
      type: int
      sample: 7
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import (
    ADMIN_STATES,
    DEFAULT_SOCKET,
    RuntimeApiError,
    RuntimeClient,
    plan_change,
    unreached,
    wait_check,
    wait_conflict,
    wait_for,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="str", default=DEFAULT_SOCKET),
            backend=dict(type="str", default="wt"),
            server=dict(type="str", required=True),
            state=dict(type="str", choices=list(ADMIN_STATES)),
            weight=dict(type="str"),
            wait=dict(type="str", choices=["none", "drained", "up"], default="none"),
            quiet=dict(type="int", default=2),
            timeout=dict(type="float", default=60),
            interval=dict(type="float", default=1),
            socket_timeout=dict(type="float", default=10),
        ),
        supports_check_mode=True,
    )
    params = module.params
    backend, server, wait = params["backend"], params["server"], params["wait"]
    result = dict(changed=False, backend=backend, server=server, commands=[])
    try:
        client = RuntimeClient(params["socket"], timeout=params["socket_timeout"])
        before = client.server(backend, server)
        change = plan_change(before, params["state"], params["weight"])
    except RuntimeApiError as error:
        module.fail_json(msg=str(error), **result)
    result.update(before=before.as_dict(), commands=list(change.commands))
    if module._diff:
        result["diff"] = dict(before=change.before, after=change.after,
                              before_header=f"{backend}/{server}", after_header=f"{backend}/{server}")
    conflict = wait_conflict(wait, change.after["admin_state"])
    if conflict:
        module.fail_json(msg=f"{backend}/{server} {conflict}", **result)
    if module.check_mode:
        result.update(changed=change.changed, after=before.as_dict())
        module.exit_json(**result)

    try:
        for command in change.commands:
            client.command(command)
            result["changed"] = True
        after = client.server(backend, server)
    except RuntimeApiError as error:
        module.fail_json(msg=str(error), **result)
    result["after"] = after.as_dict()
    problem = unreached(after, change)
    if problem:
        module.fail_json(msg=f"HAProxy accepted `{'; '.join(change.commands)}` but {problem}", **result)
    if wait != "none":
        outcome = wait_for(wait, lambda: client.server(backend, server), wait_check(wait, params["quiet"]),
                           params["timeout"], params["interval"])
        result["wait"] = {key: value for key, value in outcome.as_dict().items() if key != "observed"}
        if outcome.observed:
            result["after"] = outcome.observed
        if not outcome.reached:
            module.fail_json(msg=f"{backend}/{server} is not {wait}: {outcome.reason}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

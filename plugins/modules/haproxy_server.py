#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_server
short_description: Put HAProxy servers in ready, drain or maint, set their weight, and wait for them
description:
  - Sets the administrative state and the weight of one server (O(server)) or of many at once
    (O(servers)) of a HAProxy backend through the runtime API (the C(stats socket)), then optionally
    waits until the servers have drained, are quiet or are up.
  - With O(servers), everything happens for all of them together, which is what a rolling batch
    needs at fleet scale. One read of the backend, every command in as few exchanges as HAProxy's
    line length allows, then every poll of a wait reads them all at once. The result lists each
    server, and the module fails if any one of them does not reach what was asked, naming them all.
  - Idempotent. It reads the server first and sends only the C(set server) commands needed, so a server
    already in the wanted state reports C(changed=false).
  - Wt instances of backend C(wt) are read alone, so a call costs about the same in a fleet of 5,000
    instances as in one of 10. Each read of them is one exchange, C(get weight wt/<server>),
    C(show servers state wt.<server>) and C(show stat wt.<server> 4 -1) (its own backend), and
    C(show stat) of its placement server by the ids the haproxy role gives backend C(wt) and its servers
    (by name, HAProxy would pick the frontend C(wt)). While an instance is down or in maint its placement
    server's own drain is in none of those replies, and C(show servers state wt) is read as well, in a
    second exchange of which only the lines of the servers asked about are parsed. Any other backend or
    server, or a configuration without those ids, is read from the whole table
    (C(show servers state) and C(show stat -1 4 -1), one exchange), as before.
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
    description:
      - Name of the server in O(backend), as written in C(haproxy.cfg) (for example C(app1-9090)).
      - Exactly one of O(server) and O(servers) is required.
    type: str
  servers:
    version_added: 1.0.0
    description:
      - Names of several servers of O(backend), acted on and waited for together. An empty list does nothing.
      - The result then lists them under RV(servers) instead of at its top level.
    type: list
    elements: str
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
  drain_wait:
    version_added: 1.0.0
    description:
      - With O(state=maint) only. Before taking the servers out, put those still in ready in drain and
        wait, at most O(drain_timeout) seconds, until they are V(drained) or V(quiet) (see O(wait)).
        Servers still busy at the deadline are put in maint anyway; RV(drain) of each entry of RV(servers)
        says what each one still had. A server already in drain or maint is not waited for.
      - V(drained) waits for every connection to close, WebSockets included, so with them it waits
        until no user is left (or the deadline). V(quiet) waits for HTTP requests only.
    type: str
    choices: [none, drained, quiet]
    default: none
  drain_timeout:
    version_added: 1.0.0
    description: Seconds O(drain_wait) waits at most.
    type: float
    default: 30
  drain_quiet:
    version_added: 1.0.0
    description: The O(quiet) of O(drain_wait), in seconds.
    type: int
    default: 2
  wait:
    description:
      - What to wait for after the change. The module fails if it is not reached within O(timeout).
      - V(drained) waits until the server has no active and no queued session and has not been
        given a new one for O(quiet) seconds. Every connection counts, WebSocket tunnels too. It needs
        the server in drain or maint (after the change).
      - V(quiet) waits until no HTTP request is in flight or queued on the server and none started in
        the last O(quiet) seconds; open WebSocket tunnels (upgraded connections, which HAProxy only
        relays and which the instance's restart closes) are counted in the result but not waited for.
        Telling them apart takes C(show sess all), read only while the server has sessions. It needs
        the server in drain or maint (after the change).
      - V(up) waits until the server runs and, when it is health checked, a check has passed at full
        health (not merely HAProxy's optimistic state right after leaving maint). Allowed in ready and
        in drain, so an instance can be verified before it takes new sessions.
      - V(none) does not wait. In check mode the module never waits.
    type: str
    choices: [none, drained, quiet, up]
    default: none
  quiet:
    description: Seconds without a new session for the server to count as drained or quiet.
    type: int
    default: 2
  hold:
    version_added: 1.0.0
    description:
      - Seconds the O(wait) condition must keep holding once reached, for example how long an
        instance must stay up (a canary). If it stops holding meanwhile, the wait ends unreached
        at once. 0 accepts the first poll that reaches it.
      - For V(up), holding means HAProxy keeps routing to the server (running, not in maint); a single
        failed check that does not take it down yet (C(UP 1/2)) does not end the hold.
    type: float
    default: 0
  reached_state:
    version_added: 1.0.0
    description:
      - Once O(wait) is reached, put each server that reached it in this state, in one exchange for all of
        them; servers that did not reach it stay in O(state). For example V(ready) after O(state=drain) and
        O(wait=up) - back in rotation only once a fresh health check passed, one module run for the batch.
    type: str
    choices: [ready, drain, maint]
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
  - With O(servers), a wait that fails for some servers still reports every server's outcome, and
    RV(failed_servers) names those that failed, so a playbook can act on the others
    (C(failed_when) on that list).
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

- name: Take a batch out of rotation once its HTTP requests are over (WebSockets are not waited for)
  wtstack.fleet.haproxy_server:
    servers: [app1-9090, app2-9091, app3-9090]
    state: maint
    drain_wait: quiet
    drain_quiet: 2
    drain_timeout: 30
    wait: quiet
    quiet: 0
    timeout: 30
    interval: 0.5
  register: batch_out

- name: Leave maint through drain and take new sessions again once a health check passed
  wtstack.fleet.haproxy_server:
    servers: [app1-9090, app2-9091, app3-9090]
    state: drain
    wait: up
    reached_state: ready
    timeout: 120

- name: A canary must stay up for five minutes
  wtstack.fleet.haproxy_server:
    servers: [app1-9090]
    wait: up
    hold: 300
    timeout: 420

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
  returned: with O(server)
  type: str
  sample: app1-9090
servers:
  version_added: 1.0.0
  description: One entry per server of O(servers), in that order, each with RV(before), RV(after), RV(wait),
    RV(drain) and its own C(commands) and C(server), as they are described here for O(server).
  returned: with O(servers)
  type: list
  elements: dict
  sample:
    - {server: app1-9090, commands: ["set server wt/app1-9090 state drain"], before: {admin_state: ready},
       after: {admin_state: maint, scur: 1}, drain: {reached: false, reason: "timed out after 30 s: ..."},
       wait: {reached: true, reason: "no request in flight or queued; 1 WebSocket(s) open, ..."}}
failed_servers:
  version_added: 1.0.0
  description: With O(servers), the servers that did not reach O(wait).
  returned: when a wait failed
  type: list
  elements: str
  sample: [app3-9090]
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
drain:
  version_added: 1.0.0
  description: With O(drain_wait), the outcome of draining before maint (same keys as RV(wait)); a drain
    that timed out is not a failure.
  returned: when O(drain_wait) is not V(none), the server was in ready and not in check mode
  type: dict
  sample: {condition: quiet, reached: true, reason: "no request in flight or queued, last one 3 s ago",
           elapsed: 3.1, polls: 7}
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
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.client import DEFAULT_SOCKET
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.server_module import run_server_module
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.servers import ADMIN_STATES
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.waiting import WAIT_CONDITIONS
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import PLACEMENT_BACKEND


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="str", default=DEFAULT_SOCKET),
            backend=dict(type="str", default=PLACEMENT_BACKEND),
            server=dict(type="str"),
            servers=dict(type="list", elements="str"),
            state=dict(type="str", choices=list(ADMIN_STATES)),
            weight=dict(type="str"),
            drain_wait=dict(type="str", choices=["none", "drained", "quiet"], default="none"),
            drain_timeout=dict(type="float", default=30),
            drain_quiet=dict(type="int", default=2),
            wait=dict(type="str", choices=["none", *WAIT_CONDITIONS], default="none"),
            quiet=dict(type="int", default=2),
            hold=dict(type="float", default=0),
            reached_state=dict(type="str", choices=list(ADMIN_STATES)),
            timeout=dict(type="float", default=60),
            interval=dict(type="float", default=1),
            socket_timeout=dict(type="float", default=10),
        ),
        mutually_exclusive=[("server", "servers")],
        required_one_of=[("server", "servers")],
        supports_check_mode=True,
    )
    failed, msg, result = run_server_module(module.params, module.check_mode, module._diff)
    if failed:
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

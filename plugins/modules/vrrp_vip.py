#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vrrp_vip
short_description: Hand floating VIPs over from a load balancer without a failed request, or take them back
description:
  - Works on a load balancer configured by the C(wtstack.fleet.haproxy) role with VIPs (keepalived, one VRRP
    instance per VIP, each tracking a release file C(<release_dir>/<name>.released)).
  - O(state=released) takes this balancer out of the election of each VIP, gracefully for the ones it holds.
    New connections to those VIPs are held back first (nftables drops their SYNs, so each client sends its SYN
    again a second later, by then to the VIP's next holder) while the connections already open finish, at
    most O(drain_timeout) seconds; then keepalived is told to release them and the module waits until they are
    off this host. Connections still open then (WebSockets, idle keep-alive connections) are cut when the VIP
    moves; a browser opens them again, through the new holder, to the same Wt instance.
  - O(state=candidate) lets this balancer take part in the elections again; with the highest priority for a
    VIP and preemption on, it takes the VIP back after keepalived's C(preempt_delay).
  - O(state=held) waits until this balancer holds every VIP of O(vips) (after the holder released them).
  - Used by C(playbooks/rolling_balancers.yml); an operator can use it to move VIPs by hand.
version_added: 1.0.0
author:
  - wtstack.fleet contributors (@wtstack)
options:
  vips:
    description:
      - The VIPs as the C(wtstack.fleet.topology) filter returns them (C(wtstack_topology.vips)), or any mappings
        with their C(name) (the VRRP instance, C(wtstack_vip_<router id>)) and C(address); other keys are ignored.
    type: list
    elements: dict
    required: true
  state:
    description: What to do with them here.
    type: str
    choices: [released, candidate, held]
    required: true
  release_dir:
    description: Where the release files are (the role's C(haproxy_vrrp_release_dir)).
    type: path
    default: /var/lib/wtstack/vrrp
  drain_timeout:
    description: Seconds to wait, with new connections held back, for those already open to the VIPs to end.
    type: float
    default: 2
  timeout:
    description: Seconds keepalived may take to take the VIPs off this host (O(state=released)) or to put them
      on it (O(state=held)).
    type: float
    default: 15
attributes:
  check_mode:
    support: full
    details: Changes nothing; reports what would be released or made a candidate again. O(state=held) only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
seealso:
  - module: wtstack.fleet.haproxy_info
"""

EXAMPLES = r"""
- name: Move every VIP off lb1, without a failed request
  wtstack.fleet.vrrp_vip:
    vips: "{{ wtstack_topology.vips }}"
    state: released
  delegate_to: lb1

- name: Let lb1 hold VIPs again
  wtstack.fleet.vrrp_vip:
    vips: "{{ wtstack_topology.vips }}"
    state: candidate
  delegate_to: lb1
"""

RETURN = r"""
released:
  description: The VIP instances this run released here (O(state=released)).
  returned: when state is released
  type: list
  elements: str
candidate_again:
  description: The VIP instances this balancer takes part in again (O(state=candidate)).
  returned: when state is candidate
  type: list
  elements: str
held:
  description: The VIPs this balancer held when the module started.
  returned: always
  type: list
  elements: str
connections_left:
  description: Connections to the released VIPs still open when the drain ended (cut when they moved).
  returned: when state is released
  type: int
drain_seconds:
  description: How long the drain took.
  returned: when state is released
  type: float
move_seconds:
  description: How long keepalived took to take the VIPs off this host, or to put them on it.
  returned: when state is released or held
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wtstack.fleet.plugins.module_utils.vrrp import (
    Host,
    VrrpError,
    make_candidate,
    release,
    wait_held,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "vips": {"type": "list", "elements": "dict", "required": True},
            "state": {"type": "str", "required": True, "choices": ["released", "candidate", "held"]},
            "release_dir": {"type": "path", "default": "/var/lib/wtstack/vrrp"},
            "drain_timeout": {"type": "float", "default": 2},
            "timeout": {"type": "float", "default": 15},
        },
        supports_check_mode=True,
    )
    params = module.params

    def run_nft(ruleset):
        rc, dummy, err = module.run_command(["nft", "-f", "-"], data=ruleset, binary_data=True)
        if rc != 0:
            raise VrrpError(f"nft refused the handover rules ({err.strip()}); is nftables installed?")

    host = Host(run_nft, time.monotonic, time.sleep)
    try:
        vips = [{"name": str(vip["name"]), "address": str(vip["address"])} for vip in params["vips"]]
    except KeyError as missing:
        module.fail_json(msg=f"vips: every VIP needs a name and an address; one has no {missing}")
    try:
        if params["state"] == "released":
            result = release(host, vips, params["release_dir"], params["drain_timeout"], params["timeout"],
                             check_mode=module.check_mode)
        elif params["state"] == "candidate":
            result = make_candidate(host, vips, params["release_dir"], check_mode=module.check_mode)
        else:
            held = [vip["address"] for vip in vips if host.holds(vip["address"])]
            seconds = 0.0 if module.check_mode else wait_held(host, vips, params["timeout"])
            result = {"changed": False, "held": held, "move_seconds": seconds}
    except VrrpError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

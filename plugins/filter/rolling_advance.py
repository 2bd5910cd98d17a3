# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling_advance filter: a thin adapter around module_utils/rolling.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rolling_advance
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: Take a rolling batch one step further from what the modules returned
description:
  - Reads the registered results of one step of the current batch and returns the roll's state with
    what the next step acts on. An instance that failed a step stays out of rotation and goes no further.
  - V(out) (M(wtstack.fleet.haproxy_server) taking the batch out on every load balancer) sets C(restart_on),
    the instances each host restarts; V(restart) (M(wtstack.fleet.wt_restart) on the batch's hosts) sets
    C(bring_up); V(done) (waiting for passing checks, then ready) records the batch, sets C(keep_out) (the
    instances that failed a step, for maint), decides whether the roll goes on (failures, canary,
    rolling_max_failed) and chooses the next batch, or the deadline stops it; V(watch) (the canary held
    up) stops the roll if the canary went down.
  - The state comes from P(wtstack.fleet.rolling_plan#filter).
options:
  _input:
    description: The roll's state.
    type: dict
    required: true
  step:
    description: The step whose results are given.
    type: str
    required: true
    choices: [out, restart, done, watch]
  results:
    description:
      - Registered results of that step on the hosts that ran it, as a list (C(ansible_play_hosts |
        map('extract', hostvars, 'name') | list)) or a mapping of host to result (which lets the
        reasons name the host); loop results are flattened, skipped ones ignored.
    type: raw
    required: true
  now:
    description: The time, in seconds since the epoch.
    type: float
    required: true
"""

EXAMPLES = r"""
- name: Decide which instances restart
  ansible.builtin.set_fact:
    rolling_restart_state: >-
      {{ rolling_restart_state | wtstack.fleet.rolling_advance('out', ansible_play_hosts | map('extract', hostvars,
         'rolling_out') | list, now().timestamp()) }}
  run_once: true
"""

RETURN = r"""
_value:
  description: The roll's state (see P(wtstack.fleet.rolling_plan#filter)).
  type: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.module_utils.rolling import RollingError, advance


def rolling_advance(state, step, results, now):
    if not isinstance(state, Mapping) or "batch" not in state:
        raise AnsibleFilterError("rolling_advance expects the state from wtstack.fleet.rolling_plan")
    try:
        return advance(dict(state), step, results if isinstance(results, Mapping) else list(results or []),
                       float(now))
    except RollingError as error:
        raise AnsibleFilterError(f"wtstack.fleet: {error}") from error


class FilterModule:
    def filters(self):
        return {"rolling_advance": rolling_advance}

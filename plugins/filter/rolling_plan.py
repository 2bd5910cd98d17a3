# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling_plan filter: a thin adapter around module_utils/rolling.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: rolling_plan
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: Plan a rolling restart, upgrade or rollback of Wt instances in batches
description:
  - Turns the fleet topology, the roll's parameters and what the load balancers hold now (their roll
    journal, their servers' states) into the state of a roll with its first batch chosen. The
    C(wtstack.fleet.rolling_restart) role is its user;
    P(wtstack.fleet.rolling_advance#filter) takes the state on, step by step.
  - Batches are formed across hosts (round robin over each host's instances) so their restarts run
    on many hosts at once. At most O(params.max_unavailable) of the instances being rolled (a count,
    or a percentage rounded down, never less than one) are out of rotation together, counting those
    already out, and at most that share of their weight; never every instance of a host with
    several. A canary batch of O(params.canary) goes first.
  - A journal of the same roll (same kind, same target) resumes it, with what it has not rolled
    yet; the failed instances first, and no second canary.
  - Fails, naming the variable, on a parameter that cannot work (for example C(rolling_max_unavailable=0))
    or a server name that is not an instance of the run.
options:
  _input:
    description: The topology (C(wtstack.fleet.topology) filter).
    type: dict
    required: true
  params:
    description: The roll's parameters.
    type: dict
    required: true
    suboptions:
      kind:
        description: V(restart), V(upgrade) or V(rollback).
        type: str
        default: restart
      target:
        description: The release an upgrade or rollback moves the instances to.
        type: str
      servers:
        description: Only these instances (server names), as C(rolling_restart_servers).
        type: list
        elements: str
      max_unavailable:
        description: A count or a percentage of the instances being rolled.
        type: raw
        default: 25%
      canary:
        description: Instances in a first batch of their own (0 for none).
        type: int
        default: 1
      pause_after_canary:
        description: Seconds the canary must stay up before the rest starts.
        type: float
        default: 0
      max_failed:
        description: Failed instances the roll tolerates (left out of rotation) before it stops.
        type: int
        default: 0
      deadline:
        description: Seconds after which the roll starts no new batch (0 for none).
        type: float
        default: 0
      resume:
        description: Whether a journal of the same roll is resumed.
        type: bool
        default: true
  now:
    description: The time, in seconds since the epoch (C(now().timestamp())).
    type: float
    required: true
  play_hosts:
    description: The app hosts of the run (C(ansible_play_hosts_all)); their instances are rolled.
    type: list
    elements: str
  journals:
    description: The registered results of M(wtstack.fleet.rolling_journal) on the load balancers (loop results too).
    type: list
    elements: raw
  info:
    description: The registered results of M(wtstack.fleet.haproxy_info) on the load balancers (loop results too).
    type: list
    elements: raw
  current:
    description: Instances that already run the target of an upgrade (left alone).
    type: list
    elements: str
  rollback_of:
    description:
      - The state of a stopped upgrade. The plan is then the rollback's, V(rollback) of each instance the
        upgrade moved to the release it ran before, batch by batch, with O(params)'s limits and no canary.
    type: dict
"""

EXAMPLES = r"""
- name: Plan the roll
  ansible.builtin.set_fact:
    rolling_restart_state: >-
      {{ wtstack_topology | wtstack.fleet.rolling_plan({'kind': 'restart', 'max_unavailable': '25%', 'canary': 1},
                                                       now().timestamp(), play_hosts=ansible_play_hosts_all,
                                                       journals=journal_reads, info=server_reads) }}
  run_once: true

- name: Show it
  ansible.builtin.debug:
    msg: "{{ rolling_restart_state.plan }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The roll's state, handed on to P(wtstack.fleet.rolling_advance#filter).
  type: dict
  contains:
    batch:
      description: The servers of the batch to roll now; empty when done or stopped.
      type: list
      elements: str
    stopped:
      description: Why the roll stopped (C(why) - canary, failed, deadline, capacity; C(reason)), or null.
      type: dict
    plan:
      description: Lines describing the plan, every batch included.
      type: list
      elements: str
    progress:
      description: The line to print for the current batch.
      type: str
    summary:
      description: The lines of the summary table.
      type: list
      elements: str
    journal:
      description: What M(wtstack.fleet.rolling_journal) keeps on the load balancers.
      type: dict
    iterations:
      description: How many batches the roll may take at most (its loop bound).
      type: int
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.module_utils.rolling import RollingError, plan, plan_rollback


def rolling_plan(topology, params, now, play_hosts=None, journals=None, info=None, current=None, rollback_of=None):
    if not isinstance(topology, Mapping) or "instances" not in topology or not isinstance(params, Mapping):
        raise AnsibleFilterError("rolling_plan expects `wtstack_topology | wtstack.fleet.rolling_plan(params, now)`")
    try:
        if rollback_of is not None:
            return plan_rollback(list(topology["instances"]), dict(rollback_of), dict(params), float(now),
                                 play_hosts=play_hosts, info=info or [])
        return plan(list(topology["instances"]), dict(params), float(now), play_hosts=play_hosts,
                    journals=journals or [], info=info or [], current=current or [])
    except RollingError as error:
        raise AnsibleFilterError(f"wtstack.fleet: the roll cannot start: {error}") from error


class FilterModule:
    def filters(self):
        return {"rolling_plan": rolling_plan}

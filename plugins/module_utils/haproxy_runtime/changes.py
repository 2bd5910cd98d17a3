# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What it takes to bring a server (or an instance) to the state and weight asked for.

Each state goes to the object that holds it: drain to an instance's placement server only (the own
backend keeps serving its sessions), maint to the own backend's server (the placement server
inherits it), ready to both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.client import state_command, weight_command
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.errors import RuntimeApiError
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.servers import (
    ADMIN_STATES,
    TRACKING_MASK,
    admin_state,
    explain_admin_flags,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import MAX_WEIGHT

_WEIGHT = re.compile(r"\s*(\d+)\s*(%?)\s*")


def target_weight(spec, initial_weight):
    """Absolute weight HAProxy will apply for ``spec`` (int, "NN" or "NN%" of the configured weight).

    Same arithmetic as HAProxy's server_parse_weight_change_request(): relative weights are
    truncated and capped at 256.
    """
    match = _WEIGHT.fullmatch(str(spec))
    if not match:
        raise RuntimeApiError(f"weight must be a number 0..{MAX_WEIGHT} or a percentage like 50%, not {spec!r}")
    value, relative = int(match.group(1)), match.group(2) == "%"
    if relative:
        if initial_weight is None:
            raise RuntimeApiError("a relative weight needs the server's configured weight; HAProxy did not report it")
        return min(MAX_WEIGHT, initial_weight * min(value, 25600) // 100)
    if value > MAX_WEIGHT:
        raise RuntimeApiError(f"weight {value} is above HAProxy's maximum of {MAX_WEIGHT}")
    return value


@dataclass(frozen=True)
class Change:
    """What it takes to bring one server to the wanted state and weight."""

    commands: tuple
    before: dict
    after: dict

    @property
    def changed(self):
        return bool(self.commands)


def change_for(view, state=None, weight=None):
    """The Change that brings ``view`` to ``state`` and ``weight`` (None: left as it is). Commands:
    weight first, so a server coming back to ready gets its new share at once."""
    if state is not None and state not in ADMIN_STATES:
        raise RuntimeApiError(f"server state must be one of {', '.join(ADMIN_STATES)}, not {state!r}")
    before = {"admin_state": view.admin_state, "weight": view.weight}
    after = dict(before)
    commands = []
    if weight is not None:
        wanted = target_weight(weight, view.initial_weight)
        if wanted != view.weight:
            placed = view.placement or view
            commands.append(weight_command(placed.backend, placed.server, wanted))
            after["weight"] = wanted
    if state is not None:
        if view.is_instance:
            commands.extend(instance_state_commands(view, state))
        elif state != view.admin_state:
            commands.append(state_command(view.backend, view.server, state))
        after["admin_state"] = state
    return Change(tuple(commands), before, after)


# State of each of an instance's two servers, per instance state. None: left as it is (in maint,
# the placement server inherits maint anyway, and keeps its drain for when maint ends).
_PLACEMENT_STATE = {"ready": "ready", "drain": "drain", "maint": None}
_OWN_STATE = {"ready": "ready", "drain": "ready", "maint": "maint"}


def instance_state_commands(view, state):
    """Drain only ever on the placement server: the own backend's server must keep serving the
    instance's sessions while it drains. Maint on the own server: its sessions then go elsewhere."""
    commands = []
    placement, own = view.placement, view.own
    wanted = _PLACEMENT_STATE[state]
    if wanted and admin_state(placement.admin_mask & ~TRACKING_MASK) != wanted:
        commands.append(state_command(placement.backend, placement.server, wanted))
    if own.admin_state != _OWN_STATE[state]:
        commands.append(state_command(own.backend, own.server, _OWN_STATE[state]))
    return commands


def unreached(view, change):
    """Why ``view`` (read after running ``change``) is not what was asked, or None if it is."""
    problems = []
    if view.admin_state != change.after["admin_state"]:
        problems.append(
            f"it is still in {view.admin_state} ({explain_admin_flags(view.admin_mask)}), which "
            f"`set server ... state {change.after['admin_state']}` cannot override")
    if view.weight != change.after["weight"]:
        problems.append(f"its weight is {view.weight}, not {change.after['weight']}")
    if not problems:
        return None
    return f"{view.backend}/{view.server}: " + " and ".join(problems)

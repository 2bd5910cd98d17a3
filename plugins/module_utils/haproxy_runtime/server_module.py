# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the haproxy_server module does, once Ansible has checked its options.

One run: read the servers, work out each one's commands, (drain first, when asked), send them all
in as few exchanges as HAProxy's line length allows, read the servers again to see that HAProxy
did what it accepted, then wait (and, with ``reached_state``, move the servers that made it on).
``run_server_module`` returns the module's result; the module only hands it to Ansible.
"""

from __future__ import annotations

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.changes import change_for, unreached
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.client import RuntimeClient
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.errors import RuntimeApiError
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.reading import server_reader
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.waiting import (
    keep_check,
    server_poller,
    wait_check,
    wait_conflict,
    wait_for_servers,
)


class ModuleFailure(Exception):
    """Ends the run: ``str()`` is the module's ``msg``; the result so far goes with it."""


def run_server_module(params, check_mode=False, diff=False, client=None):
    """(failed, msg, result) of one haproxy_server run with ``params`` (the module's options)."""
    run = ServerRun(params, check_mode, diff)
    try:
        run.client = client or RuntimeClient(params["socket"], timeout=params["socket_timeout"])
        run.run()
    except (ModuleFailure, RuntimeApiError) as failure:
        return True, str(failure), run.finish()
    return False, None, run.finish()


class ServerRun:
    """The servers of one run, by name: each one's entry is what the result reports about it."""

    def __init__(self, params, check_mode=False, diff=False):
        self.params, self.check_mode, self.diff = params, check_mode, diff
        self.backend, self.wait = params["backend"], params["wait"]
        self.single = params["server"] is not None
        self.names = [params["server"]] if self.single else list(dict.fromkeys(params["servers"]))
        self.result = dict(changed=False, backend=self.backend, commands=[])
        if self.single:
            self.result["server"] = self.names[0]
        self.entries, self.changes, self.drains = {}, {}, {}
        self.client = self.read = None

    def run(self):
        if self.params["drain_wait"] != "none" and self.params["state"] != "maint":
            raise ModuleFailure(f"drain_wait={self.params['drain_wait']} drains the servers before maint; "
                                "it needs state=maint")
        if not self.names:
            self.result["servers"] = []
            return
        self.read = server_reader(self.client, self.backend)
        self.work_out(self.read(self.names))
        if self.check_mode:
            self.report_check_mode()
            return
        if self.drains:
            self.drain_first()
        self.apply(self.names, self.changes)
        if self.wait != "none":
            self.wait_and_go_on()

    def work_out(self, before):
        """Each server's commands (and, with drain_wait, those of its drain before maint)."""
        state, weight = self.params["state"], self.params["weight"]
        self.changes = {name: change_for(before[name], state, weight) for name in self.names}
        if self.params["drain_wait"] != "none":
            self.drains = {name: change_for(before[name], "drain") for name in self.names
                           if before[name].admin_state == "ready"}
        self.entries = {name: {"server": name, "before": before[name].as_dict()} for name in self.names}
        self.record_commands()
        if self.diff:
            diffs = [dict(before=self.changes[name].before, after=self.changes[name].after,
                          before_header=f"{self.backend}/{name}", after_header=f"{self.backend}/{name}")
                     for name in self.names]
            self.result["diff"] = diffs[0] if self.single else diffs
        for name in self.names:
            conflict = wait_conflict(self.wait, self.changes[name].after["admin_state"])
            if conflict:
                raise ModuleFailure(f"{self.backend}/{name} {conflict}")

    def record_commands(self, onward=None):
        for name in self.names:
            commands = list(self.drains[name].commands if name in self.drains else ()) + \
                list(self.changes[name].commands)
            if onward and name in onward:
                commands += onward[name].commands
            self.entries[name]["commands"] = commands
        self.result["commands"] = [command for name in self.names for command in self.entries[name]["commands"]]

    def report_check_mode(self):
        for entry in self.entries.values():
            entry["after"] = entry["before"]
        self.result["changed"] = any(entry["commands"] for entry in self.entries.values())

    def drain_first(self):
        """New sessions stop everywhere at once; then each server is waited for, all in the same
        polls, until the drain timeout. What is still open then is taken out by maint anyway."""
        self.send([command for change in self.drains.values() for command in change.commands])
        drained = self.wait_for(self.params["drain_wait"], list(self.drains), self.params["drain_timeout"],
                                self.params["drain_quiet"])
        for name, outcome in drained.items():
            self.entries[name]["drain"] = _without_observed(outcome)
        before_maint = self.read(self.names)
        self.changes = {name: change_for(before_maint[name], self.params["state"], self.params["weight"])
                        for name in self.names}
        self.record_commands()

    def apply(self, names, changes):
        """Sends every change, then reads the servers back: HAProxy accepts a state it cannot set
        (an inherited maint), so what it did is checked, not assumed."""
        self.send([command for name in names for command in changes[name].commands])
        after = self.read(names)
        problems = []
        for name in names:
            self.entries[name]["after"] = after[name].as_dict()
            problem = unreached(after[name], changes[name])
            if problem:
                problems.append(f"HAProxy accepted `{'; '.join(changes[name].commands)}` but {problem}")
        if problems:
            raise ModuleFailure("; ".join(problems))

    def send(self, commands):
        """All commands, in as few exchanges as HAProxy's line length allows; ``changed`` once one took."""
        if not commands:
            return
        try:
            self.client.send(commands)
        except RuntimeApiError as error:
            self.result["changed"] = self.result["changed"] or bool(getattr(error, "accepted", 0))
            raise
        self.result["changed"] = True

    def wait_for(self, condition, names, timeout, quiet, hold=0.0):
        poll = server_poller(self.read, self.client.streams, condition)
        return wait_for_servers(condition, poll, names, wait_check(condition, quiet), timeout,
                                self.params["interval"], hold=hold, keep=keep_check(condition, quiet))

    def wait_and_go_on(self):
        outcomes = self.wait_for(self.wait, self.names, self.params["timeout"], self.params["quiet"],
                                 self.params["hold"])
        failures = []
        for name, outcome in outcomes.items():
            self.entries[name]["wait"] = _without_observed(outcome)
            if outcome.observed:
                self.entries[name]["after"] = outcome.observed
            if not outcome.reached:
                failures.append(f"{self.backend}/{name} is not {self.wait}: {outcome.reason}")
        reached = [name for name in self.names if outcomes[name].reached]
        if self.params["reached_state"] and reached:
            failures += self.go_on(reached)
        if failures:
            self.result["failed_servers"] = [name for name in self.names if not outcomes[name].reached]
            raise ModuleFailure("; ".join(failures))

    def go_on(self, reached):
        """The servers that passed go on at once, in one exchange; the others stay as they are.
        Returns what went wrong."""
        now = self.read(reached)
        onward = {name: change_for(now[name], self.params["reached_state"]) for name in reached}
        self.record_commands(onward)
        try:
            self.apply(reached, onward)
        except ModuleFailure as failure:
            return [str(failure)]
        return []

    def finish(self):
        """The result in its public shape: one server's keys at the top, or a list under ``servers``."""
        if not self.entries:
            return dict(self.result)
        if self.single:
            entry = self.entries[self.names[0]]
            return dict(self.result, **{key: value for key, value in entry.items()
                                        if key not in ("server", "commands")})
        return dict(self.result, servers=[self.entries[name] for name in self.names])


def _without_observed(outcome):
    return {key: value for key, value in outcome.as_dict().items() if key != "observed"}

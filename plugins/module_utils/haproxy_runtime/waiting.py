# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting until servers have drained, are quiet or are up, all of them in the same polls."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.errors import (
    RuntimeApiError,
    SocketConnectionRefused,
    SocketMissing,
    SocketTimeout,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.servers import streams_of

REACHED, WAITING, HOPELESS = "reached", "waiting", "hopeless"
WAIT_CONDITIONS = ("drained", "quiet", "up")


def drained(view, quiet):
    """No session, no queue, and no new session for ``quiet`` seconds (HAProxy's own lastsess clock).

    Every connection counts, WebSockets too: with ``quiet`` 0 this is "no user left at all"."""
    if view.admin_state == "ready":
        return HOPELESS, "it is in ready state, so it keeps receiving new sessions; set state drain or maint first"
    if view.scur or view.qcur:
        return WAITING, f"{view.scur} session(s) active and {view.qcur} queued"
    if view.lastsess is not None and 0 <= view.lastsess < quiet:
        return WAITING, f"last session assigned {view.lastsess} s ago, waiting for {quiet} s of quiet"
    return REACHED, ("no active or queued session, none ever assigned" if view.lastsess in (None, -1) else
                     f"no active or queued session, last one assigned {view.lastsess} s ago")


def quiet_requests(view, quiet, streams=None):
    """No HTTP request in flight or queued, and none started for ``quiet`` seconds; WebSocket tunnels
    are not waited for (only the instance's restart ends them; Wt's client then reconnects).

    ``streams`` (StreamCounts) tells tunnels from requests; it is only needed while ``scur`` > 0.
    """
    if view.admin_state == "ready":
        return HOPELESS, "it is in ready state, so it keeps receiving new sessions; set state drain or maint first"
    if view.qcur:
        return WAITING, f"{view.qcur} request(s) queued"
    tunnels = 0
    if view.scur:
        if streams is None:
            return WAITING, f"{view.scur} session(s) active"
        tunnels = min(streams.tunnels, view.scur)
        if view.scur > tunnels:
            return WAITING, f"{view.scur - tunnels} request(s) in flight" + (
                f" and {tunnels} WebSocket(s) open" if tunnels else "")
    open_tunnels = f"; {tunnels} WebSocket(s) open, which its restart will close" if tunnels else ""
    if view.lastsess is not None and 0 <= view.lastsess < quiet:
        return WAITING, f"last request {view.lastsess} s ago, waiting for {quiet} s of quiet{open_tunnels}"
    return REACHED, ("no request in flight or queued" + (
        f", last one {view.lastsess} s ago" if view.lastsess not in (None, -1) else "") + open_tunnels)


def up(view):
    """Running and, when checked, at full check health: a fresh health check passed, not just leaving maint."""
    if view.admin_state == "maint":
        return HOPELESS, "it is in maint, where HAProxy does not run health checks; set state ready or drain"
    if view.operational_state != "running":
        detail = f", last check {view.check_status} ({view.check_description})" if view.check_status else ""
        return WAITING, f"status {view.status}{detail}"
    if view.checks_enabled and view.check_rise and view.check_fall:
        full = view.check_rise + view.check_fall - 1
        if view.check_result != "passed" or (view.check_health is not None and view.check_health < full):
            return WAITING, f"status {view.status}: health {view.check_health}/{full}, last check {view.check_status}"
    return REACHED, f"status {view.status}" + (f", last check {view.check_status}" if view.check_status else "")


def still_up(view):
    """Whether HAProxy still routes to a server that was up: running and not in maint. A check that
    is running, or one failed check ("UP 1/2"), does not take a server down; ``fall`` of them do."""
    if view.admin_state == "maint":
        return HOPELESS, "it was put in maint"
    if view.operational_state != "running":
        detail = f", last check {view.check_status} ({view.check_description})" if view.check_status else ""
        return WAITING, f"status {view.status}{detail}"
    return REACHED, f"status {view.status}"


def keep_check(condition, quiet):
    """What must stay true while a reached condition is held (``hold``)."""
    if condition == "up":
        return lambda view, streams=None: still_up(view)
    return wait_check(condition, quiet)


def wait_check(condition, quiet):
    """The check function a ``wait`` option value needs: ``check(view, streams=None)``."""
    if condition == "drained":
        return lambda view, streams=None: drained(view, quiet)
    if condition == "quiet":
        return lambda view, streams=None: quiet_requests(view, quiet, streams)
    if condition == "up":
        return lambda view, streams=None: up(view)
    raise RuntimeApiError(f"can wait for {', '.join(WAIT_CONDITIONS[:-1])} or {WAIT_CONDITIONS[-1]}, not {condition!r}")


def wait_conflict(condition, admin_state):
    """Why waiting for ``condition`` in ``admin_state`` could never succeed, or None."""
    if condition in ("drained", "quiet") and admin_state == "ready":
        never = "drain" if condition == "drained" else "be quiet"
        return (f"is to stay in ready state, where it keeps receiving new sessions, so it can never "
                f"{never}: set state=drain (or maint) with wait={condition}")
    if condition == "up" and admin_state == "maint":
        return ("is to stay in maint, where HAProxy runs no health check, so it can never be seen up: "
                "set state=ready (or drain) with wait=up")
    return None


@dataclass(frozen=True)
class WaitOutcome:
    condition: str
    reached: bool
    reason: str
    elapsed: float
    polls: int
    observed: dict | None

    def as_dict(self):
        return asdict(self)


_TRANSIENT = (SocketConnectionRefused, SocketMissing, SocketTimeout)


def wait_for_servers(condition, poll, names, check, timeout, interval, hold=0.0, keep=None, clock=time.monotonic,
                     sleep=time.sleep):
    """Waits for ``check`` on every server of ``names`` at once: {name: WaitOutcome}.

    ``poll(names)`` reads the servers still waited for, in one exchange: {name: (ServerView,
    StreamCounts or None)}. A server is done when reached (and, with ``hold``, still ``keep`` (by
    default ``check``) ``hold`` seconds later: a relapse meanwhile ends its wait unreached), hopeless,
    or at ``timeout``.
    A socket that is briefly unavailable (HAProxy reloading) is polled again; the last error becomes
    the reason if it never answers again. Any other runtime API error ends every wait.
    """
    wait = _Wait(condition, check, keep or check, hold, clock())
    waiting = list(names)
    while waiting:
        wait.polls += 1
        verdicts = wait.verdicts(poll, waiting)
        now = clock()
        for name, (verdict, reason) in verdicts.items():
            wait.judge(name, verdict, reason, now)
        waiting = [name for name in waiting if name not in wait.outcomes]
        if waiting and now - wait.start >= timeout:
            for name in waiting:
                wait.done(name, False, f"timed out after {timeout:g} s: {wait.reasons[name]}", now)
            waiting = []
        if waiting:
            sleep(max(0.0, min(interval, timeout - (now - wait.start))))
    return {name: wait.outcomes[name] for name in names}


class _Wait:
    """What wait_for_servers knows between polls: each server's last view and reason, since when it
    holds the condition, and its outcome once it has one."""

    def __init__(self, condition, check, keep, hold, start):
        self.condition, self.check, self.keep, self.hold, self.start = condition, check, keep, hold, start
        self.outcomes, self.observed, self.reasons, self.since, self.polls = {}, {}, {}, {}, 0

    def verdicts(self, poll, waiting):
        """{name: (verdict, reason)} of one poll; a failed poll is every server's verdict."""
        try:
            read = poll(list(waiting))
        except _TRANSIENT as failure:
            return {name: (WAITING, str(failure)) for name in waiting}
        except RuntimeApiError as failure:
            return {name: (HOPELESS, str(failure)) for name in waiting}
        verdicts = {}
        for name in waiting:
            view, streams = read[name]
            self.observed[name] = view.as_dict()
            verdicts[name] = (self.keep if name in self.since else self.check)(view, streams)
        return verdicts

    def judge(self, name, verdict, reason, now):
        self.reasons[name] = reason
        if verdict == REACHED:
            if now - self.since.setdefault(name, now) >= self.hold:
                self.done(name, True, reason + (f", for {self.hold:g} s" if self.hold else ""), now)
        elif name in self.since:
            self.done(name, False, f"was {self.condition} for {now - self.since[name]:.1f} s, then: {reason}", now)
        elif verdict == HOPELESS:
            self.done(name, False, f"will never be {self.condition}: {reason}", now)

    def done(self, name, reached, reason, now):
        self.outcomes[name] = WaitOutcome(self.condition, reached, reason, round(now - self.start, 3), self.polls,
                                          self.observed.get(name))


def wait_for(condition, poll, check, timeout, interval, clock=time.monotonic, sleep=time.sleep):
    """wait_for_servers for one server: ``poll()`` returns its ServerView, ``check(view)`` decides."""
    outcomes = wait_for_servers(condition, lambda names: {"server": (poll(), None)}, ["server"],
                                lambda view, streams: check(view), timeout, interval, clock=clock, sleep=sleep)
    return outcomes["server"]


def server_poller(read, streams, condition):
    """``poll(names)`` for wait_for_servers: ``read(names)`` ({name: ServerView}, one exchange), plus
    ``streams()`` (``show sess all``) when telling requests from WebSockets matters (waiting for
    quiet while some server has sessions)."""
    def poll(names):
        views = read(names)
        counts = None
        if condition == "quiet" and any(view.scur for view in views.values()):
            counts = streams()
        return {name: (view, streams_of(view, counts) if counts is not None else None)
                for name, view in views.items()}
    return poll

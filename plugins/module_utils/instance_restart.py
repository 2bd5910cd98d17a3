# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart some of a host's Wt instances at once and wait until each answers its health URL.

Plain Python with no Ansible import: the wt_restart module hands in how to run a command; the
health probe and the clock can be replaced, so all of it is unit-tested without systemd.
"""

from __future__ import annotations

import http.client
import os
import time
from dataclasses import asdict, dataclass

from ansible_collections.wtstack.fleet.plugins.module_utils.host_files import (
    HostError,
    parse_systemctl_show,
    restart_units,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.wt_instances import release_links, write_link

# What systemd says about a unit that did not come back, in one `systemctl show` for all of them.
EXPLAIN_PROPERTIES = ("Id", "ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts")
JOURNAL_LINES = 5
JOURNAL_READ = 200  # lines read back to find JOURNAL_LINES that are not access log


@dataclass(frozen=True)
class Outcome:
    server: str
    port: int
    unit: str
    healthy: bool
    seconds: float
    reason: str
    release: str | None = None           # the release it runs now, with releases
    previous_release: str | None = None  # the one it ran before the restart

    def as_dict(self):
        return asdict(self)


def health_url_host(address):
    return f"[{address}]" if ":" in address else address


def probe(address, port, path, timeout=2.0):
    """(answered 200, what it answered): one GET of the health URL, no redirects, no session."""
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": "wtstack-rolling-restart", "Connection": "close"})
        response = connection.getresponse()
        response.read()
        return response.status == 200, f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as error:
        return False, f"{type(error).__name__}: {getattr(error, 'strerror', None) or error}"
    finally:
        connection.close()


def wait_healthy(instances, path, timeout, interval, check=probe, clock=time.monotonic, sleep=time.sleep):
    """{server: (healthy, seconds, last answer)}: every instance polled each round until it answers
    200 or ``timeout`` passes. ``instances``: dicts with server, port, address."""
    start = clock()
    waiting = {instance["server"]: instance for instance in instances}
    results, last = {}, {}
    while waiting:
        for server, instance in list(waiting.items()):
            healthy, answer = check(instance["address"], instance["port"], path)
            last[server] = answer
            if healthy:
                results[server] = (True, round(clock() - start, 2), answer)
                del waiting[server]
        elapsed = clock() - start
        if not waiting:
            break
        if elapsed >= timeout:
            for server in waiting:
                results[server] = (False, round(elapsed, 2), last[server])
            break
        sleep(max(0.0, min(interval, timeout - elapsed)))
    return results


def move_to_releases(instances, links_dir, releases_dir):
    """Links each instance that names a ``release`` to it; {server: (previous release, error or None)}.
    An instance whose release is not installed is not touched: it fails with a reason."""
    moved = {}
    wanted = [instance for instance in instances if instance.get("release")]
    links = release_links(links_dir, releases_dir, [int(instance["port"]) for instance in wanted])
    for instance in wanted:
        previous = links[int(instance["port"])].release
        if not os.path.isdir(os.path.join(releases_dir, instance["release"])):
            moved[instance["server"]] = (previous, f"release {instance['release']} is not installed in {releases_dir}; "
                                                   "playbooks/rolling_upgrade.yml installs it before it rolls")
            continue
        try:
            write_link(links_dir, instance["port"], releases_dir, instance["release"])
        except HostError as error:
            moved[instance["server"]] = (previous, str(error))
            continue
        moved[instance["server"]] = (previous, None)
    return moved


def explain(unit, properties, journal_tail):
    """Why a unit is not answering, in the words systemd and the instance used."""
    words = []
    if properties:
        state = f"{properties.get('ActiveState', '?')} ({properties.get('SubState', '?')})"
        words.append(f"{unit} is {state}")
        if properties.get("Result") not in (None, "", "success"):
            words.append(f"result {properties['Result']}, exit status {properties.get('ExecMainStatus', '?')}")
        if properties.get("NRestarts") not in (None, "", "0"):
            words.append(f"restarted {properties['NRestarts']} time(s) by systemd")
    # Wt's access log would fill the tail with the probes themselves.
    lines = [line for line in journal_tail.splitlines() if line.strip() and "[access]" not in line]
    if lines:
        words.append("last log: " + " | ".join(lines[-JOURNAL_LINES:]))
    return "; ".join(words)


def restart(run, instances, path, timeout, interval, check=probe, clock=time.monotonic, sleep=time.sleep,
            links_dir=None, releases_dir=None):
    """Restarts every unit of ``instances`` with one systemctl call (systemd runs the jobs in
    parallel), then waits for each; a list of Outcome, with systemd's and the journal's words for
    an instance that did not come back. An instance that names a ``release`` is moved to it first
    (its link), and the outcome says which release it ran before.

    ``run(argv)`` returns (rc, stdout, stderr).
    """
    if not instances:
        return []
    order = {instance["server"]: index for index, instance in enumerate(instances)}
    moved = move_to_releases(instances, links_dir, releases_dir) if links_dir else {}
    refused = {server: error for server, (dummy, error) in moved.items() if error}
    outcomes = [Outcome(instance["server"], int(instance["port"]), instance["unit"], False, 0.0,
                        refused[instance["server"]], moved[instance["server"]][0], moved[instance["server"]][0])
                for instance in instances if instance["server"] in refused]
    instances = [instance for instance in instances if instance["server"] not in refused]
    units = [instance["unit"] for instance in instances]
    if not units:
        return outcomes
    started = clock()
    rc, err = restart_units(run, units)
    restart_error = err if rc != 0 else ""
    answers = wait_healthy(instances, path, max(0.0, timeout - (clock() - started)), interval, check, clock, sleep)
    failing = [instance["unit"] for instance in instances if not answers[instance["server"]][0]]
    details = {}
    if failing:
        rc, out, dummy = run(["systemctl", "show", "--no-pager", "-p", ",".join(EXPLAIN_PROPERTIES), *failing])
        details = parse_systemctl_show(out) if rc == 0 else {}
    for instance in instances:
        healthy, seconds, answer = answers[instance["server"]]
        reason = f"answered {path} after {seconds:g} s" if healthy else (
            f"not answering {path} with 200 after {seconds:g} s (last: {answer})")
        if not healthy:
            if restart_error:
                reason += f"; systemctl restart failed: {restart_error}"
            dummy, tail, dummy2 = run(["journalctl", "--no-pager", "-o", "cat", "-n", str(JOURNAL_READ),
                                       "-u", instance["unit"]])
            why = explain(instance["unit"], details.get(instance["unit"]), tail)
            if why:
                reason += f"; {why}"
        previous = moved.get(instance["server"], (None, None))[0]
        outcomes.append(Outcome(instance["server"], int(instance["port"]), instance["unit"], healthy, seconds, reason,
                                instance.get("release") or previous, previous))
    return sorted(outcomes, key=lambda outcome: order[outcome.server])

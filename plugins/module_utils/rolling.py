# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling operations at fleet scale: which instances go out of rotation together, when a roll
stops, what it remembers for a resume, and what it says while it runs.

Plain Python with no Ansible import: the rolling_restart role drives it through the filters
plugins/filter/rolling_plan.py and plugins/filter/rolling_advance.py, and tests/unit exercises it
without Ansible. docs/design.md, "Rolling", describes the roll as a whole.

The rules, after Kubernetes' rolling update (``maxUnavailable``, a count or a percentage rounded
down, never below one), Nomad's ``canary`` and ``max_parallel``, and Ansible's ``serial``:

- at most ``max_unavailable`` instances of those being rolled are out of rotation at once, counting
  those already out (an instance an operator left in maint, one that failed earlier in the roll),
  and at most that share of their weight (new sessions are placed by weight);
- never every instance of an app host at once, unless the host has only one;
- a batch is spread over hosts (round robin over each host's instances), so its restarts run on as
  many hosts as possible, in parallel;
- a canary batch of its own goes first; a failure there always stops the roll;
- an instance already out of rotation costs no capacity, so a pending one goes first.

A roll's state is a plain dict (JSON-friendly, as Jinja hands it around). Its journal, the part
that must survive the controller, is written to every load balancer after each batch by the
rolling_journal module and read back by the next run, which then resumes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible_collections.wtstack.fleet.plugins.module_utils.topology import PLACEMENT_BACKEND

KINDS = ("restart", "upgrade", "rollback")
JOURNAL_FORMAT = 1
# The steps of a batch, as the summary names them: out of rotation, restart, back in rotation.
BATCH_STEPS = ("out", "restart", "back")
_COUNT = re.compile(r"\s*(\d+)\s*(%?)\s*")


class RollingError(ValueError):
    """A roll that cannot be planned as asked; ``str()`` names the variable and what to do."""


# --- limits -----------------------------------------------------------------------

def resolve_max_unavailable(spec, total, variable="rolling_max_unavailable"):
    """How many of ``total`` instances may be out of rotation at once.

    A count, or a percentage of ``total`` rounded down; at least one, so a roll always moves, and at
    most ``total``.
    """
    match = _COUNT.fullmatch(str(spec)) if not isinstance(spec, bool) else None
    if not match:
        raise RollingError(f"{variable}: {spec!r} is neither a count nor a percentage; give a number of instances "
                           "(e.g. 2) or a share of those being rolled (e.g. 25%)")
    value, percent = int(match.group(1)), bool(match.group(2))
    if value == 0 or (percent and value > 100):
        raise RollingError(f"{variable}: {spec!r} must be at least 1 (or 1%) and at most 100%; a roll needs to "
                           "take at least one instance out at a time")
    if total <= 0:
        return 0
    count = total * value // 100 if percent else value
    return max(1, min(total, count))


def _non_negative_int(value, variable):
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise RollingError(f"{variable}: {value!r} must be a whole number of 0 or more")
    return int(str(value).strip())


# --- the plan ---------------------------------------------------------------------

def spread_order(members):
    """Servers in round-robin order over hosts: each host's first instance, then each second, ...

    ``members`` is a list of {server, host, weight} in topology order (hosts in inventory order,
    each host's instances by port), so the order is stable from run to run.
    """
    by_host = {}
    for member in members:
        by_host.setdefault(member["host"], []).append(member["server"])
    order = []
    for index in range(max((len(servers) for servers in by_host.values()), default=0)):
        order.extend(servers[index] for servers in by_host.values() if index < len(servers))
    return order


def pick_batch(order, size, limits, members, host_sizes, unavailable):
    """The next batch: servers from ``order`` (pending, best first), at most ``size`` of them, such
    that everything out of rotation during the batch (``unavailable`` plus the batch) stays within
    ``limits`` = {count, weight} and leaves every host of several instances at least one.

    When nothing at all is out of rotation, one instance is always allowed (as Kubernetes rounds a
    zero maxUnavailable up to one), even if its weight alone is over the limit: otherwise a roll
    with one heavy instance could never finish.
    """
    out = set(unavailable)
    count = len(out)
    weight = sum(members[server]["weight"] for server in out if server in members)
    host_out = {}
    for server in out:
        if server in members:
            host = members[server]["host"]
            host_out[host] = host_out.get(host, 0) + 1
    batch = []
    nothing_out = not out
    for server in order:
        if len(batch) >= size:
            break
        member = members[server]
        added = 0 if server in out else 1
        host = member["host"]
        host_size = host_sizes.get(host, 1)
        count_ok = count + added <= limits["count"]
        host_ok = host_size == 1 or host_out.get(host, 0) + added < host_size
        weight_ok = weight + added * member["weight"] <= limits["weight"] + 1e-9 or (nothing_out and not batch)
        if not (count_ok and host_ok and weight_ok):
            continue
        batch.append(server)
        out.add(server)
        count += added
        weight += added * member["weight"]
        host_out[host] = host_out.get(host, 0) + added
    return batch


def plan_batches(order, canary, limits, members, host_sizes, unavailable=()):
    """Every batch a roll of ``order`` would take if nothing failed (for the plan and the estimate)."""
    out = set(unavailable)
    # Pending instances already out of rotation cost nothing: they go first.
    pending = sorted(order, key=lambda server: server not in out)
    batches = []
    size = canary or limits["count"]
    while pending:
        batch = pick_batch(pending, size, limits, members, host_sizes, out)
        if not batch:
            break
        batches.append(batch)
        out -= set(batch)  # rolled: back in rotation
        pending = [server for server in pending if server not in batch]
        size = limits["count"]
    return batches


def _limits(selected, max_unavailable):
    count = resolve_max_unavailable(max_unavailable, len(selected))
    total_weight = sum(member["weight"] for member in selected)
    share = count / len(selected) if selected else 0
    return {"spec": str(max_unavailable), "count": count, "weight": total_weight * share}


def select_members(instances, play_hosts=None, servers=None):
    """The instances being rolled: those of ``play_hosts`` (``--limit``), and of ``servers`` if given.

    Raises RollingError for a server name that is not an instance of the topology, or not on a host
    of the play.
    """
    known = {instance["server_name"]: instance for instance in instances}
    hosts = set(play_hosts) if play_hosts is not None else {instance["host"] for instance in instances}
    wanted = list(servers or [])
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise RollingError(f"rolling_restart_servers: {', '.join(unknown)} is not an instance of this fleet; give "
                           "server names as <host>-<port> (playbooks/status.yml lists them)")
    outside = [name for name in wanted if known[name]["host"] not in hosts]
    if outside:
        raise RollingError(f"rolling_restart_servers: {', '.join(outside)} is on a host outside this run's --limit; "
                           "widen --limit or drop it from the list")
    return [{"server": instance["server_name"], "host": instance["host"], "weight": int(instance["weight"]),
             "port": instance["port"], "address": instance["connect_address"], "unit": instance["unit_name"]}
            for instance in instances
            if instance["host"] in hosts and (not wanted or instance["server_name"] in wanted)]


# --- the journal -------------------------------------------------------------------

def roll_key(kind, target):
    """What makes a re-run the same roll: a restart resumes a restart, an upgrade the same target."""
    return f"{kind}:{target}" if target not in (None, "") else kind


def merge_journals(journals):
    """One journal from what every load balancer holds (None where it holds none).

    The balancers are written together, so they normally agree; one that missed a write (it was
    unreachable, or rebuilt) holds an older state of the same roll, or none. The newest roll wins;
    within it, an instance counts as rolled if any balancer recorded it so.
    """
    found = [journal for journal in journals if isinstance(journal, dict) and journal.get("format") == JOURNAL_FORMAT]
    if not found:
        return None
    newest = max(found, key=lambda journal: (journal.get("started", 0), journal.get("updated", 0)))
    same = [journal for journal in found if journal.get("id") == newest.get("id")]
    merged = dict(max(same, key=lambda journal: journal.get("updated", 0)))
    rolled = {}
    failed = {}
    for journal in same:
        rolled.update(journal.get("rolled") or {})
    for journal in same:
        for server, reason in (journal.get("failed") or {}).items():
            if server not in rolled:
                failed[server] = reason
    merged["rolled"] = rolled
    merged["failed"] = failed
    merged["cut"] = max(journal.get("cut", 0) for journal in same)
    return merged


# --- the roll's state, batch by batch ------------------------------------------------

def start_roll(instances, params, now, play_hosts=None, journal=None, unavailable=(), down=(), current=None,
               roll_id=None):
    """The state of a roll about to start (or resume).

    ``instances``: the topology's instances. ``params``: kind (restart | upgrade | rollback), target
    (the release an upgrade moves to), servers (rolling_restart_servers), max_unavailable, canary,
    max_failed, deadline (seconds, 0 for none), pause_after_canary. ``journal``: the merged journal
    of the load balancers. ``unavailable``: instances out of rotation on some balancer now. ``down``:
    instances every balancer sees down (checks failing) while leaving them in rotation: one being
    rolled is out of rotation like the others (it goes first); the others are no capacity to keep,
    so they neither count against the limit nor are touched, and the plan and summary count them.
    ``current``: for an upgrade, the instances already running the target (they have nothing to do).
    An upgrade moves every instance to ``target``; a rollback, each of ``params["releases"]``
    ({server: release}) to its own.
    """
    kind = params.get("kind", "restart")
    if kind not in KINDS:
        raise RollingError(f"rolling kind must be one of {', '.join(KINDS)}, not {kind!r}")
    target = params.get("target")
    selected = select_members(instances, play_hosts, params.get("servers"))
    canary = _non_negative_int(params.get("canary", 1), "rolling_canary")
    max_failed = _non_negative_int(params.get("max_failed", 0), "rolling_max_failed")
    deadline = float(params.get("deadline") or 0)
    if deadline < 0:
        raise RollingError(f"rolling_deadline: {params.get('deadline')!r} must be 0 (none) or a number of seconds")
    pause = float(params.get("pause_after_canary") or 0)
    if pause < 0:
        raise RollingError(f"rolling_pause_after_canary: {params.get('pause_after_canary')!r} "
                           "must be 0 or more seconds")
    releases = dict(params.get("releases") or {})
    if kind == "upgrade" and not releases:
        releases = {member["server"]: target for member in selected}
    members = {member["server"]: dict(member, release=releases.get(member["server"])) for member in selected}
    host_sizes = {}
    for instance in instances:
        host_sizes[instance["host"]] = host_sizes.get(instance["host"], 0) + 1
    limits = _limits(selected, params.get("max_unavailable", "25%")) if selected else {
        "spec": str(params.get("max_unavailable", "25%")), "count": 0, "weight": 0}

    key = roll_key(kind, target)
    resumed = None
    rolled = {}
    if journal and journal.get("key") == key and kind != "rollback" and params.get("resume", True):
        rolled = {server: entry for server, entry in (journal.get("rolled") or {}).items() if server in members}
        resumed = {"id": journal.get("id"), "started": journal.get("started"), "rolled": len(rolled),
                   "failed": sorted(server for server in (journal.get("failed") or {}) if server in members)}
    done = set(rolled) | set(current or ())
    order = [server for server in spread_order(selected) if server not in done]
    known = {instance["server_name"] for instance in instances}
    out = sorted((set(unavailable) | (set(down) & set(members))) & known)
    down_outside = sorted((set(down) & known) - set(members))
    canary_size = min(canary, limits["count"], len(order)) if not (resumed and rolled) else 0
    state = {
        "kind": kind,
        "target": target,
        "key": key,
        "id": (journal or {}).get("id") if resumed else (roll_id or f"{int(now)}"),
        "started": now,
        "journal_started": (journal or {}).get("started", now) if resumed else now,
        "deadline_at": now + deadline if deadline else None,
        "limits": limits,
        "canary": canary_size,
        "pause_after_canary": pause,
        "max_failed": max_failed,
        "members": members,
        "host_sizes": host_sizes,
        "selected": len(members),
        "skipped_current": sorted(set(current or ()) & set(members)),
        "pending": order,
        "rolled": sorted(rolled),
        "previous": {server: (entry or {}).get("from") for server, entry in rolled.items()},
        "rolled_now": [],
        "failed": {},
        "out": out,
        "down": down_outside,
        "cut": 0,
        "batches": [],
        "batch": [],
        "batch_number": 0,
        "batch_started": None,
        "stopped": None,
        "resumed": resumed,
    }
    state["planned"] = len(plan_batches(order, canary_size, limits, members, host_sizes, out))
    # The loop bound: as many batches as the plan, plus those needed if up to max_failed failed
    # instances stay out of rotation and shrink every later batch.
    worst = dict(limits, count=max(1, limits["count"] - max_failed),
                 weight=limits["weight"] * max(1, limits["count"] - max_failed) / max(1, limits["count"]))
    state["iterations"] = max(state["planned"],
                              len(plan_batches(order, canary_size, worst, members, host_sizes, out)))
    return state


def next_batch(state, now):
    """The state with the next batch chosen, or stopped (deadline, or nothing can go out safely),
    or with no batch when every selected instance is rolled."""
    state = dict(state, batch=[], batch_started=None)
    if state["stopped"] or not state["pending"]:
        return state
    if state["deadline_at"] is not None and now >= state["deadline_at"]:
        return stop(state, "deadline", f"rolling_deadline ({state['deadline_at'] - state['started']:g} s) passed "
                                       f"before batch {len(state['batches']) + 1}")
    canary = not state["batches"] and state["canary"] > 0
    size = state["canary"] if canary else state["limits"]["count"]
    unavailable = set(state["out"])
    order = sorted(state["pending"], key=lambda server: server not in unavailable)
    batch = pick_batch(order, size, state["limits"], state["members"], state["host_sizes"], unavailable)
    if not batch:
        waiting = ", ".join(state["pending"][:5]) + (" ..." if len(state["pending"]) > 5 else "")
        outside = ", ".join(sorted(unavailable)) or "none"
        return stop(state, "capacity",
                    f"no instance can leave rotation without breaking rolling_max_unavailable "
                    f"({state['limits']['spec']}) or taking a host's last instance out: out of rotation now: "
                    f"{outside}; still to roll: {waiting}")
    return dict(state, batch=batch, batch_number=len(state["batches"]) + 1, batch_started=now, batch_canary=canary,
                batch_steps={}, batch_step_at=now)


def stop(state, why, reason):
    return dict(state, batch=[], stopped={"why": why, "reason": reason})


def finish_batch(state, outcome, now):
    """Records a batch's outcome and decides whether the roll goes on.

    ``outcome``: rolled (servers back in rotation), failed ({server: reason}; left out of rotation),
    cut (connections still open when their instances stopped), previous ({server: release it ran}).
    """
    batch = list(state["batch"])
    rolled = [server for server in batch if server in set(outcome.get("rolled", []))]
    failed = {server: reason for server, reason in (outcome.get("failed") or {}).items() if server in batch}
    for server in batch:
        if server not in rolled and server not in failed:
            failed[server] = "no outcome was recorded for it"
    all_failed = dict(state["failed"], **failed)
    out = (set(state["out"]) - set(rolled)) | set(failed)
    entry = {"number": state["batch_number"], "servers": batch, "canary": bool(state.get("batch_canary")),
             "seconds": round(now - state["batch_started"], 1), "cut": int(outcome.get("cut", 0)),
             "failed": sorted(failed), "steps": dict(outcome.get("steps") or {})}
    previous = dict(state["previous"])
    previous.update({server: release for server, release in (outcome.get("previous") or {}).items()
                     if server in batch})
    new = dict(state,
               pending=[server for server in state["pending"] if server not in batch],
               rolled=sorted(set(state["rolled"]) | set(rolled)),
               rolled_now=state["rolled_now"] + rolled,
               failed=all_failed,
               previous=previous,
               out=sorted(out),
               cut=state["cut"] + entry["cut"],
               batches=state["batches"] + [entry],
               batch=[])
    if failed and entry["canary"]:
        return stop(new, "canary", f"the canary batch failed: {_reasons(failed)}")
    if len(all_failed) > state["max_failed"]:
        return stop(new, "failed", f"{len(all_failed)} instance(s) failed, more than rolling_max_failed "
                                   f"({state['max_failed']}): {_reasons(all_failed)}")
    return new


def canary_unhealthy(state, reasons):
    """The canary went unhealthy during rolling_pause_after_canary: the roll stops there."""
    return stop(dict(state, failed=dict(state["failed"], **reasons), out=sorted(set(state["out"]) | set(reasons))),
                "canary", f"the canary did not stay healthy for {state['pause_after_canary']:g} s: {_reasons(reasons)}")


def _reasons(failed):
    return "; ".join(f"{server}: {reason}" for server, reason in sorted(failed.items()))


def journal_of(state, now):
    """What the load balancers keep of the roll (rolling_journal writes it, the next run reads it)."""
    return {
        "format": JOURNAL_FORMAT,
        "id": state["id"],
        "key": state["key"],
        "kind": state["kind"],
        "target": state["target"],
        "started": state["journal_started"],
        "updated": now,
        "rolled": {server: {"from": state["previous"].get(server)} for server in state["rolled"]},
        "failed": {server: reason for server, reason in state["failed"].items() if server not in state["rolled"]},
        "cut": state["cut"],
    }


# --- what the roll says ------------------------------------------------------------

def duration(seconds):
    seconds = int(round(max(0, seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def remaining_batches(state):
    """Batches still planned after the current one."""
    pending = [server for server in state["pending"] if server not in state["batch"]]
    if not pending:
        return 0
    return len(plan_batches(pending, 0, state["limits"], state["members"], state["host_sizes"],
                            set(state["out"]) - set(state["batch"]))) or 1


def estimate_left(state, now):
    """Seconds left: the mean of the batches so far (the canary's too, when it is all there is) times
    the batches still planned; None before any batch ended."""
    done = [batch["seconds"] for batch in state["batches"] if not batch["canary"]] or \
        [batch["seconds"] for batch in state["batches"]]
    if not done:
        return None
    left = remaining_batches(state) * (sum(done) / len(done))
    if state["batch"]:
        left += max(0.0, sum(done) / len(done) - (now - state["batch_started"]))
    return left


def progress_line(state, now):
    """One line per batch: which batch of how many, its instances, the time so far and left."""
    total = len(state["batches"]) + (1 if state["batch"] else 0) + remaining_batches(state)
    servers = state["batch"]
    shown = ", ".join(servers[:8]) + (f" and {len(servers) - 8} more" if len(servers) > 8 else "")
    hosts = len({state["members"][server]["host"] for server in servers})
    label = "canary batch" if state.get("batch_canary") else "batch"
    left = estimate_left(state, now)
    return (f"{state['kind']} {label} {state['batch_number']} of {total}: {len(servers)} instance(s) on "
            f"{hosts} host(s) ({shown}); {len(state['rolled'])} of {state['selected']} rolled"
            f"{', ' + str(len(state['failed'])) + ' failed' if state['failed'] else ''}; "
            f"elapsed {duration(now - state['started'])}"
            + (f", about {duration(left)} left" if left is not None else ""))


def summary_lines(state, now):
    """The table printed at the end, whether the roll finished or stopped."""
    title = {"restart": "Rolling restart", "upgrade": "Rolling upgrade", "rollback": "Rollback"}[state["kind"]]
    if state["target"]:
        title += f" to {state['target']}"
    verdict = "stopped: " + state["stopped"]["reason"] if state["stopped"] else "complete"
    rows = [
        ("instances selected", str(state["selected"])),
        ("already current", str(len(state["skipped_current"]))) if state["kind"] != "restart" else None,
        ("rolled", f"{len(state['rolled'])} ({len(state['rolled_now'])} in this run)"
         if state["resumed"] else str(len(state["rolled"]))),
        ("failed (out of rotation)", str(len(state["failed"])) + (
            " (" + ", ".join(sorted(state["failed"])) + ")" if state["failed"] else "")),
        ("not rolled", str(len(state["pending"]))),
        ("down, not in the roll", str(len(state["down"]))) if state.get("down") else None,
        ("connections cut", str(state["cut"])),
        ("batches", f"{len(state['batches'])} (max unavailable {state['limits']['count']}"
                    f" = {state['limits']['spec']}, canary {state['canary']})"),
        ("duration", f"{duration(now - state['started'])} ({now - state['started']:.1f} s)"),
    ]
    rows = [row for row in rows if row]
    width = max(len(row[0]) for row in rows)
    lines = [f"{title}: {verdict}"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    if state["batches"]:
        # Where each batch's time went: out of rotation (drain, quiet, maint, nothing in flight), the
        # restart up to the health URL, back (passing checks on every balancer, then ready).
        lines.append(f"  {'batch':>5}  {'instances':>9}  {'seconds':>7}  {'out':>5}  {'restart':>7}  {'back':>5}  "
                     f"{'cut':>4}  failed")
        for batch in state["batches"]:
            steps = batch.get("steps") or {}
            shown = [f"{steps[step]:.1f}" if step in steps else "-" for step in BATCH_STEPS]
            lines.append(f"  {str(batch['number']) + ('c' if batch['canary'] else ''):>5}  {len(batch['servers']):>9}  "
                         f"{batch['seconds']:>7.1f}  {shown[0]:>5}  {shown[1]:>7}  {shown[2]:>5}  "
                         f"{batch['cut']:>4}  {', '.join(batch['failed']) or '-'}")
    return lines


def _some(servers, shown=5):
    return ", ".join(servers[:shown]) + (f" and {len(servers) - shown} more" if len(servers) > shown else "")


def resume_hint(state):
    """How to go on after a stop, naming the instances left out of rotation."""
    failed = ", ".join(sorted(state["failed"])) or "none"
    return (f"Instances left out of rotation (maint), which is safe: {failed}. {len(state['rolled'])} of "
            f"{state['selected']} are rolled; {len(state['pending'])} are untouched. Fix the cause, then run "
            f"the same command again: it resumes with the {len(state['pending']) + len(state['failed'])} "
            "instance(s) not yet rolled (the failed ones first); -e rolling_restart_resume=false starts over.")


# --- one batch, step by step ---------------------------------------------------------
#
# The rolling_restart role runs a batch as three module runs, each on every load balancer or on
# every host of the batch at once: out (drain, quiet, maint), restart, up (drain, wait for passing
# checks, ready). After each, ``advance`` reads what the modules returned and says which instances
# go on to the next step ("done" after up: the batch is recorded); an instance that fails a step
# stays out of rotation (keep_out: back to maint) and is not taken further.

def ansible_results(registered):
    """Module results out of registered variables of several hosts, a list or {host: variable}: loop
    items flattened, skipped results (hosts that had nothing to do) dropped, each tagged with its
    host (``_host``): the key of the mapping, else the host a loop item names (``delegate_to`` in a
    loop over hosts).

    Asynchronous jobs (``async`` with ``poll: 0``, then ``async_status``): give the launches' results
    and then the collections', in that order; each job's last result stands for it. A job that never
    reported an end (its collection ran out of retries, or never ran) failed."""
    pairs = registered.items() if isinstance(registered, Mapping) else ((None, item) for item in registered or [])
    found, jobs = [], {}
    for host, item in pairs:
        if not isinstance(item, dict) or item.get("skipped"):
            continue
        items = item["results"] if isinstance(item.get("results"), list) else [item]
        for result in items:
            if not isinstance(result, dict) or result.get("skipped"):
                continue
            result = dict(result, _host=host if host is not None else _loop_host(result))
            job = result.get("ansible_job_id")
            if job is None:
                found.append(result)
                continue
            if job not in jobs:
                found.append(job)
            jobs[job] = result
    return [_job_result(jobs[entry]) if isinstance(entry, str) else entry for entry in found]


def _loop_host(result):
    """The host a loop item names: the item itself, or, for an async job's collection, the item of
    the launch it collects."""
    for dummy in range(2):
        item = result.get(result.get("ansible_loop_var") or "item")
        if isinstance(item, str):
            return item
        if not isinstance(item, dict):
            return None
        result = item
    return None


def _job_result(result):
    if result.get("finished") or result.get("failed") or result.get("unreachable"):
        return result
    return dict(result, failed=True, msg=f"its job {result.get('ansible_job_id')} never reported an end")


def _where(result):
    return (result.get("lb") or result.get("_host") or result.get("_ansible_delegated_vars", {}).get("ansible_host")
            or "a load balancer")


def _server_entries(result):
    return {entry.get("server"): entry for entry in result.get("servers") or [] if isinstance(entry, dict)}


def _lb_failures(servers, results, what):
    """{server: reason} for the servers a load balancer step did not bring where it should."""
    failed = {}
    for result in results:
        entries = _server_entries(result)
        for server in servers:
            entry = entries.get(server)
            if entry is None:
                if result.get("failed") or result.get("unreachable"):
                    failed.setdefault(server, f"{_where(result)}: {result.get('msg', 'the step failed')}")
                continue
            wait = entry.get("wait") or {}
            if wait and not wait.get("reached"):
                failed.setdefault(server, f"{what} on {_where(result)}: {wait.get('reason')}")
            elif result.get("failed") and server in (result.get("failed_servers") or []):
                failed.setdefault(server, f"{_where(result)}: {result.get('msg')}")
    return failed


def _timed(state, step, now):
    """The batch's step times so far ({step: seconds}) with ``step`` ending ``now``."""
    started = state.get("batch_step_at", state.get("batch_started"))
    started = now if started is None else started
    return dict(state.get("batch_steps") or {}, **{step: round(now - started, 1)})


def advance(state, step, results, now):
    """The state after one step of the current batch (see above): "out", "restart", then "done" (the
    up step's results: the batch is recorded and the next one chosen), and "watch" after the canary's.
    Each batch keeps how long its out, restart and back steps took (the summary's columns)."""
    results = ansible_results(results)
    failed = dict(state.get("batch_failed") or {})
    if step in ("out", "restart", "done"):
        state = dict(state, batch_steps=_timed(state, BATCH_STEPS[("out", "restart", "done").index(step)], now),
                     batch_step_at=now)
    if step == "out":
        batch = [server for server in state["batch"] if server not in failed]
        failed.update(_lb_failures(batch, results, "requests still in flight"))
        cut = {}
        for result in results:
            for server, entry in _server_entries(result).items():
                if server in batch and server not in failed:
                    cut[server] = cut.get(server, 0) + int((entry.get("after") or {}).get("scur") or 0)
        going = [server for server in batch if server not in failed]
        restart_on = {}
        for server in going:
            member = state["members"][server]
            item = {"server": server, "port": member["port"], "address": member["address"], "unit": member["unit"]}
            if member.get("release"):
                item["release"] = member["release"]
            restart_on.setdefault(member["host"], []).append(item)
        return dict(state, batch_failed=failed, batch_cut=cut, restart_on=restart_on, bring_up=[])
    if step == "restart":
        reported = {}
        for result in results:
            for entry in result.get("instances") or []:
                reported[entry.get("server")] = entry
        previous = dict(state.get("batch_previous") or {})
        host_errors = {result.get("_host"): result.get("msg") for result in results
                       if result.get("failed") or result.get("unreachable")}
        for host, servers in state["restart_on"].items():
            for item in servers:
                entry = reported.get(item["server"])
                if entry is None:
                    failed[item["server"]] = f"{host} did not report the restart" + (
                        f": {host_errors[host]}" if host_errors.get(host) else "")
                elif not entry.get("healthy"):
                    failed[item["server"]] = entry.get("reason") or "it did not come back"
                if entry is not None and entry.get("previous_release") is not None:
                    previous[item["server"]] = entry["previous_release"]
        bring_up = [server for servers in state["restart_on"].values() for server in
                    (item["server"] for item in servers) if server not in failed]
        return dict(state, batch_failed=failed, batch_previous=previous, bring_up=bring_up)
    if step == "done":
        failed.update(_lb_failures(state["bring_up"], results, "not up"))
        rolled = [server for server in state["bring_up"] if server not in failed]
        cut = sum(count for server, count in (state.get("batch_cut") or {}).items() if server not in failed)
        recorded = finish_batch(state, {"rolled": rolled, "failed": failed, "cut": cut,
                                        "previous": state.get("batch_previous") or {},
                                        "steps": state["batch_steps"]}, now)
        recorded = dict(recorded, batch_failed={}, batch_cut={}, batch_previous={}, restart_on={}, bring_up=[],
                        keep_out=sorted(failed),
                        watch=list(rolled) if recorded["batches"][-1]["canary"]
                        and state["pause_after_canary"] > 0 and not recorded["stopped"] else [])
        return describe(next_batch(recorded, now), now)
    if step == "watch":
        unhealthy = _lb_failures(state["watch"], results, "did not stay up")
        state = dict(state, watch=[])
        if unhealthy:
            return describe(dict(canary_unhealthy(state, unhealthy), keep_out=sorted(unhealthy)), now)
        return describe(state, now)
    raise RollingError(f"unknown step of a rolling batch: {step!r}")


def describe(state, now):
    """The texts the role prints, kept in the state so the tasks only show them."""
    return dict(state, progress=progress_line(state, now) if state["batch"] else None,
                summary=summary_lines(state, now), journal=journal_of(state, now),
                hint=resume_hint(state) if state["stopped"] else None)


def _instance_rows(info_results):
    """{server: [its row on each balancer]} of the Wt instances in haproxy_info results."""
    rows = {}
    for result in ansible_results(info_results):
        for server in result.get("servers") or []:
            if server.get("backend") == PLACEMENT_BACKEND and server.get("own_backend"):
                rows.setdefault(server["server"], []).append(server)
    return rows


def _down_everywhere(rows):
    """Left in rotation by every balancer (admin ready) and down on every one: its checks fail."""
    return all(row.get("admin_state") == "ready" for row in rows) and \
        all(row.get("operational_state") != "running" for row in rows)


def unavailable_servers(info_results):
    """Instances some balancer does not route new sessions to now (not ready, or not up), from
    haproxy_info results of every balancer; those down on every balancer (down_servers) apart."""
    return sorted(server for server, rows in _instance_rows(info_results).items()
                  if not _down_everywhere(rows)
                  and any(row.get("admin_state") != "ready" or row.get("operational_state") != "running"
                          for row in rows))


def down_servers(info_results):
    """Instances every balancer leaves in rotation but sees down (their health checks fail): an
    instance that is not running, or a host that does not exist. They are no capacity whatever a
    roll does: outside the roll they are left alone and not counted against its limit."""
    return sorted(server for server, rows in _instance_rows(info_results).items() if _down_everywhere(rows))


def plan(instances, params, now, play_hosts=None, journals=(), info=(), current=(), roll_id=None):
    """start_roll from what the role gathered: journal read results and haproxy_info results of every
    balancer; with the plan's texts."""
    journal = merge_journals([result.get("journal") for result in ansible_results(journals)])
    state = start_roll(instances, params, now, play_hosts=play_hosts, journal=journal,
                       unavailable=unavailable_servers(info), down=down_servers(info), current=current,
                       roll_id=roll_id)
    state = dict(state, batch_failed={}, batch_cut={}, batch_previous={}, restart_on={}, bring_up=[],
                 keep_out=[], watch=[])
    state["plan"] = plan_lines(state)
    return describe(next_batch(state, now), now)


def plan_lines(state):
    """What the roll is about to do, printed before it starts (and all of it in check mode)."""
    batches = plan_batches(state["pending"], state["canary"], state["limits"], state["members"],
                           state["host_sizes"], state["out"])
    what = {"restart": "restart", "upgrade": f"upgrade to {state['target']}",
            "rollback": f"rollback to {state['target']}"}[state["kind"]]
    lines = [f"{what}: {len(state['pending'])} of {state['selected']} selected instance(s) to roll in "
             f"{len(batches)} batch(es); at most {state['limits']['count']} out of rotation at once "
             f"(rolling_max_unavailable {state['limits']['spec']})"
             + (f", canary {state['canary']}" if state["canary"] else "")
             + (f" watched {state['pause_after_canary']:g} s"
                if state["canary"] and state["pause_after_canary"] else "")
             + f", rolling_max_failed {state['max_failed']}"
             + (f", deadline {state['deadline_at'] - state['started']:g} s" if state["deadline_at"] else "")]
    if state["resumed"]:
        lines.append(f"resuming roll {state['resumed']['id']}: {state['resumed']['rolled']} instance(s) already "
                     "rolled" + (f"; failed before: {', '.join(state['resumed']['failed'])}"
                                 if state["resumed"]["failed"] else ""))
    if state["skipped_current"]:
        lines.append(f"{len(state['skipped_current'])} instance(s) already run {state['target']}: left alone")
    if state["out"]:
        lines.append(f"out of rotation before the roll (counted against the limit): {', '.join(state['out'])}")
    if state.get("down"):
        lines.append(f"{len(state['down'])} instance(s) outside the roll are down on every load balancer "
                     f"({_some(state['down'])}): no capacity, not counted against the limit, left alone")
    for number, batch in enumerate(batches, start=1):
        label = "canary" if number == 1 and state["canary"] else f"batch {number}"
        lines.append(f"  {label}: {', '.join(batch)}")
    return lines


def rollback_params(state, params):
    """The parameters of the roll that moves back what a stopped upgrade moved, each instance to the
    release it ran before (the journal's ``from``); instances that had none (a host from before
    releases) cannot go back and are left where they are."""
    back = {server: release for server, release in state["previous"].items()
            if release and (server in state["rolled"] or server in state["failed"])}
    targets = sorted(set(back.values()))
    return dict(params, kind="rollback", servers=sorted(back), releases=back, canary=0, deadline=0, resume=False,
                target=", ".join(targets) if targets else None)


def plan_rollback(instances, state, params, now, play_hosts=None, info=()):
    """The rollback's state, or one with nothing to do when the upgrade moved nothing back-able."""
    back = rollback_params(state, params)
    if not back["servers"]:
        empty = start_roll(instances, dict(back, servers=None), now, play_hosts=[], roll_id=f"{state['id']}-rollback")
        return describe(dict(empty, batch_failed={}, batch_cut={}, batch_previous={}, restart_on={}, bring_up=[],
                             keep_out=[], watch=[], plan=["rollback: nothing the upgrade moved can go "
                                                          "back (no previous release recorded)"]), now)
    return plan(instances, back, now, play_hosts=play_hosts, info=info, roll_id=f"{state['id']}-rollback")

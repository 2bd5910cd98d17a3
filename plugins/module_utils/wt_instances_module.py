# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the wt_instances module does, once Ansible has checked its options: read the host, work out
what converging its instances takes (wt_instances.instance_changes), report it, and (unless in check
mode) do it in order. ``run_wt_instances_module`` returns the module's result."""

from __future__ import annotations

from ansible_collections.wtstack.fleet.plugins.module_utils.host_files import (
    HostError,
    parse_mode,
    remove_file,
    restart_units,
    write_file,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import unit_name
from ansible_collections.wtstack.fleet.plugins.module_utils.wt_instances import (
    Host,
    Wanted,
    installed_releases,
    instance_changes,
    newest_change,
    probe_address,
    release_links,
    remove_release,
    settings_path,
    wait_listening,
    write_link,
)


class OptionError(Exception):
    """Options that contradict each other; ``str()`` is the module's message."""


def run_wt_instances_module(params, run_command, check_mode=False, diff=False):
    """(failed, msg, result) of one wt_instances run; ``run_command(argv)`` returns (rc, out, err)."""
    result = dict(changed=False, written=[], restarted=[], started=[], enabled=[], stopped=[], disabled=[],
                  removed=[], daemon_reloaded=False, linked={}, releases_removed=[], outdated={})
    try:
        wanted, mode = wanted_instances(params)
        host = Host(run_command, params["settings_dir"])
        settings = {instance.port: host.settings_state(instance.port) for instance in wanted}
        plan = work_out(params, host, wanted, settings, mode)
        result.update(report(plan))
        if diff and plan.changed:
            result["diff"] = diffs(params["settings_dir"], plan, wanted, settings)
        if not check_mode and plan.changed:
            converge(params, host, plan, wanted, mode)
    except (OptionError, HostError) as error:
        return True, str(error), result
    return False, None, result


def wanted_instances(params):
    """(the instances asked for as Wanted, the settings files' mode), or OptionError."""
    try:
        mode = parse_mode(params["settings_mode"], "settings_mode")
    except ValueError as error:
        raise OptionError(str(error)) from None
    missing = [str(item["port"]) for item in params["instances"] if item["settings"] is None]
    if missing:
        raise OptionError(f"instances: no settings for port {', '.join(missing)}; give settings or settings_template")
    wanted = [Wanted(item["port"], item["listen_address"], item["settings"].encode(),
                     item["release"] if item["release"] is not None else params.get("release"))
              for item in params["instances"]]
    ports = [instance.port for instance in wanted]
    if len(set(ports)) != len(ports):
        raise OptionError(f"instances: a port is listed twice: {sorted(ports)}")
    if params["releases_dir"] and any(instance.release is None for instance in wanted):
        raise OptionError("instances: with releases_dir, every instance needs its release")
    if params["releases_kept"] < 1:
        raise OptionError(f"releases_kept: {params['releases_kept']} must be at least 1 (the release instances run)")
    return wanted, mode


def work_out(params, host, wanted, settings, mode):
    """The Plan: what makes the host's instances what ``wanted`` says."""
    ports = [instance.port for instance in wanted]
    releases_dir = params["releases_dir"]
    links = release_links(params["links_dir"], releases_dir, ports) if releases_dir else None
    releases = installed_releases(releases_dir, params["release_files"], params["release_trees"]) \
        if releases_dir else None
    return instance_changes(
        wanted, host.unit_states(ports), settings, host.known_units() if params["prune"] else {},
        mode=mode, owner=params["settings_owner"], group=params["settings_group"],
        newest_shared_change=newest_change(params["runtime_files"], params["runtime_trees"]),
        restart_all=params["restart_all"], restart_on_change=params["restart_on_change"],
        unit_file_changed=params["unit_file_changed"], prune=params["prune"], settings_dir=params["settings_dir"],
        links=links, releases=releases, releases_kept=params["releases_kept"],
        changed_releases=params["changed_releases"])


def report(plan):
    return dict(changed=plan.changed, written=plan.write, daemon_reloaded=plan.daemon_reload,
                restarted=[unit_name(port) for port in plan.restart],
                started=[unit_name(port) for port in plan.start],
                enabled=[unit_name(port) for port in plan.enable],
                stopped=plan.stop, disabled=plan.disable, removed=plan.remove,
                linked={str(port): release for port, release in plan.link.items()},
                outdated={str(port): reason for port, reason in plan.outdated.items()},
                releases_removed=plan.prune_releases)


def diffs(settings_dir, plan, wanted, settings):
    by_port = {instance.port: instance for instance in wanted}
    return [dict(before_header=settings_path(settings_dir, port), after_header=settings_path(settings_dir, port),
                 before=(settings[port].content or b"").decode("utf-8", "replace"),
                 after=by_port[port].settings.decode("utf-8", "replace")) for port in plan.write] + \
        [dict(prepared=plan.summary())]


def converge(params, host, plan, wanted, mode):
    """Does what ``plan`` says, in its order; the first failure ends it (HostError)."""
    by_port = {instance.port: instance for instance in wanted}
    links_dir, releases_dir = params["links_dir"], params["releases_dir"]
    for port in plan.write:
        write_file(settings_path(params["settings_dir"], port), by_port[port].settings, mode,
                   params["settings_owner"], params["settings_group"])
    # An instance that restarts onto another release is linked to it just before its restart,
    # so that until then a crash restarts it on the release it ran.
    for port, release in plan.link.items():
        if port not in plan.restart:
            write_link(links_dir, port, releases_dir, release)
    if plan.daemon_reload:
        host.systemctl("daemon-reload")
    restart_one_by_one(params, host, plan, by_port)
    for verb, units in (("start", [unit_name(port) for port in plan.start]),
                        ("enable", [unit_name(port) for port in plan.enable]),
                        ("stop", plan.stop), ("disable", plan.disable)):
        if units:
            host.systemctl(verb, *units)
    for path in plan.remove:
        remove_file(path)
    for release in plan.prune_releases:
        remove_release(releases_dir, release)


def restart_one_by_one(params, host, plan, by_port):
    """Each instance to restart, one at a time, each listening again before the next: a converge
    never has two of a host's instances down at once. The first that does not come back ends it."""
    timeout = params["restart_timeout"]
    for done, port in enumerate(plan.restart):
        if port in plan.link:
            write_link(params["links_dir"], port, params["releases_dir"], plan.link[port])
        unit, address = unit_name(port), probe_address(by_port[port].listen_address)
        rc, err = restart_units(host.run, [unit])
        if rc != 0:
            raise HostError(f"systemctl restart {unit} failed ({rc}): {err}")
        if not wait_listening(address, port, timeout):
            left = [unit_name(other) for other in plan.restart[done + 1:]]
            raise HostError(
                f"{unit} was restarted but accepts no connection on {address}:{port} after {timeout:g} s; see "
                f"`journalctl -u {unit}`. " + (f"Not restarted, so still running as before: {', '.join(left)}."
                                               if left else ""))

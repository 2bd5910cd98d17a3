# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's Wt instances as systemd sees them, and what to do to make them what the inventory says.

Plain Python with no Ansible import: instance_changes() is pure (states in, actions out), the rest
reads and changes the host (files, systemctl) through a command runner given by the caller, so the
wt_instances module stays thin and all of this is unit-tested without Ansible or systemd.

Each instance is the unit wt@<port>.service reading its settings from <settings_dir>/<port>.env.

Releases: with a releases directory, each version of the application is installed in a directory
of its own (<releases_dir>/<release>), and each instance runs the release its link names
(<links_dir>/<port> -> <releases_dir>/<release>; wt@.service reaches the application through
<links_dir>/%i). So an instance moves to another release, and back, by its link and a restart, one
instance at a time if need be, and the previous release stays installed for a rollback.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
import shutil
import socket
import stat
import time
from dataclasses import dataclass, field

from ansible_collections.wtstack.fleet.plugins.module_utils.host_files import (
    HostError,
    parse_systemctl_show,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.host_state import group_name, user_name
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import unit_name

UNIT_PATTERN = re.compile(r"^wt@([0-9]+)\.service$")
SETTINGS_PATTERN = re.compile(r"^([0-9]+)\.env$")
# systemctl show properties read for every instance in one call.
UNIT_PROPERTIES = ("Id", "LoadState", "ActiveState", "UnitFileState", "NeedDaemonReload", "ExecMainStartTimestamp")
# systemd's start timestamps have a resolution of a second; a file changed within the second the
# process started counts as older, as find -newerct did in the role's earlier shell probe.
TIMESTAMP_SLACK = 1


def settings_path(settings_dir, port):
    return os.path.join(settings_dir, f"{port}.env")


@dataclass(frozen=True)
class UnitState:
    """What `systemctl show` says about one instance's unit."""

    loaded: bool = False
    active: bool = False
    enabled: bool = False
    needs_daemon_reload: bool = False
    started_at: int | None = None  # unix seconds the running process started, when active


@dataclass(frozen=True)
class FileState:
    """A settings file as it is on the host (content None: there is none)."""

    content: bytes | None = None
    mode: int | None = None
    owner: str | None = None
    group: str | None = None
    ctime: float | None = None


@dataclass(frozen=True)
class KnownUnit:
    """An instance unit this host has, wanted or not."""

    active: bool = False
    enabled: bool = False
    has_settings: bool = False


@dataclass(frozen=True)
class Wanted:
    """One instance as the inventory wants it (``release``: the release it runs, with releases)."""

    port: int
    listen_address: str
    settings: bytes
    release: str | None = None


@dataclass(frozen=True)
class ReleaseLink:
    """An instance's link to its release, as it is on the host (release None: there is none)."""

    release: str | None = None
    ctime: float | None = None


@dataclass
class Plan:
    """What converging the instances takes, in the order it is done."""

    write: list = field(default_factory=list)  # ports whose settings file is written
    daemon_reload: bool = False
    restart: list = field(default_factory=list)  # ports restarted one at a time, each waited for
    start: list = field(default_factory=list)
    enable: list = field(default_factory=list)
    stop: list = field(default_factory=list)  # units of instances the inventory no longer has
    disable: list = field(default_factory=list)
    remove: list = field(default_factory=list)  # their settings files
    reasons: dict = field(default_factory=dict)  # port -> why it restarts
    link: dict = field(default_factory=dict)  # port -> release its link is set to
    prune_releases: list = field(default_factory=list)  # release directories removed
    # port -> why a running instance is not what this run installs (whether it restarts or not:
    # with restart_on_change false, these are what a rolling upgrade still has to restart).
    outdated: dict = field(default_factory=dict)

    @property
    def changed(self):
        return bool(self.write or self.daemon_reload or self.restart or self.start or self.enable
                    or self.stop or self.disable or self.remove or self.link or self.prune_releases)

    def summary(self):
        """One line per action, as `--diff` shows it."""
        lines = [f"write {port}.env" for port in self.write]
        lines += [f"link instance {port} to release {release}" for port, release in self.link.items()]
        if self.daemon_reload:
            lines.append("systemctl daemon-reload")
        lines += [f"restart {unit_name(port)} ({self.reasons[port]})" for port in self.restart]
        lines += [f"start {unit_name(port)}" for port in self.start]
        lines += [f"enable {unit_name(port)}" for port in self.enable]
        lines += [f"stop {unit}" for unit in self.stop]
        lines += [f"disable {unit}" for unit in self.disable]
        lines += [f"remove {path}" for path in self.remove]
        lines += [f"remove release {release}" for release in self.prune_releases]
        return "".join(line + "\n" for line in lines)


def instance_arguments(instances, settings):
    """The wt_instances module's ``instances`` from the topology's instances of a host (or any mappings
    with ``port`` and ``listen_address``) and each one's settings, in the same order: only the keys
    the module takes (``release`` where an instance names one)."""
    if len(instances) != len(settings):
        raise ValueError(f"{len(instances)} instances but {len(settings)} settings")
    return [dict({"port": instance["port"], "listen_address": instance["listen_address"], "settings": text},
                 **({"release": instance["release"]} if instance.get("release") is not None else {}))
            for instance, text in zip(instances, settings)]


def settings_files(instances, file, settings_dir):
    """Each instance's settings file as plan_files renders it: ``file`` (src, mode, owner, group) with
    the instance's path as ``dest`` and the instance as the template's ``instance``."""
    return [dict(file, dest=settings_path(settings_dir, instance["port"]), vars={"instance": instance})
            for instance in instances]


def settings_differ(current, wanted_content, mode, owner, group):
    return (current.content != wanted_content or current.mode != mode or current.owner != owner
            or current.group != group)


def is_stale(unit, newest_shared_change, settings_ctime):
    """Whether a running instance started before one of its files last changed: a run killed between
    writing files and restarting leaves it running what the files no longer say."""
    if not unit.active or unit.started_at is None:
        return False
    newest = max((value for value in (newest_shared_change, settings_ctime) if value is not None), default=None)
    return newest is not None and newest > unit.started_at + TIMESTAMP_SLACK


def instance_changes(wanted, units, settings, known_units, *, mode, owner, group, newest_shared_change=None,
                     restart_all=False, restart_on_change=True, unit_file_changed=False, prune=True,
                     settings_dir=".", links=None, releases=None, releases_kept=2, changed_releases=()):
    """Actions that make the host's instances what `wanted` says.

    wanted: Wanted per instance; units: port -> UnitState; settings: port -> FileState;
    known_units: unit name -> KnownUnit, every instance unit this host has (loaded, enabled or with a
    settings file), of which those not wanted are stopped, disabled and their settings removed.
    An instance restarts when its settings change, when it is older than its files, or when
    restart_all says the application or a shared file changed (never if restart_on_change is false);
    one that is not running is started instead; one that is not enabled is enabled.

    With releases (``links``: port -> ReleaseLink; ``releases``: installed release -> {"mtime",
    "newest_change"}), an instance whose link names another release moves to its wanted one (link
    and restart), unless restart_on_change is false: a rolling upgrade moves it later, and meanwhile
    it keeps (and restarts on) the release it runs. An instance with no link, or a link to a release
    that is gone, gets one to its wanted release in any case. An instance that runs one of
    ``changed_releases`` (installed again by this run) restarts. Then releases no instance runs are
    removed, the most recent kept until ``releases_kept`` remain."""
    plan = Plan()
    plan.daemon_reload = unit_file_changed or any(state.needs_daemon_reload for state in units.values())
    links = links or {}
    releases = releases or {}
    runs = {}
    for instance in wanted:
        unit = units.get(instance.port, UnitState())
        current = settings.get(instance.port, FileState())
        rewritten = settings_differ(current, instance.settings, mode, owner, group)
        if rewritten:
            plan.write.append(instance.port)
        moves = False
        newest = newest_shared_change
        if instance.release is not None:
            link = links.get(instance.port, ReleaseLink())
            if link.release not in releases or (link.release != instance.release and restart_on_change):
                plan.link[instance.port] = instance.release
                moves = link.release is not None or unit.active
            runs[instance.port] = plan.link.get(instance.port, link.release)
            newest = max((value for value in (newest, link.ctime if instance.port not in plan.link else None,
                                              releases.get(runs[instance.port], {}).get("newest_change"))
                          if value is not None), default=None)
        elsewhere = instance.release is not None and runs[instance.port] != instance.release
        if elsewhere and not unit.active:
            plan.outdated[instance.port] = f"it starts on release {runs[instance.port]}, not {instance.release}"
        if unit.active:
            reason = None
            if restart_all:
                reason = "the application or a file every instance reads changed"
            elif moves:
                reason = f"it moves to release {instance.release}"
            elif elsewhere:
                reason = f"it runs release {runs[instance.port]}, not {instance.release}"
            elif instance.release is not None and runs[instance.port] in changed_releases:
                reason = f"its release {runs[instance.port]} was installed again"
            elif rewritten:
                reason = "its settings changed"
            elif is_stale(unit, newest, current.ctime):
                reason = "it started before one of its files last changed"
            if reason:
                plan.outdated[instance.port] = reason
            if reason and restart_on_change:
                plan.restart.append(instance.port)
                plan.reasons[instance.port] = reason
        else:
            plan.start.append(instance.port)
        if not unit.enabled:
            plan.enable.append(instance.port)
    if prune:
        wanted_units = {unit_name(instance.port) for instance in wanted}
        for unit, state in sorted(known_units.items()):
            if unit in wanted_units:
                continue
            if state.active:
                plan.stop.append(unit)
            if state.enabled:
                plan.disable.append(unit)
            path = settings_path(settings_dir, UNIT_PATTERN.match(unit).group(1))
            if state.has_settings:
                plan.remove.append(path)
    if runs:
        plan.prune_releases = releases_to_prune(releases, set(runs.values()) | {i.release for i in wanted},
                                                releases_kept)
    return plan


def releases_to_prune(releases, in_use, kept):
    """Installed releases (release -> {"mtime"}) to remove: none in ``in_use``, and of the others
    the most recent stay until ``kept`` releases remain (the previous one, for a rollback)."""
    others = sorted((release for release in releases if release not in in_use),
                    key=lambda release: releases[release].get("mtime") or 0, reverse=True)
    room = max(0, kept - len({release for release in in_use if release is not None}))
    return sorted(others[room:])


def unit_state(properties):
    started = properties.get("ExecMainStartTimestamp", "")
    active = properties.get("ActiveState") in ("active", "reloading", "activating")
    return UnitState(
        loaded=properties.get("LoadState") == "loaded",
        active=active,
        enabled=properties.get("UnitFileState") in ("enabled", "enabled-runtime"),
        needs_daemon_reload=properties.get("NeedDaemonReload") == "yes",
        started_at=int(started[1:]) if active and re.match(r"^@[0-9]+$", started) else None,
    )


def probe_address(listen_address):
    """Where a check on the host itself reaches an instance: its address, or loopback for a wildcard."""
    address = ipaddress.ip_address(listen_address)
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return str(address)


# ----------------------------------------------------------------------------------- the host


class Host:
    """The host's side: files and systemctl. `run(argv)` returns (rc, stdout, stderr)."""

    def __init__(self, run, settings_dir):
        self.run = run
        self.settings_dir = settings_dir

    def systemctl(self, *args, check=True):
        rc, out, err = self.run(["systemctl", *args])
        if check and rc != 0:
            raise HostError(f"systemctl {' '.join(args)} failed ({rc}): {(err or out).strip()}")
        return rc, out, err

    def unit_states(self, ports):
        if not ports:
            return {}
        args = ["show", "--timestamp=unix"] + [f"--property={name}" for name in UNIT_PROPERTIES]
        dummy, out, dummy = self.systemctl(*args, *(unit_name(port) for port in ports))
        shown = parse_systemctl_show(out)
        return {port: unit_state(shown.get(unit_name(port), {})) for port in ports}

    def known_units(self):
        """Instance units this host has: loaded, enabled (a wants symlink) or with a settings file."""
        names = set()
        dummy, out, dummy = self.systemctl("list-units", "--all", "--plain", "--no-legend", "--type=service",
                                           "wt@*.service")
        for line in out.splitlines():
            # A failed or missing unit may come after a status bullet, even with --plain.
            names.update(word for word in line.split()[:2] if UNIT_PATTERN.match(word))
        for directory, dummy, files in os.walk("/etc/systemd/system"):
            if directory.endswith(".wants"):
                names.update(name for name in files if UNIT_PATTERN.match(name))
        with_settings = set()
        if os.path.isdir(self.settings_dir):
            for name in os.listdir(self.settings_dir):
                match = SETTINGS_PATTERN.match(name)
                if match:
                    with_settings.add(unit_name(match.group(1)))
        names = {name for name in names | with_settings if UNIT_PATTERN.match(name)}
        states = self.unit_states([int(UNIT_PATTERN.match(name).group(1)) for name in sorted(names)])
        return {unit_name(port): KnownUnit(state.active, state.enabled, unit_name(port) in with_settings)
                for port, state in states.items()}

    def settings_state(self, port):
        return file_state(settings_path(self.settings_dir, port))


def release_links(links_dir, releases_dir, ports):
    """{port: ReleaseLink}: the release each instance's link names (None: no link, or not a release)."""
    links = {}
    for port in ports:
        path = os.path.join(links_dir, str(port))
        try:
            target, ctime = os.readlink(path), os.lstat(path).st_ctime
        except OSError:
            links[port] = ReleaseLink()
            continue
        inside = os.path.dirname(os.path.normpath(os.path.join(links_dir, target))) == os.path.normpath(releases_dir)
        links[port] = ReleaseLink(os.path.basename(os.path.normpath(target)) if inside else None, ctime)
    return links


def installed_releases(releases_dir, files=(), trees=()):
    """{release: {"mtime", "newest_change"}} of the release directories; ``files`` and ``trees`` (as
    newest_change takes them) are relative to each release's directory."""
    try:
        names = sorted(os.listdir(releases_dir))
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise HostError(f"cannot read {releases_dir}: {error.strerror}") from None
    releases = {}
    for name in names:
        root = os.path.join(releases_dir, name)
        if name.startswith(".") or not os.path.isdir(root) or os.path.islink(root):
            continue
        releases[name] = {
            "mtime": os.lstat(root).st_mtime,
            "newest_change": newest_change([os.path.join(root, path) for path in files],
                                           [dict(tree, path=os.path.join(root, tree["path"])) for tree in trees]),
        }
    return releases


def write_link(links_dir, port, releases_dir, release):
    """Point instance ``port``'s link at ``release``, in one rename."""
    path = os.path.join(links_dir, str(port))
    temporary = os.path.join(links_dir, f".wtstack-{port}.link")
    try:
        os.makedirs(links_dir, mode=0o755, exist_ok=True)
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(os.path.join(releases_dir, release), temporary)
        os.replace(temporary, path)
    except OSError as error:
        raise HostError(f"cannot link {path} to release {release}: {error.strerror}") from None


def remove_release(releases_dir, release):
    try:
        shutil.rmtree(os.path.join(releases_dir, release))
    except FileNotFoundError:
        pass
    except OSError as error:
        raise HostError(f"cannot remove release {release} from {releases_dir}: {error.strerror}") from None


def file_state(path):
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return FileState()
    if not stat.S_ISREG(info.st_mode):
        return FileState(content=b"\0not a regular file", mode=stat.S_IMODE(info.st_mode), ctime=info.st_ctime)
    with open(path, "rb") as handle:
        content = handle.read()
    return FileState(content, stat.S_IMODE(info.st_mode), user_name(info.st_uid), group_name(info.st_gid),
                     info.st_ctime)


def newest_change(files, trees):
    """The latest ctime among `files` and the entries of `trees` ({path, depth, name}: like
    find PATH -maxdepth DEPTH -name NAME, without following symbolic links); None if none exists."""
    newest = None

    def see(path):
        nonlocal newest
        try:
            ctime = os.lstat(path).st_ctime
        except OSError:
            return
        newest = ctime if newest is None else max(newest, ctime)

    for path in files:
        see(path)
    for tree in trees:
        root, depth, pattern = tree["path"], int(tree["depth"]), tree["name"]
        if fnmatch.fnmatchcase(os.path.basename(root.rstrip("/")) or "/", pattern):
            see(root)
        base = root.rstrip("/").count("/")
        for directory, directories, names in os.walk(root):
            level = directory.rstrip("/").count("/") - base + 1
            if level > depth:
                directories[:] = []
                continue
            for name in directories + names:
                if fnmatch.fnmatchcase(name, pattern):
                    see(os.path.join(directory, name))
            if level >= depth:
                directories[:] = []
    return newest


def wait_listening(address, port, timeout, interval=0.1, clock=time.monotonic, sleep=time.sleep):
    """True once something accepts TCP connections on address:port, False after `timeout` seconds."""
    deadline = clock() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=min(1.0, max(timeout, 0.1))).close()
            return True
        except OSError:
            if clock() >= deadline:
                return False
            sleep(interval)

# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what a role is about to manage on a host - paths, Debian packages, accounts, a virtualenv's
requirement, python3's version - in one go, so the role runs a module only where something differs.

Plain Python with no Ansible import (the host_state module is a thin wrapper). Every function
reads only; a command runner `run(argv) -> (rc, stdout, stderr)` is passed in where one is needed.
"""

from __future__ import annotations

import email.parser
import glob
import grp
import hashlib
import os
import pwd
import re
import stat
import sys

try:  # the pip module needs packaging too; where it is missing, a requirement counts as unknown
    from packaging.markers import default_environment
    from packaging.requirements import InvalidRequirement, Requirement
except ImportError:  # pragma: no cover - exercised only on hosts without python3-packaging
    Requirement = None

_TYPES = ((stat.S_ISREG, "file"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "link"))
_CANONICAL = re.compile(r"[-_.]+")


def _type(mode):
    return next((name for test, name in _TYPES if test(mode)), "other")


def user_name(uid):
    """The name of a uid, or the number where it has none (as ls shows it)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def sha1(path):
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def path_state(path):
    """A path as the file, copy and template modules see it (without following a link at the path
    itself: they replace a link rather than write through it), plus what it resolves to."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False}
    state = {"exists": True, "type": _type(info.st_mode), "mode": f"{stat.S_IMODE(info.st_mode):04o}",
             "owner": user_name(info.st_uid), "group": group_name(info.st_gid)}
    if state["type"] == "file":
        state["checksum"] = sha1(path)
    try:
        target = os.stat(path)
        state["target_type"] = _type(target.st_mode)
    except OSError:
        state["target_type"] = None
    state["executable"] = state["target_type"] == "file" and os.access(path, os.X_OK)
    return state


def parse_dpkg_status(text):
    """`dpkg-query --show --showformat='${Package} ${db:Status-Status}\\n' ...`: {package: status}."""
    statuses = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2:
            statuses[words[0]] = words[-1]
    return statuses


def package_states(run, names):
    """{package: True if dpkg has it installed}, from one dpkg-query (a name dpkg does not know is False)."""
    if not names:
        return {}
    dummy, out, dummy = run(["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Status}\\n", *names])
    statuses = parse_dpkg_status(out)
    # dpkg-query prints an architecture-qualified name (libfoo:amd64) for Multi-Arch: same packages.
    installed = {name.split(":")[0] for name, status in statuses.items() if status == "installed"}
    return {name: name.split(":")[0] in installed for name in names}


def user_state(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return {"exists": False}
    return {"exists": True, "uid": entry.pw_uid, "group": group_name(entry.pw_gid), "home": entry.pw_dir,
            "shell": entry.pw_shell}


def group_state(name):
    try:
        entry = grp.getgrnam(name)
    except KeyError:
        return {"exists": False}
    return {"exists": True, "gid": entry.gr_gid}


def canonical_name(name):
    """PEP 503 normalisation, as the pip module compares names."""
    return _CANONICAL.sub("-", name).lower()


def installed_distributions(venv):
    """{canonical name: (version, [Requires-Dist])} of every distribution in the virtualenv."""
    parser = email.parser.HeaderParser()
    found = {}
    pattern = os.path.join(glob.escape(venv), "lib", "python*", "site-packages", "*.dist-info", "METADATA")
    for metadata in sorted(glob.glob(pattern)):
        try:
            with open(metadata, encoding="utf-8", errors="replace") as handle:
                headers = parser.parse(handle)
        except OSError:
            continue
        if headers.get("Name") and headers.get("Version"):
            found[canonical_name(headers["Name"])] = (headers["Version"], headers.get_all("Requires-Dist") or [])
    return found


def requirement_state(venv, requirement):
    """Whether `pip install REQUIREMENT` in the virtualenv `venv` would change nothing: the virtualenv
    exists as the pip module checks it (bin/activate), and the requirement and, recursively, what it
    requires are installed in versions it accepts. {satisfied: bool, reason: str}; anything this
    cannot judge (a URL, extras, no `packaging` on the host) counts as not satisfied."""
    if not os.path.exists(os.path.join(venv, "bin", "activate")):
        return {"satisfied": False, "reason": f"there is no virtualenv at {venv}"}
    if Requirement is None:
        return {"satisfied": False, "reason": "python3-packaging is not installed, so it cannot be checked"}
    installed = installed_distributions(venv)
    environment = default_environment()
    environment["extra"] = ""
    pending, seen = [requirement], set()
    while pending:
        text = pending.pop()
        try:
            wanted = Requirement(text)
        except InvalidRequirement:
            return {"satisfied": False, "reason": f"{text!r} is not a requirement this can check"}
        if wanted.marker is not None and not wanted.marker.evaluate(environment):
            continue
        if wanted.url or wanted.extras:
            return {"satisfied": False, "reason": f"{text!r} has a URL or extras, which only pip can check"}
        name = canonical_name(wanted.name)
        if name in seen:
            continue
        seen.add(name)
        if name not in installed:
            return {"satisfied": False, "reason": f"{wanted.name} is not installed"}
        version, requires = installed[name]
        if not wanted.specifier.contains(version, prereleases=True):
            return {"satisfied": False, "reason": f"{wanted.name} {version} does not satisfy {text!r}"}
        pending.extend(requires)
    return {"satisfied": True, "reason": f"{requirement} and what it requires are installed"}


def python_version(run, command, running_executable, running_version):
    """'major.minor' of `command` (found on PATH), without starting it when it is the running interpreter."""
    for directory in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
        candidate = os.path.join(directory, command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            break
    else:
        return None
    try:
        if os.path.samefile(candidate, running_executable):
            return "%d.%d" % running_version[:2]
    except OSError:
        pass
    rc, out, dummy = run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    return out.strip() if rc == 0 else None


OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
_OS_RELEASE_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


def parse_os_release(text):
    """os-release(5) KEY=value lines, values unquoted ("..." or '...' with \\ escapes in double quotes)."""
    fields = {}
    for line in text.splitlines():
        match = _OS_RELEASE_LINE.match(line.strip())
        if not match:
            continue
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
            if match.group(2)[0] == '"':
                value = re.sub(r"\\(.)", r"\1", value)
        fields[key] = value
    return fields


def os_release(paths=OS_RELEASE_PATHS):
    """What the host says it runs: id (debian), version_id (12), pretty_name; empty strings if it says nothing."""
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                fields = parse_os_release(handle.read())
            break
        except FileNotFoundError:
            continue
    else:
        fields = {}
    return {"id": fields.get("ID", ""), "version_id": fields.get("VERSION_ID", ""),
            "pretty_name": fields.get("PRETTY_NAME", "") or fields.get("NAME", "") or "an unnamed system"}


def read_host(params, run):
    """Everything the host_state module's options ask for, read in one go (``run``: a command runner)."""
    return dict(
        paths={path: path_state(path) for path in params["paths"]},
        packages=package_states(run, params["packages"]),
        users={name: user_state(name) for name in params["users"]},
        groups={name: group_state(name) for name in params["groups"]},
        requirements=[dict(entry, **requirement_state(entry["venv"], entry["requirement"]))
                      for entry in params["requirements"]],
        python_version=python_version(run, params["python"], sys.executable, sys.version_info)
        if params["python"] else None,
        os_release=os_release(),
    )

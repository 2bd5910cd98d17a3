# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What differs between a host, as one host_state module run read it, and what a role would make it.

Plain Python with no Ansible import; the host_differences filter is its adapter. A role reads what it
manages in one host_state run and then runs a task only for what differs, so an idempotent run costs
one module run instead of one per package, account, directory and file. Each comparison is the one the
module that would change it makes: a file differs as the template and copy modules see it (type, octal
mode, owner, group, SHA-1 of the content), a directory as the file module does, a package as dpkg
reports it, an account as the user and group modules would change it.
"""

from __future__ import annotations

import hashlib

# What the roles' directories are: root's, readable by all.
DIRECTORY = {"mode": "0755", "owner": "root", "group": "root"}


class DifferencesError(Exception):
    """The read and the wanted state do not fit together (a caller's mistake, not the host's)."""


def sha1_text(text):
    """The SHA-1 of text as Ansible's hash('sha1') filter takes it (UTF-8), and host_state reports files."""
    return hashlib.sha1(text.encode("utf-8", errors="surrogateescape")).hexdigest()


def missing_packages(packages):
    """The packages (name -> installed, as host_state returns them) that are not installed, in order."""
    return [name for name, installed in packages.items() if not installed]


def account_differs(users, groups, user, group, home, shell):
    """Whether the group or the user (in its group, with its home and shell) is not as wanted."""
    state = users.get(user, {})
    return not (groups.get(group, {}).get("exists") and state.get("exists") and state.get("group") == group
                and state.get("home") == home and state.get("shell") == shell)


def path_differs(state, kind, mode, owner, group):
    return (state.get("type") != kind or state.get("mode") != mode or state.get("owner") != owner
            or state.get("group") != group)


def file_differs(state, file, content):
    """Whether a file (a dict with mode, owner, group) would be written: type, mode, owner, group or content."""
    return (path_differs(state, "file", file["mode"], file["owner"], file["group"])
            or state.get("checksum") != sha1_text(content))


def _state(paths, path):
    if path not in paths:
        raise DifferencesError(f"{path} was not read")
    return paths[path]


def host_differences(read, account=None, directories=(), files=(), contents=(), directory=None):
    """What a role has to change on a host, from host_state's result ``read``.

    account: {user, group, home, shell}; directories: paths that should be directories as
    ``directory`` says (default DIRECTORY); files: dicts with dest, mode, owner and group, whose
    content should be the matching item of ``contents``. Returns missing_packages (names),
    account_differs, directories_to_create (in the order given: parents first), files_to_write (the
    dicts of ``files`` that differ) and requirements_met (every requirement read is satisfied).
    """
    if len(files) != len(contents):
        raise DifferencesError(f"{len(files)} files but {len(contents)} contents")
    paths, directory = read.get("paths", {}), {**DIRECTORY, **(directory or {})}
    return {
        "missing_packages": missing_packages(read.get("packages", {})),
        "account_differs": account_differs(read.get("users", {}), read.get("groups", {}), **account)
        if account else False,
        "directories_to_create": [path for path in directories if path_differs(
            _state(paths, path), "directory", directory["mode"], directory["owner"], directory["group"])],
        "files_to_write": [file for file, content in zip(files, contents)
                           if file_differs(_state(paths, file["dest"]), file, content)],
        "requirements_met": all(requirement.get("satisfied") for requirement in read.get("requirements", [])),
    }

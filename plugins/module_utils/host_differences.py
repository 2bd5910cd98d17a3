# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What differs between a host, as one host_state read found it, and what a role would make it.

Plain Python with no Ansible import; the host_state module runs it on the host, on what it has just
read, when the role says what it wants. The role then runs a task only for what differs, so an
idempotent run costs one module run instead of one per package, account, directory and file. Each
comparison is the one the module that would change the thing makes: a file differs as the template
and copy modules see it (type, octal mode, owner, group, SHA-1 of the content), a directory as the
file module does, a package as dpkg reports it, an account as the user and group modules would
change it.
"""

from __future__ import annotations

# What the roles' directories are: root's, readable by all.
DIRECTORY = {"mode": "0755", "owner": "root", "group": "root"}
FILE_KEYS = ("dest", "mode", "owner", "group")


class DifferencesError(Exception):
    """The wanted state is not one this can compare (a caller's mistake, not the host's)."""


def wanted_files(files, checksums):
    """The files a role wants ({dest, mode, owner, group, ...}; other keys are the role's) each with
    the SHA-1 of its content, given in the same order."""
    if len(files) != len(checksums):
        raise DifferencesError(f"{len(files)} files but {len(checksums)} checksums")
    for index, file in enumerate(files):
        missing = [key for key in FILE_KEYS if not isinstance(file.get(key), str)]
        if missing:
            raise DifferencesError(f"files[{index}]: {', '.join(missing)} missing (a string each)")
    return [dict(file, checksum=checksum) for file, checksum in zip(files, checksums)]


def missing_packages(packages):
    """The packages (name -> installed, as host_state reads them) that are not installed, in order."""
    return [name for name, installed in packages.items() if not installed]


def account_differs(users, groups, user, group, home, shell):
    """Whether the group or the user (in its group, with its home and shell) is not as wanted."""
    state = users.get(user, {})
    return not (groups.get(group, {}).get("exists") and state.get("exists") and state.get("group") == group
                and state.get("home") == home and state.get("shell") == shell)


def path_differs(state, kind, mode, owner, group):
    return (state.get("type") != kind or state.get("mode") != mode or state.get("owner") != owner
            or state.get("group") != group)


def file_differs(state, file):
    """Whether a file would be written: its type, mode, owner, group or content (checksum) differ."""
    return (path_differs(state, "file", file["mode"], file["owner"], file["group"])
            or state.get("checksum") != file["checksum"])


def host_differences(read, account=None, directories=(), files=(), directory=None):
    """What a role has to change on a host, from host_state's read (``read``: its paths, packages,
    users, groups and requirements).

    account: {user, group, home, shell}; directories: paths that should be directories as
    ``directory`` says (default DIRECTORY); files: wanted_files(). Returns missing_packages,
    account_differs (false without ``account``), directories (to create, in the order given:
    parents first), files (the dest of each file to write, in order), requirements_met, and pending:
    whether any of these asks for a change.
    """
    paths, directory = read["paths"], {**DIRECTORY, **(directory or {})}
    differences = {
        "missing_packages": missing_packages(read.get("packages", {})),
        "account_differs": account_differs(read.get("users", {}), read.get("groups", {}), **account)
        if account else False,
        "directories": [path for path in directories if path_differs(
            paths[path], "directory", directory["mode"], directory["owner"], directory["group"])],
        "files": [file["dest"] for file in files if file_differs(paths[file["dest"]], file)],
        "requirements_met": all(requirement.get("satisfied") for requirement in read.get("requirements", [])),
    }
    differences["pending"] = bool(differences["missing_packages"] or differences["account_differs"]
                                  or differences["directories"] or differences["files"]
                                  or not differences["requirements_met"])
    return differences

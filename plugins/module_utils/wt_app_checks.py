# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An app host's wt_app role variables checked beyond their types, and the host itself checked
against what the role supports.

Plain Python with no Ansible import; the role_checks action is its adapter. settings_problems() runs
for every app host on the controller before any host is contacted (roles/wt_app/tasks/validate.yml);
host_problems() on what the role's first read of the host (the host_state module) returned, before
anything on it changes (roles/wt_app/tasks/main.yml).
Messages are `host: variable: problem; fix`, or `host: problem; fix` for the host itself.
"""

from __future__ import annotations

import json
import os
import re

# Every variable settings_problems() reads (the role_checks action passes exactly these).
SETTINGS = ("wt_app_command", "wt_app_artifact", "wt_app_version", "wt_app_root", "wt_app_install_dir",
            "wt_app_demo_venv", "wt_app_demo_dir")
# A release's directory name.
VERSION = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._+-]{0,63})?$")


class SettingsError(Exception):
    """The settings given are not the ones this module checks (a caller's mistake, not the user's)."""


def below_root(path, root):
    """Whether ``path`` is ``root`` or below it, as the role's wt_app_root_pattern matches paths."""
    return re.match(re.escape(str(root)) + r"(?=/|$)", str(path)) is not None


def settings_problems(host, settings, artifact_found):
    """Every problem of this app host's settings, each `host: variable: problem; fix`.

    settings: every name of SETTINGS to its value. artifact_found: whether wt_app_artifact names a
    file on the controller, where the role's copy and unarchive tasks look for it.
    """
    missing = [name for name in SETTINGS if name not in settings]
    if missing:
        raise SettingsError(f"settings lacks {', '.join(missing)}")
    command, artifact = settings["wt_app_command"] or "", settings["wt_app_artifact"] or ""
    root, version = settings["wt_app_root"], str(settings["wt_app_version"])
    problems = []
    if command and not os.path.isabs(command):
        problems.append(("wt_app_command", f"{json.dumps(command)} is not an absolute path; give the full path of "
                                           "your Wt program on the host, such as /opt/wtstack/app/bin/myapp.wt."))
    if artifact and not command:
        problems.append(("wt_app_command", f"is empty, so the bundled demo would run and wt_app_artifact "
                                           f"{json.dumps(artifact)} would never be started; set wt_app_command to "
                                           "the program it installs, or remove wt_app_artifact."))
    if not VERSION.search(version):
        problems.append(("wt_app_version", f"{json.dumps(version)} cannot name a release directory; use up to 64 "
                                           "letters, digits, '.', '_', '-' or '+', starting with a letter or digit "
                                           "(such as 1.4.2)."))
    below = [("wt_app_install_dir", "application", "app")]
    if not command:  # the bundled demo
        below += [("wt_app_demo_venv", "demo", "venv"), ("wt_app_demo_dir", "demo", "demo")]
    problems += [(name, f"{json.dumps(settings[name])} is not below wt_app_root ({root}), where each release keeps "
                        f"its own copy of the {what}; put it there (the default is {root}/{default}).")
                 for name, what, default in below if not below_root(settings[name], root)]
    if artifact and not artifact_found:
        problems.append(("wt_app_artifact", f"{json.dumps(artifact)} is not a file on the controller; give the path "
                                            "of your program or archive (absolute, or relative to the playbook)."))
    return [f"{host}: {variable}: {message}" for variable, message in problems]


def version_tuple(text):
    """'3.12' -> (3, 12): the numbers of a version, compared in order."""
    return tuple(int(number) for number in re.findall(r"[0-9]+", str(text)))


def host_problems(host, read, supported_debian, demo, demo_min_python):
    """What keeps the role from running on this host, from the host_state module's result ``read``:
    a system other than the supported Debian releases; for the bundled demo (``demo``), a python3
    older than ``demo_min_python``. Each message names the host and says nothing was changed."""
    system, python = read["os_release"], read.get("python_version")
    problems = []
    if system["id"] != "debian" or system["version_id"] not in supported_debian:
        problems.append(f"{host}: this host runs {system['pretty_name']}, which the wt_app role does not support; it "
                        f"supports Debian {' and '.join(map(str, supported_debian))}. Nothing was changed.")
    if demo and (python is None or version_tuple(python) < version_tuple(demo_min_python)):
        problems.append(f"{host}: the bundled demo app needs python3 >= {demo_min_python} (witty-for-python), but "
                        f"this host has python3 {python or '(none)'} (Debian 12 ships 3.11); set wt_app_command (and "
                        "wt_app_artifact, wt_app_docroot, wt_app_approot) to deploy your own Wt application, or use "
                        "Debian 13.")
    return problems

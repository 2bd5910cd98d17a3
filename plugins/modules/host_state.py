#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_state
short_description: Internal to the wt_app role - read many paths, packages and accounts in one run
description:
  - B(Internal) to wtstack.fleet, not public API - a helper of the wt_app role.
  - Reads, in one module run, what a role is about to manage on a host, so that the role runs
    M(ansible.builtin.file), M(ansible.builtin.template), M(ansible.builtin.apt), M(ansible.builtin.user),
    M(ansible.builtin.pip) ... only for what differs. Each module run costs an SSH round trip and a
    Python start on the host (about a quarter of a second of its CPU); an idempotent run of a role
    that manages twenty things then costs one instead of twenty.
  - Also returns what the host's os-release file says it runs.
  - Changes nothing; works the same in check mode.
version_added: 1.0.0
author:
  - wtstack.fleet contributors (@wtstack)
options:
  paths:
    description:
      - Paths to read without following a link at the path itself (as the file and template modules
        see them) - existence, type, octal mode, owner, group, SHA-1 of a regular file, and whether what
        it resolves to is an executable regular file.
    type: list
    elements: path
    default: []
  packages:
    description: Debian packages; one C(dpkg-query) tells which are installed.
    type: list
    elements: str
    default: []
  users:
    description: Accounts to read (existence, primary group, home, shell).
    type: list
    elements: str
    default: []
  groups:
    description: Groups to read (existence).
    type: list
    elements: str
    default: []
  requirements:
    description:
      - Whether C(pip install) of a requirement in a virtualenv would change nothing - the virtualenv
        exists and the requirement and what it requires are installed in versions it accepts. Needs
        python3-packaging on the host; without it, or for a URL or extras, the answer is no.
    type: list
    elements: dict
    default: []
    suboptions:
      venv:
        description: The virtualenv's directory.
        type: path
        required: true
      requirement:
        description: A pip requirement, such as C(witty-for-python==0.1.2).
        type: str
        required: true
  python:
    description: A Python command on PATH whose C(major.minor) version to report, such as C(python3).
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Read only.
  diff_mode:
    support: none
  platform:
    platforms: debian
notes:
  - Internal to wtstack.fleet - its options and results may change in any release, without deprecation.
    Use the role rather than this module in your own plays.
seealso:
  - module: ansible.builtin.stat
  - module: ansible.builtin.package_facts
"""

EXAMPLES = r"""
- name: Read what the role manages
  wtstack.fleet.host_state:
    paths: [/etc/wtstack/wt, /etc/wtstack/wt/app.env]
    packages: [python3-venv]
    users: [wt]
    groups: [wt]
    requirements:
      - {venv: /opt/wtstack/venv, requirement: witty-for-python==0.1.2}
    python: python3
  register: wt_host

- name: Write app.env only if it differs
  ansible.builtin.template:
    src: app.env.j2
    dest: /etc/wtstack/wt/app.env
    mode: "0600"
  when: >-
    wt_host.paths['/etc/wtstack/wt/app.env'].checksum | default('')
    != lookup('ansible.builtin.template', 'app.env.j2') | hash('sha1')
    or wt_host.paths['/etc/wtstack/wt/app.env'].mode | default('') != '0600'
"""

RETURN = r"""
paths:
  description: Each path of O(paths) - C(exists), and when it does C(type) (file, directory, link, other),
    C(mode) (C('0644')), C(owner), C(group), C(checksum) (SHA-1, regular files), C(target_type), C(executable).
  returned: always
  type: dict
  sample: {"/etc/wtstack/wt": {"exists": true, "type": "directory", "mode": "0755", "owner": "root", "group": "root"}}
packages:
  description: Each package of O(packages) - true if installed.
  returned: always
  type: dict
  sample: {"python3-venv": true}
users:
  description: Each user of O(users) - C(exists), C(uid), C(group), C(home), C(shell).
  returned: always
  type: dict
groups:
  description: Each group of O(groups) - C(exists), C(gid).
  returned: always
  type: dict
requirements:
  description: Each entry of O(requirements) with C(satisfied) and the C(reason).
  returned: always
  type: list
  elements: dict
python_version:
  description: C(major.minor) of O(python), null if it is not on PATH or not given.
  returned: always
  type: str
  sample: "3.13"
os_release:
  description:
    - What the host's C(/etc/os-release) (else C(/usr/lib/os-release)) says it runs - C(id) (C(debian)),
      C(version_id) (C(13)) and C(pretty_name); an empty C(id) and C(version_id) when it says nothing.
    - Read in the same run, so a role can refuse an unsupported system before its first change without
      gathering facts.
  returned: always
  type: dict
  sample: {"id": "debian", "version_id": "13", "pretty_name": "Debian GNU/Linux 13 (trixie)"}
"""

import sys

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wtstack.fleet.plugins.module_utils.host_state import (
    group_state,
    os_release,
    package_states,
    path_state,
    python_version,
    requirement_state,
    user_state,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", default=[]),
            packages=dict(type="list", elements="str", default=[]),
            users=dict(type="list", elements="str", default=[]),
            groups=dict(type="list", elements="str", default=[]),
            requirements=dict(type="list", elements="dict", default=[], options=dict(
                venv=dict(type="path", required=True),
                requirement=dict(type="str", required=True),
            )),
            python=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = dict(
            changed=False,
            paths={path: path_state(path) for path in params["paths"]},
            packages=package_states(module.run_command, params["packages"]),
            users={name: user_state(name) for name in params["users"]},
            groups={name: group_state(name) for name in params["groups"]},
            requirements=[dict(entry, **requirement_state(entry["venv"], entry["requirement"]))
                          for entry in params["requirements"]],
            python_version=(python_version(module.run_command, params["python"], sys.executable, sys.version_info)
                            if params["python"] else None),
            os_release=os_release(),
        )
    except OSError as error:
        module.fail_json(msg=f"cannot read {error.filename}: {error.strerror}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

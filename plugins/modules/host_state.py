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
  - Given what a role wants (O(account), O(directories), O(files) with O(checksums)), also returns what
    differs, compared as the modules that would change it compare, so that the role runs those modules
    only where the host differs.
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
  account:
    description:
      - The account a role wants - its user in its primary group, with a home and a shell. The user and the
        group are read, and RV(differences.account_differs) says whether either is missing or different.
    type: dict
    version_added: 1.0.0
    suboptions:
      user:
        description: The user.
        type: str
        required: true
      group:
        description: Its primary group.
        type: str
        required: true
      home:
        description: Its home directory.
        type: str
        required: true
      shell:
        description: Its shell.
        type: str
        required: true
  directories:
    description:
      - Directories a role wants, parents first, each with O(directory_mode), O(directory_owner) and
        O(directory_group); read like O(paths).
    type: list
    elements: path
    default: []
    version_added: 1.0.0
  directory_mode:
    description: The octal mode of O(directories).
    type: str
    default: "0755"
    version_added: 1.0.0
  directory_owner:
    description: The owner of O(directories).
    type: str
    default: root
    version_added: 1.0.0
  directory_group:
    description: The group of O(directories).
    type: str
    default: root
    version_added: 1.0.0
  files:
    description:
      - Files a role wants, each a mapping with C(dest), C(mode) (octal, such as C("0644")), C(owner) and
        C(group), in the shape of a role's managed-file list (other keys are ignored); read like O(paths).
    type: list
    elements: dict
    default: []
    version_added: 1.0.0
  checksums:
    description:
      - The SHA-1 of what each file of O(files) should hold, in the same order (such as a rendered template
        through the C(hash('sha1')) filter).
    type: list
    elements: str
    default: []
    version_added: 1.0.0
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

- name: Read what the role manages and what differs from what it writes
  wtstack.fleet.host_state:
    account: {user: wt, group: wt, home: /nonexistent, shell: /usr/sbin/nologin}
    directories: [/etc/wtstack, /etc/wtstack/wt]
    files:
      - {src: app.env.j2, dest: /etc/wtstack/wt/app.env, mode: "0600", owner: root, group: root}
    checksums: ["{{ lookup('ansible.builtin.template', 'app.env.j2') | hash('sha1') }}"]
  register: wt_host

- name: Write app.env only if it differs
  ansible.builtin.template:
    src: app.env.j2
    dest: /etc/wtstack/wt/app.env
    mode: "0600"
  when: "'/etc/wtstack/wt/app.env' in wt_host.differences.files"
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
differences:
  description: What differs from what O(account), O(directories), O(files) and O(packages) say the role wants.
  returned: always
  type: dict
  version_added: 1.0.0
  contains:
    missing_packages:
      description: The packages of O(packages) that are not installed.
      type: list
      elements: str
    account_differs:
      description: Whether the group or user of O(account) is missing or different; false without O(account).
      type: bool
    directories:
      description: The directories of O(directories) that are missing or not as wanted, in order.
      type: list
      elements: str
    files:
      description: The C(dest) of each file of O(files) whose type, mode, owner, group or content differs, in order.
      type: list
      elements: str
    requirements_met:
      description: Whether every requirement of O(requirements) is satisfied.
      type: bool
    pending:
      description:
        - Whether any of the above asks for a change (a package, the account, a directory, a file, a requirement).
      type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wtstack.fleet.plugins.module_utils.host_differences import (
    DifferencesError,
    host_differences,
    wanted_files,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.host_state import read_host


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
            account=dict(type="dict", options=dict(
                user=dict(type="str", required=True),
                group=dict(type="str", required=True),
                home=dict(type="str", required=True),
                shell=dict(type="str", required=True),
            )),
            directories=dict(type="list", elements="path", default=[]),
            directory_mode=dict(type="str", default="0755"),
            directory_owner=dict(type="str", default="root"),
            directory_group=dict(type="str", default="root"),
            files=dict(type="list", elements="dict", default=[]),
            checksums=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        files = wanted_files(params["files"], params["checksums"])
        account = params["account"]
        read = read_host(dict(params, paths=params["paths"] + params["directories"] + [file["dest"] for file in files],
                              users=params["users"] + ([account["user"]] if account else []),
                              groups=params["groups"] + ([account["group"]] if account else [])),
                         module.run_command)
        directory = {"mode": params["directory_mode"], "owner": params["directory_owner"],
                     "group": params["directory_group"]}
        read["differences"] = host_differences(read, account, params["directories"], files, directory)
    except DifferencesError as error:
        module.fail_json(msg=str(error))
    except OSError as error:
        module.fail_json(msg=f"cannot read {error.filename}: {error.strerror}")
    module.exit_json(changed=False, **read)


if __name__ == "__main__":
    main()

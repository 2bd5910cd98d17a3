# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host_differences filter: a thin adapter around module_utils/host_differences.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: host_differences
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: What a role has to change on a host, from one M(wtstack.fleet.host_state) read
description:
  - Compares what M(wtstack.fleet.host_state) read on a host with what a role would make it, as the
    modules that would change it compare - packages dpkg does not have installed; an account whose group
    or user is missing or has another primary group, home or shell; directories that are not directories
    with the given mode, owner and group; files whose type, mode, owner, group or content (by SHA-1)
    differ; virtualenv requirements not satisfied.
  - A role then runs a task only for what differs, so an idempotent run costs one module run on the host.
options:
  _input:
    description: The registered result of M(wtstack.fleet.host_state), which read every path given here.
    type: dict
    required: true
  account:
    description: The account of the role - C(user), C(group), C(home) and C(shell).
    type: dict
  directories:
    description: Paths that should be directories, parents first.
    type: list
    elements: path
    default: []
  directory:
    description: The C(mode), C(owner) and C(group) of those directories.
    type: dict
    default: {mode: "0755", owner: root, group: root}
  files:
    description:
      - Files, each a mapping with C(dest), C(mode) (such as C("0644")), C(owner) and C(group); other keys are kept.
    type: list
    elements: dict
    default: []
  contents:
    description: What each file of O(files) should hold, in the same order (a rendered template, a file's text).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Read what the role manages
  wtstack.fleet.host_state:
    paths: [/opt/app, /etc/app/app.env]
    packages: [python3-venv]
  register: read

- name: Decide what differs
  ansible.builtin.set_fact:
    differences: >-
      {{ read | wtstack.fleet.host_differences(
           directories=['/opt/app'],
           files=[{'src': 'app.env.j2', 'dest': '/etc/app/app.env', 'mode': '0600', 'owner': 'root', 'group': 'root'}],
           contents=query('ansible.builtin.template', 'app.env.j2')) }}

- name: Write only the files that differ
  ansible.builtin.template:
    src: "{{ item.src }}"
    dest: "{{ item.dest }}"
    mode: "{{ item.mode }}"
  loop: "{{ differences.files_to_write }}"
"""

RETURN = r"""
_value:
  description: What differs.
  type: dict
  contains:
    missing_packages:
      description: The packages read that are not installed.
      type: list
      elements: str
    account_differs:
      description: Whether the account's group or user is missing or not as O(account) says; false without O(account).
      type: bool
    directories_to_create:
      description: The paths of O(directories) that are not as O(directory) says, in the order given.
      type: list
      elements: str
    files_to_write:
      description: The mappings of O(files) whose file differs, as given.
      type: list
      elements: dict
    requirements_met:
      description: Whether every virtualenv requirement read is satisfied.
      type: bool
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.module_utils.host_differences import DifferencesError
from ansible_collections.wtstack.fleet.plugins.module_utils.host_differences import (
    host_differences as _host_differences,
)


def host_differences(read, account=None, directories=(), files=(), contents=(), directory=None):
    if not isinstance(read, Mapping):
        raise AnsibleFilterError("wtstack.fleet.host_differences expects a host_state result as its input")
    try:
        return _host_differences(read, account=account, directories=list(directories), files=list(files),
                                 contents=[str(content) for content in contents], directory=directory)
    except (DifferencesError, KeyError, TypeError) as error:
        raise AnsibleFilterError(f"wtstack.fleet.host_differences: {error}") from error


class FilterModule:
    def filters(self):
        return {"host_differences": host_differences}

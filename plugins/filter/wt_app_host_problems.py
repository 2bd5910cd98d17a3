# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wt_app_host_problems filter: a thin adapter around module_utils/wt_app_checks.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: wt_app_host_problems
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: What keeps the wt_app role from running on a host, from its first read of the host
description:
  - From what M(wtstack.fleet.host_state) read on an app host, returns one message per reason the
    C(wtstack.fleet.wt_app) role cannot run there - a system other than the supported Debian releases,
    and, for the bundled demo app, a python3 older than it needs. Each message names the host and says
    that nothing was changed.
options:
  _input:
    description: The registered result of M(wtstack.fleet.host_state) (its C(os_release) and C(python_version)).
    type: dict
    required: true
  host:
    description: The app host's inventory name.
    type: str
    required: true
  supported_debian:
    description: The Debian releases (C(VERSION_ID)s) the role supports.
    type: list
    elements: str
    required: true
  demo:
    description: Whether the host runs the bundled demo app.
    type: bool
    required: true
  demo_min_python:
    description: The oldest python3 the demo runs on, C(major.minor).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check that the host runs a supported Debian and, for the demo app, a recent enough python3
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
  vars:
    problems: "{{ wt_app_host | wtstack.fleet.wt_app_host_problems(inventory_hostname, ['12', '13'], true, '3.12') }}"
"""

RETURN = r"""
_value:
  description: One message per problem; empty when the role can run on the host.
  type: list
  elements: str
  sample:
    - >-
      app1: this host runs Ubuntu 24.04.1 LTS, which the wt_app role does not support; it supports Debian 12 and 13.
      Nothing was changed.
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.wtstack.fleet.plugins.module_utils.wt_app_checks import host_problems


def wt_app_host_problems(read, host, supported_debian, demo, demo_min_python):
    if not isinstance(read, Mapping):
        raise AnsibleFilterError("wtstack.fleet.wt_app_host_problems expects a host_state result as its input")
    try:
        releases = [str(release) for release in supported_debian]
        return host_problems(str(host), read, releases, boolean(demo, strict=False), str(demo_min_python))
    except (KeyError, TypeError) as error:
        raise AnsibleFilterError(f"wtstack.fleet.wt_app_host_problems: {error!r} in {read!r}") from error


class FilterModule:
    def filters(self):
        return {"wt_app_host_problems": wt_app_host_problems}

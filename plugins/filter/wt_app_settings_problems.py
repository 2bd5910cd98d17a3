# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wt_app_settings_problems filter: a thin adapter around module_utils/wt_app_checks.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: wt_app_settings_problems
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: What is wrong with an app host's wt_app role variables beyond their types
description:
  - Checks what the C(wtstack.fleet.wt_app) role's argument spec cannot and returns one message per
    problem, C(host: variable: problem; fix) - C(wt_app_command) an absolute path, and set whenever
    C(wt_app_artifact) is; C(wt_app_version) usable as a directory name; C(wt_app_install_dir) (and, for
    the bundled demo, C(wt_app_demo_venv) and C(wt_app_demo_dir)) below C(wt_app_root), where each release
    keeps its own copy; C(wt_app_artifact) a file on the controller.
  - The role's C(validate) entry point calls it for every app host, on the controller, before any host is
    contacted.
options:
  _input:
    description:
      - The host's settings - every variable the checks read, by name (the role's C(wt_app_validated_settings)), with
        its value.
    type: dict
    required: true
  host:
    description: The app host's inventory name, which every message starts with.
    type: str
    required: true
  artifact_found:
    description:
      - Whether C(wt_app_artifact) names a file on the controller (the C(ansible.builtin.first_found) lookup finds it).
    type: bool
    required: true
"""

EXAMPLES = r"""
- name: Check the role variables beyond their types
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
  vars:
    problems: >-
      {{ dict(wt_app_validated_settings | zip(query('ansible.builtin.vars', *wt_app_validated_settings)))
         | wtstack.fleet.wt_app_settings_problems(inventory_hostname, artifact_found) }}
    artifact_found: >-
      {{ wt_app_artifact | length > 0
         and query('ansible.builtin.first_found', wt_app_artifact, skip=true) | length > 0 }}
"""

RETURN = r"""
_value:
  description: One message per problem, in a fixed order; empty when the settings are consistent.
  type: list
  elements: str
  sample:
    - >-
      app1: wt_app_command: "bin/app.wt" is not an absolute path; give the full path of your Wt program on the host,
      such as /opt/wtstack/app/bin/myapp.wt.
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.wtstack.fleet.plugins.module_utils.wt_app_checks import SettingsError, settings_problems


def wt_app_settings_problems(settings, host, artifact_found):
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError("wtstack.fleet.wt_app_settings_problems expects "
                                 "`settings | wtstack.fleet.wt_app_settings_problems(host, artifact_found)`")
    try:
        return settings_problems(str(host), settings, boolean(artifact_found, strict=False))
    except SettingsError as error:
        raise AnsibleFilterError(f"wtstack.fleet.wt_app_settings_problems: {error}") from error


class FilterModule:
    def filters(self):
        return {"wt_app_settings_problems": wt_app_settings_problems}

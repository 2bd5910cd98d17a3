# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The instance_settings_files filter: a thin adapter around module_utils/wt_instances.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: instance_settings_files
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: Each Wt instance's settings file, as M(wtstack.fleet.plan_files) renders files
description:
  - Given a host's instances (C(wtstack_topology.instances_by_host[inventory_hostname])), returns one
    M(wtstack.fleet.plan_files) file per instance - the given file (C(src), C(mode), C(owner), C(group))
    with C(dest) C(<settings_dir>/<port>.env), the path M(wtstack.fleet.wt_instances) writes, and the
    instance as the template's C(instance).
options:
  _input:
    description: The instances, each with its C(port).
    type: list
    elements: dict
    required: true
  file:
    description: What every settings file shares - its template C(src) and C(mode), C(owner), C(group).
    type: dict
    required: true
  settings_dir:
    description: The directory of the settings files.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Render every instance's settings into the plan directory
  wtstack.fleet.plan_files:
    root: "{{ plan_dir }}/{{ inventory_hostname }}"
    files: >-
      {{ wt_app_instances | wtstack.fleet.instance_settings_files(wt_app_instance_file, wt_app_instance_env_dir) }}
"""

RETURN = r"""
_value:
  description: One file per instance, in order.
  type: list
  elements: dict
  sample:
    - {src: instance.env.j2, mode: "0644", dest: /etc/wtstack/wt/instances/9090.env, vars: {instance: {port: 9090}}}
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.module_utils.wt_instances import settings_files


def instance_settings_files(instances, file, settings_dir):
    if not isinstance(file, Mapping) or isinstance(instances, (str, Mapping)):
        raise AnsibleFilterError("wtstack.fleet.instance_settings_files expects "
                                 "`instances | wtstack.fleet.instance_settings_files(file, settings_dir)`")
    try:
        return settings_files(list(instances), dict(file), str(settings_dir))
    except (KeyError, TypeError) as error:
        raise AnsibleFilterError(
            f"wtstack.fleet.instance_settings_files: not an instance with a port: {error!r}") from error


class FilterModule:
    def filters(self):
        return {"instance_settings_files": instance_settings_files}

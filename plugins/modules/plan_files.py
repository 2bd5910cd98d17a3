#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The work is done on the controller by the action plugin of the same name (plugins/action/plan_files.py).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: plan_files
short_description: Internal to the plan playbook - render a host's templates into a directory, in one task
description:
  - B(Internal) to wtstack.fleet, not public API - a helper of the roles' C(plan) entry points, which the
    playbook C(wtstack.fleet.plan) runs.
  - Renders every template of O(files) exactly as M(ansible.builtin.template) would render it for this
    host (the same variables, C(ansible_managed), search path and Jinja settings), and writes the result
    to O(root) on the controller, at O(root)/<absolute path on the host>. This is what
    C(playbooks/plan.yml) shows - what the roles would write, without contacting any host.
  - One task renders a host's whole file set, where one M(ansible.builtin.template) task per file costs
    a task, a worker process and a module run each (minutes for the 1,200 files of 1,000
    instances on 50 hosts).
  - A file is written only if its content or mode differs from what is there (atomically, so a reader never
    sees half a file); directories are created with mode C(0755). Files that are not in O(files) are
    left alone.
  - Runs on the controller only and never opens a connection to the host.
version_added: 1.0.0
author:
  - wtstack.fleet contributors (@wtstack)
options:
  root:
    description: Directory on the controller that stands for the host's C(/).
    type: path
    required: true
  files:
    description:
      - The files to render, in the shape of the roles' managed-file lists (C(haproxy_managed_files),
        C(wt_app_host_files)). Other keys (C(owner), C(group), C(validate), ...) are ignored; they apply
        on the host, not in a plan.
    type: list
    elements: dict
    required: true
    suboptions:
      src:
        description: The template, found like M(ansible.builtin.template)'s C(src) (the role's C(templates/) first).
        type: str
        required: true
      dest:
        description: Absolute path of the file on the host.
        type: str
        required: true
      mode:
        description: Octal mode of the written file (C(0644) or C('0644')); symbolic modes are not supported.
        type: raw
        default: "0644"
      vars:
        description: Variables for this file only, like the C(template_vars) of the template lookup.
        type: dict
        default: {}
  instance_files:
    description:
      - One more file per instance of a host - O(instance_files.src) rendered with the instance as C(instance), to
        C(<dir>/<port>.env), where M(wtstack.fleet.wt_instances) writes each instance's settings. Rendered after
        O(files).
    type: dict
    version_added: 1.0.0
    suboptions:
      instances:
        description: The instances (C(wtstack_topology.instances_by_host[inventory_hostname])), each with its C(port).
        type: list
        elements: dict
        required: true
      src:
        description: The template, found like O(files[].src).
        type: str
        required: true
      mode:
        description: Octal mode of the written files.
        type: raw
        default: "0644"
      dir:
        description: The directory of the settings files on the host.
        type: str
        required: true
  no_diff:
    description:
      - Files (by O(files[].dest)) whose content never appears in the diff, because it holds a secret.
        Their changes are still reported.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Renders and compares, writes nothing.
  diff_mode:
    support: full
    details: One diff per changed file (content, and mode when it changes), except those in O(no_diff).
  platform:
    platforms: posix
notes:
  - Internal to wtstack.fleet - its options and results may change in any release, without deprecation.
    Use the playbook rather than this module in your own plays.
  - The rendering follows the template action of the running ansible-core (2.17 to 2.19); the
    collection's rendering test compares this module's output with M(ansible.builtin.template)'s, byte for byte.
seealso:
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Render the HAProxy files of this load balancer into the plan directory
  wtstack.fleet.plan_files:
    root: "{{ plan_dir }}/{{ inventory_hostname }}"
    files: "{{ haproxy_managed_files }}"
    no_diff: "{{ [haproxy_config_path] if haproxy_config_has_secrets | bool else [] }}"

- name: Render the host's files, and each instance's settings file with the instance in `instance`
  wtstack.fleet.plan_files:
    root: /tmp/plan/app1
    files: "{{ wt_app_host_files }}"
    instance_files:
      instances: "{{ wtstack_topology.instances_by_host['app1'] }}"
      src: instance.env.j2
      dir: /etc/wtstack/wt/instances

- name: Render one file per instance, each with its instance in a variable
  wtstack.fleet.plan_files:
    root: /tmp/plan/app1
    files:
      - {src: instance.env.j2, dest: /etc/wtstack/wt/instances/9090.env, vars: {instance: {port: 9090}}}
      - {src: instance.env.j2, dest: /etc/wtstack/wt/instances/9091.env, vars: {instance: {port: 9091}}}
"""

RETURN = r"""
files:
  description: Every file of O(files), in order.
  returned: success
  type: list
  elements: dict
  contains:
    dest:
      description: Its path on the host.
      type: str
      sample: /etc/haproxy/haproxy.cfg
    path:
      description: Where it was written on the controller.
      type: str
      sample: /tmp/plan/lb1/etc/haproxy/haproxy.cfg
    changed:
      description: Whether its content or mode differed (and, outside check mode, was written).
      type: bool
"""

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# With settings_template, the action plugin of the same name (plugins/action/wt_instances.py) renders
# each instance's settings on the controller before this module runs on the host.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wt_instances
short_description: Internal to the wt_app role - converge a host's Wt instances in one step
description:
  - B(Internal) to wtstack.fleet, not public API - a helper of the wt_app role.
  - Makes every instance of O(instances) what it should be, in one invocation whatever their number -
    its settings file C(<settings_dir>/<port>.env) holds O(instances[].settings) with the given owner,
    group and mode, and its unit C(wt@<port>.service) is enabled and running.
  - An instance that is running is restarted when its settings change, when its process started
    before one of its files last changed (O(runtime_files), O(runtime_trees), its settings file; so a
    run killed between writing the files and restarting is finished by the next one), or when
    O(restart_all) is true; never when O(restart_on_change) is false. Restarts go one instance at a
    time, each waited for until it accepts connections again (at most O(restart_timeout) seconds), so
    a host never has all its instances down at once and a new version that does not start stops the
    run after the first instance.
  - An instance that is not running is started; one that is not enabled is enabled. systemd is
    reloaded first when O(unit_file_changed) or when it reports a unit changed on disk.
  - With O(prune), every other instance this host has (a loaded C(wt@<port>.service), an enabled one,
    or a settings file) is stopped and disabled, and its settings file removed.
  - With O(releases_dir), each instance runs a release, a directory of its own under O(releases_dir)
    (O(instances[].release)), through its link C(<links_dir>/<port>); see the role's C(wt@.service).
    An instance whose link names another release is moved (link, restart), except with
    O(restart_on_change=false), when it keeps the release it runs until a rolling upgrade moves it.
    An instance whose files, or whose release's O(release_files) and O(release_trees), changed after
    it started is restarted. Releases no instance runs are then removed, the most recent kept until
    O(releases_kept) remain, so the previous one is there for a rollback.
  - Reads all units with one C(systemctl show); needs systemd 248 or later (Debian 12 and 13).
version_added: 1.0.0
author:
  - wtstack.fleet contributors (@wtstack)
options:
  instances:
    description: The instances this host runs.
    type: list
    elements: dict
    required: true
    suboptions:
      port:
        description: The instance's port; its unit is C(wt@<port>.service).
        type: int
        required: true
      listen_address:
        description: The address it listens on (checked after a restart; a wildcard is checked on loopback).
        type: str
        required: true
      settings:
        description: The content of its settings file; required unless O(settings_template) is given.
        type: str
      release:
        description:
          - The release it runs (a directory name under O(releases_dir)), else O(release); needs O(releases_dir).
        type: str
  settings_template:
    description:
      - A template (found as the C(ansible.builtin.template) lookup finds it, in a role's C(templates/)) rendered on
        the controller, by this module's action plugin, for each instance of O(instances), with the instance as
        C(instance); the result is its settings file's content.
      - With it, an entry of O(instances) may carry other keys (such as an instance of the C(wtstack.fleet.topology)
        filter's result); only O(instances[].port), O(instances[].listen_address) and O(instances[].release) are
        read.
    type: str
    version_added: 1.0.0
  release:
    description: The release of every instance of O(instances) that names none; needs O(releases_dir).
    type: str
    version_added: 1.0.0
  settings_dir:
    description: Directory of the settings files. It must exist (except in check mode).
    type: path
    required: true
  settings_owner:
    description: Owner of the settings files.
    type: str
    default: root
  settings_group:
    description: Group of the settings files.
    type: str
    default: root
  settings_mode:
    description: Octal mode of the settings files.
    type: raw
    default: "0644"
  restart_all:
    description: Restart every running instance (the application or a file every instance reads changed).
    type: bool
    default: false
  restart_on_change:
    description: Restart instances at all; false leaves running instances alone (a rolling restart follows).
    type: bool
    default: true
  unit_file_changed:
    description: The template unit C(wt@.service) was changed by this run; systemd is reloaded first.
    type: bool
    default: false
  runtime_files:
    description: Files every instance runs with; an instance started before one of them changed is restarted.
    type: list
    elements: path
    default: []
  runtime_trees:
    description:
      - Directory trees every instance runs with, searched like C(find PATH -maxdepth DEPTH -name NAME)
        for entries that changed after an instance started.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The tree's root.
        type: path
        required: true
      depth:
        description: How deep to search.
        type: int
        required: true
      name:
        description: Shell pattern of the entries that count.
        type: str
        default: "*"
  prune:
    description: Stop, disable and remove the instances this host has that are not in O(instances).
    type: bool
    default: true
  restart_timeout:
    description: Seconds a restarted instance has to accept connections before the module fails.
    type: float
    default: 30
  releases_dir:
    description: Where the releases are installed, one directory each; unset, instances have no releases.
    type: path
  links_dir:
    description: Where each instance's link to its release is (C(<links_dir>/<port>)); needed with O(releases_dir).
    type: path
  release_files:
    description: Files of a release, relative to its directory, that its instances run with.
    type: list
    elements: str
    default: []
  release_trees:
    description: Trees of a release, relative to its directory, as in O(runtime_trees).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The tree's root, relative to the release's directory.
        type: str
        required: true
      depth:
        description: How deep to search.
        type: int
        required: true
      name:
        description: Shell pattern of the entries that count.
        type: str
        default: "*"
  releases_kept:
    description: Releases to keep installed, those instances run included; at least 1.
    type: int
    default: 2
  changed_releases:
    description: Releases this run installed again (same name, new content); their instances restart.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads everything and reports what it would write, restart, start, enable, stop and remove.
  diff_mode:
    support: full
    details: The settings files' changes, and one line per unit action.
  platform:
    platforms: posix
notes:
  - Internal to wtstack.fleet - its options and results may change in any release, without deprecation.
    Use the role rather than this module in your own plays.
seealso:
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: Converge this host's instances
  wtstack.fleet.wt_instances:
    instances:
      - {port: 9090, listen_address: 198.51.100.21, settings: "WT_HTTP_PORT=9090\n"}
      - {port: 9091, listen_address: 198.51.100.21, settings: "WT_HTTP_PORT=9091\n"}
    settings_dir: /etc/wtstack/wt/instances
    runtime_files: [/etc/systemd/system/wt@.service, /etc/wtstack/wt/app.env]
    restart_all: "{{ shared_files is changed }}"

- name: The topology's instances of this host, each settings file rendered from a template
  wtstack.fleet.wt_instances:
    instances: "{{ wtstack_topology.instances_by_host[inventory_hostname] }}"
    settings_template: instance.env.j2
    settings_dir: /etc/wtstack/wt/instances
"""

RETURN = r"""
written:
  description: Ports whose settings file was written (or would be, in check mode).
  returned: always
  type: list
  elements: int
restarted:
  description: Units restarted, in order.
  returned: always
  type: list
  elements: str
started:
  description: Units started.
  returned: always
  type: list
  elements: str
enabled:
  description: Units enabled.
  returned: always
  type: list
  elements: str
stopped:
  description: Units of removed instances stopped.
  returned: always
  type: list
  elements: str
disabled:
  description: Units of removed instances disabled.
  returned: always
  type: list
  elements: str
removed:
  description: Settings files of removed instances deleted.
  returned: always
  type: list
  elements: str
daemon_reloaded:
  description: Whether systemd was reloaded.
  returned: always
  type: bool
linked:
  description: Instances whose link was set, with the release it names now.
  returned: always
  type: dict
  sample: {"9090": "2.0"}
releases_removed:
  description: Release directories removed.
  returned: always
  type: list
  elements: str
outdated:
  description:
    - Running instances that are not what this run installs, and why, whether they were restarted or
      not; with O(restart_on_change=false), what a rolling upgrade has to restart.
  returned: always
  type: dict
  sample: {"9091": "it runs release 1.0, not 2.0"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wtstack.fleet.plugins.module_utils.wt_instances_module import run_wt_instances_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            instances=dict(type="list", elements="dict", required=True, options=dict(
                port=dict(type="int", required=True),
                listen_address=dict(type="str", required=True),
                settings=dict(type="str"),
                release=dict(type="str"),
            )),
            # Rendered by the action plugin (plugins/action/wt_instances.py), which never passes it on.
            settings_template=dict(type="str"),
            release=dict(type="str"),
            settings_dir=dict(type="path", required=True),
            settings_owner=dict(type="str", default="root"),
            settings_group=dict(type="str", default="root"),
            settings_mode=dict(type="raw", default="0644"),
            restart_all=dict(type="bool", default=False),
            restart_on_change=dict(type="bool", default=True),
            unit_file_changed=dict(type="bool", default=False),
            runtime_files=dict(type="list", elements="path", default=[]),
            runtime_trees=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True),
                depth=dict(type="int", required=True),
                name=dict(type="str", default="*"),
            )),
            prune=dict(type="bool", default=True),
            restart_timeout=dict(type="float", default=30),
            releases_dir=dict(type="path"),
            links_dir=dict(type="path"),
            release_files=dict(type="list", elements="str", default=[]),
            release_trees=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="str", required=True),
                depth=dict(type="int", required=True),
                name=dict(type="str", default="*"),
            )),
            releases_kept=dict(type="int", default=2),
            changed_releases=dict(type="list", elements="str", default=[]),
        ),
        required_together=[("releases_dir", "links_dir")],
        supports_check_mode=True,
    )
    failed, msg, result = run_wt_instances_module(module.params, module.run_command, module.check_mode, module._diff)
    if failed:
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

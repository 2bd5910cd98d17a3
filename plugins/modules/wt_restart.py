#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wt_restart
short_description: Restart some Wt instances of a host at once and wait until each answers its health URL
description:
  - Restarts the units of O(instances) with one C(systemctl restart), so systemd runs them in
    parallel, then polls each instance's health URL until it answers 200, at most O(timeout) seconds.
  - Reports every instance, healthy or not. For one that did not come back, the reason says what
    systemd says of its unit (state, result, exit status, automatic restarts) and its last log lines.
    The module fails when any did not come back, naming them in RV(failed_instances), so a playbook
    can go on with the others (C(failed_when) on that list).
  - An instance that names a O(instances[].release) is first moved to it - its link
    C(<links_dir>/<port>) is pointed at C(<releases_dir>/<release>), as the C(wtstack.fleet.wt_app) role
    lays releases out - and the result says which release it ran before. An instance whose release is
    not installed is not touched and counts as not come back.
  - Used by the C(wtstack.fleet.rolling_restart) role on the hosts of a batch, after every load
    balancer took the batch out of rotation. It never touches a load balancer.
version_added: 1.0.0
author:
  - wtstack.fleet contributors (@wtstack)
options:
  instances:
    description: The instances to restart.
    type: list
    elements: dict
    required: true
    suboptions:
      server:
        description: The instance's name (C(<host>-<port>)), used in the result.
        type: str
        required: true
      port:
        description: Its port.
        type: int
        required: true
      address:
        description: The address its health URL is reached at (the address HAProxy connects to).
        type: str
        required: true
      unit:
        description: Its systemd unit.
        type: str
        required: true
      release:
        description: The release to move it to before the restart (needs O(links_dir) and O(releases_dir)).
        type: str
  links_dir:
    description: Where each instance's link to its release is (C(<links_dir>/<port>)).
    type: path
    default: /opt/wtstack/instances
  releases_dir:
    description: Where the releases are installed, one directory each.
    type: path
    default: /opt/wtstack/releases
  health_path:
    description: The health URL's path; it must answer 200 without creating a Wt session.
    type: str
    default: /health
  timeout:
    description: Seconds, from the restart, for every instance to answer.
    type: float
    default: 60
  interval:
    description: Seconds between two rounds of probes.
    type: float
    default: 0.25
attributes:
  check_mode:
    support: full
    details: Restarts nothing; reports the instances that would be restarted.
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
seealso:
  - module: wtstack.fleet.haproxy_server
"""

EXAMPLES = r"""
- name: Restart two instances of this host and wait for them
  wtstack.fleet.wt_restart:
    instances:
      - {server: app1-9090, port: 9090, address: 10.0.0.21, unit: wt@9090.service}
      - {server: app1-9092, port: 9092, address: 10.0.0.21, unit: wt@9092.service}
    timeout: 60
  register: restarted
  failed_when: false

- name: Move one to release 2.0 (installed by the wt_app role) and restart it
  wtstack.fleet.wt_restart:
    instances:
      - {server: app1-9090, port: 9090, address: 10.0.0.21, unit: wt@9090.service, release: "2.0"}
"""

RETURN = r"""
instances:
  description: One entry per instance, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    server:
      description: The instance.
      type: str
    port:
      description: Its port.
      type: int
    unit:
      description: Its unit.
      type: str
    healthy:
      description: Whether it answered its health URL with 200 (in check mode, false).
      type: bool
    seconds:
      description: Seconds from the restart until it answered (or until the timeout).
      type: float
    release:
      description: The release it runs now (null without releases).
      type: str
    previous_release:
      description: The release it ran before this restart (null without releases, or without a link before).
      type: str
    reason:
      description: What happened, with systemd's and the log's words for an instance that did not come back.
      type: str
      sample: "not answering /health with 200 after 60 s (last: ConnectionRefusedError: Connection refused);
        wt@9090.service is activating (auto-restart); result exit-code, exit status 1; last log: ..."
failed_instances:
  description: The instances that did not come back.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wtstack.fleet.plugins.module_utils.instance_restart import restart


def main():
    module = AnsibleModule(
        argument_spec=dict(
            instances=dict(type="list", elements="dict", required=True, options=dict(
                server=dict(type="str", required=True),
                port=dict(type="int", required=True),
                address=dict(type="str", required=True),
                unit=dict(type="str", required=True),
                release=dict(type="str"),
            )),
            links_dir=dict(type="path", default="/opt/wtstack/instances"),
            releases_dir=dict(type="path", default="/opt/wtstack/releases"),
            health_path=dict(type="str", default="/health"),
            timeout=dict(type="float", default=60),
            interval=dict(type="float", default=0.25),
        ),
        supports_check_mode=True,
    )
    instances = module.params["instances"]
    if not module.params["health_path"].startswith("/"):
        module.fail_json(msg=f"health_path {module.params['health_path']!r} must start with /")
    if module.check_mode:
        module.exit_json(changed=bool(instances), failed_instances=[], instances=[
            dict(server=item["server"], port=item["port"], unit=item["unit"], healthy=False, seconds=0.0,
                 release=item.get("release"), previous_release=None,
                 reason="would be restarted" + (f" on release {item['release']}" if item.get("release") else "")
                 + " (check mode)") for item in instances])

    def run(argv):
        return module.run_command(argv, check_rc=False)

    moves = any(item.get("release") for item in instances)
    outcomes = restart(run, instances, module.params["health_path"], module.params["timeout"],
                       module.params["interval"], links_dir=module.params["links_dir"] if moves else None,
                       releases_dir=module.params["releases_dir"])
    failed = [outcome.server for outcome in outcomes if not outcome.healthy]
    result = dict(changed=bool(outcomes), instances=[outcome.as_dict() for outcome in outcomes],
                  failed_instances=failed)
    if failed:
        module.fail_json(msg="; ".join(f"{outcome.server}: {outcome.reason}" for outcome in outcomes
                                       if not outcome.healthy), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

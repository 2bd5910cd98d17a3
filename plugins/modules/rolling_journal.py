#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rolling_journal
short_description: Keep the journal of a rolling restart or upgrade on a host
description:
  - Reads, writes or removes the journal of a roll, a small JSON file on the load balancers that
    says which instances the roll has rolled and which failed, so that a roll stopped by a failure,
    its deadline or a lost controller is resumed by the next run instead of started over. The
    C(wtstack.fleet.rolling_restart) role writes it on every load balancer after each batch and
    removes it when the roll completes.
  - Without O(journal), with O(state=present), it only reads.
  - Writes are atomic (a temporary file in the same directory, then renamed), so a crash leaves the
    previous journal or the new one.
version_added: 1.0.0
author:
  - wtstack.fleet contributors (@wtstack)
options:
  path:
    description: The journal file. Its directory is created (mode 0700) if need be.
    type: path
    default: /var/lib/wtstack/rolling-journal.json
  journal:
    description: The journal to keep (what the C(wtstack.fleet.rolling_advance) filter returns as C(journal)).
    type: dict
  state:
    description: V(present) keeps O(journal) (or only reads when none is given); V(absent) removes the file.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    details: Reads the journal and reports whether it would change; writes and removes nothing.
  diff_mode:
    support: full
    details: The diff shows the journal before and after, as JSON.
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
seealso:
  - module: wtstack.fleet.haproxy_server
"""

EXAMPLES = r"""
- name: Read the journal on every load balancer
  wtstack.fleet.rolling_journal:
  delegate_to: "{{ item }}"
  loop: "{{ groups['haproxy'] }}"
  register: journals

- name: Keep the roll's progress
  wtstack.fleet.rolling_journal:
    journal: "{{ rolling_state.journal }}"

- name: The roll is complete
  wtstack.fleet.rolling_journal:
    state: absent
"""

RETURN = r"""
journal:
  description: The journal now (after the change), or null when there is none.
  returned: always
  type: dict
  sample: {format: 1, id: "1764424321", key: restart, rolled: {app1-9090: {from: null}}, failed: {}, cut: 0}
previous:
  description: The journal before the change, or null.
  returned: always
  type: dict
path:
  description: The journal file.
  returned: always
  type: str
  sample: /var/lib/wtstack/rolling-journal.json
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.wtstack.fleet.plugins.module_utils.journal_file import (
    DEFAULT_PATH,
    JournalError,
    read_journal,
    remove_journal,
    serialize,
    write_journal,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default=DEFAULT_PATH),
            journal=dict(type="dict"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    path, wanted, state = module.params["path"], module.params["journal"], module.params["state"]
    try:
        previous = read_journal(path)
    except JournalError as error:
        module.fail_json(msg=str(error), path=path)
    after = None if state == "absent" else (wanted if wanted is not None else previous)
    changed = (previous is not None) if state == "absent" else (
        wanted is not None and (previous is None or serialize(previous) != serialize(wanted)))
    result = dict(changed=changed, path=path, previous=previous, journal=after)
    if module._diff and changed:
        result["diff"] = dict(before=serialize(previous) if previous is not None else "",
                              after=serialize(after) if after is not None else "",
                              before_header=path, after_header=path)
    if changed and not module.check_mode:
        try:
            if state == "absent":
                remove_journal(path)
            else:
                write_journal(path, wanted)
        except JournalError as error:
            module.fail_json(msg=str(error), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sha512_crypt filter: a thin adapter around plugin_utils/sha512_crypt.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: sha512_crypt
author: wtstack.fleet contributors (@wtstack)
version_added: "1.0.0"
short_description: Hash a password as SHA-512 crypt (C($6$)) with a given salt, without passlib
description:
  - Returns the C($6$<salt>$<hash>) string that crypt(3) checks, for example in a HAProxy C(userlist)
    (C(user NAME password <hash>)) or in /etc/shadow.
  - The same password and salt always give the same hash, so a template holding it changes only when
    the password does; give each host or user its own salt.
  - Unlike C(ansible.builtin.password_hash), needs no passlib on the controller.
options:
  _input:
    description: The password.
    type: str
    required: true
  salt:
    description: 1 to 16 characters from C([./0-9A-Za-z]).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: A stable hash for a HAProxy userlist
  ansible.builtin.debug:
    msg: "{{ stats_password | wtstack.fleet.sha512_crypt((inventory_hostname | hash('sha256'))[:16]) }}"
"""

RETURN = r"""
_value:
  description: The crypt(3) string, C($6$<salt>$<86 characters>).
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.wtstack.fleet.plugins.plugin_utils.sha512_crypt import sha512_crypt as _sha512_crypt


def sha512_crypt(password, salt):
    try:
        return _sha512_crypt(to_text(password), to_text(salt))
    except (TypeError, ValueError) as error:
        raise AnsibleFilterError(f"wtstack.fleet.sha512_crypt: {error}") from error


class FilterModule:
    def filters(self):
        return {"sha512_crypt": sha512_crypt}

# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A roll's journal on a load balancer: one JSON file, read, replaced atomically, removed.

Plain Python with no Ansible import; the rolling_journal module is its only user. What the journal
holds is rolling.journal_of()'s business; here it is only kept safe: written to a temporary file in
the same directory and renamed over the old one, so a crash leaves the old journal or the new one,
never half of one.
"""

from __future__ import annotations

import json
import os

from ansible_collections.wtstack.fleet.plugins.module_utils.host_files import HostError, write_file

DEFAULT_PATH = "/var/lib/wtstack/rolling-journal.json"


class JournalError(Exception):
    """The journal could not be read or written; ``str()`` names the file and what to do."""


def read_journal(path):
    """The journal (a dict), or None when there is none."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise JournalError(f"cannot read the roll journal {path}: {error.strerror or error}") from None
    try:
        journal = json.loads(text)
    except ValueError as error:
        raise JournalError(f"the roll journal {path} is not JSON ({error}); remove it to start the next roll "
                           "afresh (rolling_restart_resume=false does it)") from None
    if not isinstance(journal, dict):
        raise JournalError(f"the roll journal {path} holds no object; remove it to start the next roll afresh")
    return journal


def serialize(journal):
    return json.dumps(journal, indent=1, sort_keys=True) + "\n"


def write_journal(path, journal, mode=0o600):
    """Replaces the journal in one rename (host_files.write_file), creating its directory (root
    only) if need be."""
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    except OSError as error:
        raise JournalError(f"cannot write the roll journal {path}: {error.strerror or error}") from None
    try:
        write_file(path, serialize(journal).encode(), mode, "root", "root")
    except HostError as error:
        raise JournalError(f"the roll journal: {error}") from None


def remove_journal(path):
    """Removes the journal; whether there was one."""
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as error:
        raise JournalError(f"cannot remove the roll journal {path}: {error.strerror or error}") from None

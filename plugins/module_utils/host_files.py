# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files and units on a host, for any of our modules (app hosts and load balancers alike).

Plain Python with no Ansible import: replacing a file in one rename, removing one, reading a file
mode as the file modules take it, restarting systemd units and reading what `systemctl show` says.
The app hosts' logic (wt_instances.py, instance_restart.py) and the balancers' (journal_file.py)
both build on it; neither imports the other.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import tempfile


class HostError(Exception):
    """Something on the host failed; the message says what, naming the unit or file."""


def parse_mode(value, where="mode"):
    """A file mode as the file modules take it: an octal string ('0644', '644') or an int (0o644)."""
    if isinstance(value, bool):
        raise ValueError(f"{where}: {value!r} is not a file mode; give an octal string such as '0644'")
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and value.strip().isdigit():
        try:
            mode = int(value.strip(), 8)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not an octal file mode; give one such as '0644'") from None
    else:
        raise ValueError(f"{where}: {value!r} is not an octal file mode; give one such as '0644' "
                         "(symbolic modes are not supported here)")
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"{where}: {value!r} is out of range for a file mode")
    return mode


def write_file(path, content, mode, owner, group):
    """Replace `path` in one rename with `content`, owned by owner:group with `mode`."""
    try:
        uid, gid = pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as error:
        raise HostError(f"cannot write {path}: no such user or group ({error})") from None
    try:
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".wtstack-")
    except OSError as error:
        raise HostError(f"cannot write {path}: {error.strerror} ({os.path.dirname(path)})") from None
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(content)
        os.chown(temporary, uid, gid)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as error:
        raise HostError(f"cannot write {path}: {error.strerror}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def remove_file(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise HostError(f"cannot remove {path}: {error.strerror}") from None


def parse_systemctl_show(text):
    """`systemctl show -p Id -p ...` of several units: {unit id: {property: value}}."""
    result = {}
    for block in re.split(r"\n\s*\n", text.strip()):
        properties = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if properties.get("Id"):
            result[properties["Id"]] = properties
    return result


def restart_units(run, units):
    """Restarts ``units`` in one systemctl call (systemd runs the jobs in parallel); (rc, stderr).

    A unit that crash-looped (a broken release) may have hit systemd's start limit, which refuses
    every start, even of the release that works, until its failed state is reset: so it is, first.
    ``run(argv)`` returns (rc, stdout, stderr).
    """
    run(["systemctl", "reset-failed", *units])
    rc, dummy, err = run(["systemctl", "restart", *units])
    return rc, err.strip()

# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's files written under a directory on the controller: <root>/<absolute path on the host>.

What the plan_files action needs besides rendering, as plain Python: where each file goes, which
ones differ from what is there (content or mode), and writing those (atomically, with their mode),
or only saying so in check mode.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass

DIRECTORY_MODE = 0o755


@dataclass(frozen=True)
class TreeFile:
    """One file as it should be: `dest` is its absolute path on the host."""

    dest: str
    content: bytes
    mode: int


@dataclass(frozen=True)
class FileChange:
    """What writing one TreeFile did (or, in check mode, would do)."""

    dest: str
    path: str
    before: bytes | None  # None: there was no file
    after: bytes
    mode_before: int | None
    mode_after: int

    @property
    def changed(self):
        return self.before != self.after or self.mode_before != self.mode_after


def tree_path(root, dest):
    """Where `dest` (an absolute path on the host) goes under `root`; refuses anything that would
    land outside it."""
    if not isinstance(dest, str) or not dest.startswith("/"):
        raise ValueError(f"dest: {dest!r} is not an absolute path")
    parts = [part for part in dest.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"dest: {dest!r} must name a file and may not contain '..'")
    return os.path.join(root, *parts)


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read(), stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
    except FileNotFoundError:
        return None, None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a file") from None


def _makedirs(directory):
    """Create `directory` and any missing parents with DIRECTORY_MODE (whatever the umask)."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    for path in reversed(missing):
        os.mkdir(path)
        os.chmod(path, DIRECTORY_MODE)


def _write(path, content, mode):
    """Replace `path` in one rename, so a reader never sees half a file."""
    directory = os.path.dirname(path)
    _makedirs(directory)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".plan-")
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_tree(root, files, check_mode=False):
    """Write every TreeFile that differs from what is under `root` (content or mode); in check mode
    only compare. Returns one FileChange per file, in order."""
    changes = []
    dest_of = {}
    for tree_file in files:
        path = tree_path(root, tree_file.dest)
        if path in dest_of:
            raise ValueError(f"dest: {tree_file.dest} is the same file as {dest_of[path]}, given before it")
        dest_of[path] = tree_file.dest
        before, mode_before = _read(path)
        change = FileChange(tree_file.dest, path, before, tree_file.content, mode_before, tree_file.mode)
        if change.changed and not check_mode:
            if before == tree_file.content:
                os.chmod(path, tree_file.mode)
            else:
                _write(path, tree_file.content, tree_file.mode)
        changes.append(change)
    return changes


def diffs(change):
    """Ansible's diffs of one change, in the shapes the template and file modules report: the content
    as before/after text (the callback prints a unified diff), a mode as before/after state."""
    result = []
    if change.before != change.after:
        result.append({
            "before_header": change.dest,
            "after_header": change.dest,
            "before": (change.before or b"").decode("utf-8", errors="replace"),
            "after": change.after.decode("utf-8", errors="replace"),
        })
    if change.mode_before is not None and change.mode_before != change.mode_after:
        result.append({"before": {"path": change.dest, "mode": f"{change.mode_before:04o}"},
                       "after": {"path": change.dest, "mode": f"{change.mode_after:04o}"}})
    return result

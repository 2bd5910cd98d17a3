"""The plan directory's file writing, without Ansible: paths, modes, what changed, check mode, diffs."""

import os

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.host_files import parse_mode
from ansible_collections.wtstack.fleet.plugins.plugin_utils.file_tree import (
    TreeFile,
    diffs,
    tree_path,
    write_tree,
)


def mode_of(path):
    return os.stat(path).st_mode & 0o7777


@pytest.mark.parametrize("value, mode", [("0644", 0o644), ("644", 0o644), ("0640", 0o640), (0o600, 0o600),
                                         ("01777", 0o1777)])
def test_modes_are_octal_strings_or_ints(value, mode):
    assert parse_mode(value) == mode


@pytest.mark.parametrize("value", ["u=rw,g=r", "0999", "", True, None, "077777", -1])
def test_other_modes_are_refused_naming_the_file(value):
    with pytest.raises(ValueError, match=r"^files\[2\] \(/etc/x\): mode: "):
        parse_mode(value, "files[2] (/etc/x): mode")


def test_a_file_lands_under_the_root_at_its_absolute_path(tmp_path):
    assert tree_path(str(tmp_path), "/etc/haproxy/haproxy.cfg") == str(tmp_path / "etc/haproxy/haproxy.cfg")
    assert tree_path(str(tmp_path), "//etc/./x") == str(tmp_path / "etc/x")


@pytest.mark.parametrize("dest", ["etc/x", "/etc/../../x", "/", "", None])
def test_a_dest_that_is_relative_or_leaves_the_root_is_refused(tmp_path, dest):
    with pytest.raises(ValueError, match="dest: "):
        tree_path(str(tmp_path), dest)


def test_files_are_written_with_their_mode_and_missing_directories_0755(tmp_path):
    os.umask(0o077)
    try:
        changes = write_tree(str(tmp_path), [TreeFile("/etc/a/b/x.conf", b"x\n", 0o640), TreeFile("/y", b"", 0o644)])
    finally:
        os.umask(0o022)
    assert [change.changed for change in changes] == [True, True]
    assert (tmp_path / "etc/a/b/x.conf").read_bytes() == b"x\n" and mode_of(tmp_path / "etc/a/b/x.conf") == 0o640
    assert (tmp_path / "y").read_bytes() == b"" and mode_of(tmp_path / "y") == 0o644
    assert {mode_of(tmp_path / d) for d in ("etc", "etc/a", "etc/a/b")} == {0o755}
    assert [path.name for path in tmp_path.rglob(".plan-*")] == []


def test_writing_the_same_tree_again_changes_nothing(tmp_path):
    tree = [TreeFile("/etc/x.conf", b"x\n", 0o640)]
    write_tree(str(tmp_path), tree)
    before = os.stat(tmp_path / "etc/x.conf")
    [change] = write_tree(str(tmp_path), tree)
    assert not change.changed and diffs(change) == []
    assert os.stat(tmp_path / "etc/x.conf").st_ino == before.st_ino


def test_a_mode_alone_is_changed_in_place_and_reported_like_the_file_module(tmp_path):
    write_tree(str(tmp_path), [TreeFile("/x", b"same\n", 0o600)])
    inode = os.stat(tmp_path / "x").st_ino
    [change] = write_tree(str(tmp_path), [TreeFile("/x", b"same\n", 0o644)])
    assert change.changed and mode_of(tmp_path / "x") == 0o644 and os.stat(tmp_path / "x").st_ino == inode
    assert diffs(change) == [{"before": {"path": "/x", "mode": "0600"}, "after": {"path": "/x", "mode": "0644"}}]


def test_new_content_replaces_the_file_and_its_diff_shows_before_and_after(tmp_path):
    write_tree(str(tmp_path), [TreeFile("/x", b"old\n", 0o644)])
    [change] = write_tree(str(tmp_path), [TreeFile("/x", b"new\n", 0o644)])
    assert (tmp_path / "x").read_bytes() == b"new\n"
    assert diffs(change) == [{"before_header": "/x", "after_header": "/x", "before": "old\n", "after": "new\n"}]


def test_a_new_file_diffs_against_nothing(tmp_path):
    [change] = write_tree(str(tmp_path), [TreeFile("/x", b"new\n", 0o644)])
    assert change.before is None and diffs(change)[0]["before"] == ""


def test_check_mode_compares_and_writes_nothing(tmp_path):
    write_tree(str(tmp_path), [TreeFile("/kept", b"k\n", 0o644)])
    changes = write_tree(str(tmp_path), [TreeFile("/kept", b"k\n", 0o600), TreeFile("/etc/new", b"n\n", 0o644)],
                         check_mode=True)
    assert [change.changed for change in changes] == [True, True]
    assert mode_of(tmp_path / "kept") == 0o644 and not (tmp_path / "etc").exists()


def test_the_same_dest_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="dest: //x is the same file as /x, given before it"):
        write_tree(str(tmp_path), [TreeFile("/x", b"1", 0o644), TreeFile("//x", b"2", 0o644)])


def test_a_directory_where_a_file_should_be_is_an_error(tmp_path):
    (tmp_path / "etc/x").mkdir(parents=True)
    with pytest.raises(ValueError, match="is a directory"):
        write_tree(str(tmp_path), [TreeFile("/etc/x", b"1", 0o644)])

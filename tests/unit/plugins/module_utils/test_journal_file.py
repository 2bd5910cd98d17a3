"""The roll journal's file handling."""

import json
import os
import stat

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils import journal_file as rj


def test_no_journal_is_none(tmp_path):
    assert rj.read_journal(str(tmp_path / "none.json")) is None
    assert rj.remove_journal(str(tmp_path / "none.json")) is False


def test_written_atomically_root_only_in_a_new_directory(tmp_path):
    path = str(tmp_path / "wtstack" / "rolling-journal.json")
    rj.write_journal(path, {"id": "1", "rolled": {"app1-9090": {"from": None}}})
    assert rj.read_journal(path) == {"id": "1", "rolled": {"app1-9090": {"from": None}}}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "wtstack").st_mode) == 0o700
    rj.write_journal(path, {"id": "2"})
    assert rj.read_journal(path) == {"id": "2"}
    assert os.listdir(tmp_path / "wtstack") == ["rolling-journal.json"]  # no temporary left behind
    assert rj.remove_journal(path) is True and rj.read_journal(path) is None


@pytest.mark.parametrize("content, words", [("{half", "is not JSON"), ("[1, 2]", "holds no object")])
def test_a_damaged_journal_says_how_to_start_afresh(tmp_path, content, words):
    path = tmp_path / "j.json"
    path.write_text(content)
    with pytest.raises(rj.JournalError, match=words) as caught:
        rj.read_journal(str(path))
    assert "rolling_restart_resume=false" in str(caught.value) or "remove it" in str(caught.value)


def test_an_unwritable_place_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(rj.JournalError, match=r"roll journal .*file/j.json"):
        rj.write_journal(str(blocker / "j.json"), {})


def test_serialized_sorted_so_equal_journals_compare_equal():
    assert rj.serialize({"b": 1, "a": {"d": 2, "c": 3}}) == rj.serialize(json.loads('{"a": {"c": 3, "d": 2}, "b": 1}'))

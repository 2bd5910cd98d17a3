"""rolling_journal: read, write, remove; check and diff mode; idempotence."""

import json

from ansible_collections.wtstack.fleet.plugins.modules import rolling_journal

JOURNAL = {"format": 1, "id": "7", "key": "restart", "rolled": {"app1-9090": {"from": None}}, "failed": {}, "cut": 0}


def test_read_write_idempotent_remove(tmp_path, run_module):
    path = str(tmp_path / "j.json")
    read = run_module(rolling_journal, {"path": path})
    assert (read["changed"], read["journal"], read["previous"]) == (False, None, None)

    written = run_module(rolling_journal, {"path": path, "journal": JOURNAL}, diff=True)
    assert written["changed"] is True and written["journal"] == JOURNAL
    assert json.loads(written["diff"]["after"]) == JOURNAL and written["diff"]["before"] == ""
    assert run_module(rolling_journal, {"path": path, "journal": JOURNAL})["changed"] is False
    assert run_module(rolling_journal, {"path": path})["journal"] == JOURNAL

    removed = run_module(rolling_journal, {"path": path, "state": "absent"})
    assert (removed["changed"], removed["previous"], removed["journal"]) == (True, JOURNAL, None)
    assert run_module(rolling_journal, {"path": path, "state": "absent"})["changed"] is False


def test_check_mode_writes_nothing(tmp_path, run_module):
    path = tmp_path / "j.json"
    result = run_module(rolling_journal, {"path": str(path), "journal": JOURNAL}, check_mode=True)
    assert result["changed"] is True and not path.exists()


def test_a_damaged_journal_fails_naming_the_file(tmp_path, run_module):
    path = tmp_path / "j.json"
    path.write_text("{")
    result = run_module(rolling_journal, {"path": str(path), "journal": JOURNAL})
    assert result["failed"] is True and str(path) in result["msg"]

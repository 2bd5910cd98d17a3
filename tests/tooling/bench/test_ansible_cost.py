"""bench/ansible_cost.py without the lab: how it reads ansible-playbook output and what it reports."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import ansible_cost  # noqa: E402

OUTPUT = """
TASK [wtstack.fleet.wt_app : Write each instance's settings] ****
ok: [app3] => (item=wt@9090.service)
ok: [app3] => (item=wt@9091.service)
skipping: [app4] => (item=wt@9090.service)

TASK [wtstack.fleet.wt_app : Enable and start every instance] ****
ok: [app3] => (item=wt@9090.service)

PLAY RECAP ****
app3                       : ok=30   changed=0    unreachable=0    failed=0    skipped=3
lb1                        : ok=20   changed={changed}    unreachable=0    failed=0    skipped=1
"""


def fake_site(changed):
    return lambda *args: (12.5, OUTPUT.format(changed=changed))


def test_a_run_is_read_as_tasks_and_invocations_per_host(monkeypatch):
    monkeypatch.setattr(ansible_cost, "site", fake_site(0))
    measurement = ansible_cost.measure("16 per host", "lb1,app3,app4")
    assert measurement["tasks"] == 2
    assert measurement["invocations"] == {"app3": 3, "app4": 1}


def test_a_run_that_changed_something_is_refused(monkeypatch):
    monkeypatch.setattr(ansible_cost, "site", fake_site(1))
    with pytest.raises(RuntimeError, match="not idempotent"):
        ansible_cost.measure("2 per host", "lb1,app1,app2")


def test_ratio_is_taken_within_each_round_and_judged_against_the_goal():
    runs = [{"subset": "2 per host", "seconds": 20.0, "tasks": 60, "invocations": {"app1": 70}, "round": 0},
            {"subset": "16 per host", "seconds": 24.0, "tasks": 60, "invocations": {"app3": 110}, "round": 0},
            {"subset": "16 per host", "seconds": 30.0, "tasks": 60, "invocations": {"app3": 110}, "round": 1},
            {"subset": "2 per host", "seconds": 20.0, "tasks": 60, "invocations": {"app1": 70}, "round": 1}]
    result = {"rounds": 2, "first_converge_s": 90, "runs": runs, "facts": {"ansible.cfg": ["pipelining = True"]}}
    summary = ansible_cost.summarize(result)
    assert summary["ratio"] == pytest.approx(1.35)
    assert (summary["ratio_min"], summary["ratio_max"]) == (pytest.approx(1.2), pytest.approx(1.5))
    text = "\n".join(ansible_cost.markdown(result))
    assert "**1.35**" in text and "**not met**" in text and "| 16 | 27.0 s | 60 | 110 |" in text


def test_without_a_measurement_the_section_says_so():
    assert "Not measured" in "\n".join(ansible_cost.markdown(None))

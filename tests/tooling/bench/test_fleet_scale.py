"""bench/fleet_scale.py without the lab: how it reads a run, summarises rounds and writes its section."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import fleet_scale  # noqa: E402

VERBOSE_OUTPUT = """
<127.0.12.11> ESTABLISH SSH CONNECTION FOR USER: root
<127.0.12.11> SSH: EXEC ssh -C -o ControlMaster=auto 127.0.12.11 '/bin/sh -c '"'"'/usr/bin/python3 && sleep 0'"'"''
<127.0.12.11> SSH: EXEC ssh -C -o ControlMaster=auto 127.0.12.11 '/bin/sh -c '"'"'/usr/bin/python3 && sleep 0'"'"''
<127.0.12.1> SSH: EXEC ssh -C -o ControlMaster=auto 127.0.12.1 '/bin/sh -c '"'"'/usr/bin/python3 && sleep 0'"'"''
ok: [app1]
skipping: [app1]
changed: [lb1] => (item=/etc/haproxy/haproxy.cfg)

PLAY RECAP ****
app1                       : ok=12   changed={changed}    unreachable=0    failed=0    skipped=10
lb1                        : ok=27   changed=1    unreachable=0    failed=0    skipped=5
"""


@pytest.fixture
def fake_lab(monkeypatch):
    cpu = iter([{"app1": 10.0, "lb1": 20.0}, {"app1": 10.5, "lb1": 24.0}])
    monkeypatch.setattr(fleet_scale, "cgroup_cpu_seconds", lambda: next(cpu))
    monkeypatch.setattr(fleet_scale, "addresses", lambda: {"127.0.12.11": "app1", "127.0.12.1": "lb1"})

    def playbook(changed):
        monkeypatch.setattr(fleet_scale, "playbook", lambda *args: (12.5, 4.0, VERBOSE_OUTPUT.format(changed=changed)))
    return playbook


def test_a_run_is_read_as_cpu_ssh_executions_and_task_results_per_host(fake_lab):
    fake_lab(0)
    run = fleet_scale.site_run("cold", verbose=True)
    assert (run["seconds"], run["controller_cpu_s"], run["app_cpu_s"], run["lb_cpu_s"]) == (12.5, 4.0, 0.5, 4.0)
    assert run["ssh_executions"] == {"app1": 2, "lb1": 1}
    assert run["task_results"] == {"app1": 2, "lb1": 1}
    assert run["app_hosts"] == ["app1"] and fleet_scale.per_app_host(run) == 2


def test_an_idempotent_run_that_changed_something_is_refused(fake_lab):
    fake_lab(1)
    with pytest.raises(RuntimeError, match="not idempotent"):
        fleet_scale.site_run("idempotent", idempotent=True)


def idempotent_run(size, round_index, seconds):
    return {"size": size, "round": round_index, "seconds": seconds, "controller_cpu_s": seconds / 2,
            "app_cpu_s": size * 0.5, "lb_cpu_s": 10.0, "loadavg_before": 4.0, "app_hosts": ["app1"],
            "task_results": {"app1": 18}}


def test_ratios_are_taken_within_a_round_and_judged_against_the_goal():
    runs = [idempotent_run(2, 0, 20.0), idempotent_run(16, 0, 30.0), idempotent_run(16, 1, 50.0),
            idempotent_run(2, 1, 20.0)]
    rows = fleet_scale.idempotent_summary(runs)
    assert [row["size"] for row in rows] == [2, 16]
    assert rows[1]["ratio"] == pytest.approx(2.0) and rows[1]["ratio_range"] == (1.5, 2.5)
    result = {"facts": {"nproc": 2, "ansible.cfg": ["forks = 50"]}, "loadavg_start": (1, 2, 3),
              "loadavg_end": (3, 2, 1), "settings": {"rounds": 2}, "site": runs,
              "site_counted": dict(runs[0], ssh_executions={"app1": 2, "lb1": 39, "lb2": 38})}
    text = "\n".join(fleet_scale.markdown(result))
    assert "| 16 | 40.0 s | 2.00 (1.50–2.50) |" in text
    assert "**2.00**, met" in text
    assert "Per app host in every run: 2 SSH executions" in text and "lb1 39, lb2 38" in text


def test_a_run_bound_by_waiting_is_not_blamed_on_a_cpu():
    idle = {"seconds": 100.0, "controller_cpu_s": 10.0, "app_cpu_s": 20.0, "lb_cpu_s": 5.0}
    busy = {"seconds": 100.0, "controller_cpu_s": 50.0, "app_cpu_s": 120.0, "lb_cpu_s": 10.0}
    assert fleet_scale.bound(idle, 2).startswith("waiting")
    assert fleet_scale.bound(dict(idle, loadavg_before=9.0), 2).startswith("other jobs on the machine (load 9")
    assert fleet_scale.bound(busy, 2).startswith("app hosts' CPU")


def test_the_plan_section_compares_plan_with_template_tasks_and_judges_the_goal():
    plan = [{"instances": 1000, "app_hosts": 50, "how": "plan.yml", "scope": "all hosts", "seconds": 20.0,
             "controller_cpu_s": 25.0, "files": 1153, "loadavg_before": 3.0},
            {"instances": 100, "app_hosts": 5, "how": "plan.yml", "scope": "all hosts", "seconds": 5.0,
             "controller_cpu_s": 3.0, "files": 118, "loadavg_before": 3.0},
            {"instances": 100, "app_hosts": 5, "how": "template tasks", "scope": "all hosts", "seconds": 50.0,
             "controller_cpu_s": 40.0, "files": 118, "loadavg_before": 3.0}]
    result = {"facts": {"nproc": 2, "ansible.cfg": []}, "loadavg_start": (1, 1, 1), "loadavg_end": (1, 1, 1),
              "plan": plan}
    text = "\n".join(fleet_scale.markdown(result))
    assert "1,000 instances on 50 hosts ≤ 60 s: **20 s**, met" in text
    assert "100 instances, all hosts: template tasks ÷ plan.yml = **10.0**" in text


def test_plan_inventories_put_twenty_instances_on_each_app_host(tmp_path):
    path, app_hosts = fleet_scale.plan_inventory(tmp_path / "inventory.yml", 1010)
    assert app_hosts == 51
    text = path.read_text()
    assert "app051" in text and "wt_instances: 10" in text and "10.20.0.1" in text


def test_without_measurements_the_section_says_so():
    assert "Not measured" in "\n".join(fleet_scale.markdown(None))

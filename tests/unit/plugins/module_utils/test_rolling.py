"""The batch planner and the roll's state machine, without Ansible."""

import itertools

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils import rolling
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.client import DEFAULT_SOCKET
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import build_topology


def fleet(*counts, weights=None):
    """Topology instances (as the topology filter hands them to Jinja) of app hosts with `counts` instances."""
    groups = {"all": [], "haproxy": ["lb1"], "wt": []}
    hostvars = {"lb1": {"ansible_host": "127.0.0.1"}}
    for number, count in enumerate(counts, start=1):
        host = f"app{number}"
        groups["wt"].append(host)
        spec = count if not weights or host not in weights else [{"weight": weight} for weight in weights[host]]
        hostvars[host] = {"ansible_host": f"10.0.0.{number}", "wt_instances": spec}
    groups["all"] = ["lb1", *groups["wt"]]
    return build_topology(groups, hostvars).to_dict()["instances"]


def start(instances, now=1000.0, **params):
    return rolling.start_roll(instances, {"kind": "restart", **params}, now)


def run_to_end(state, fail=(), now=1000.0):
    """Every batch the roll takes when `fail` fails and everything else comes back."""
    batches = []
    while True:
        state = rolling.next_batch(state, now)
        if not state["batch"]:
            return batches, state
        batches.append(state["batch"])
        now += 10
        failed = {server: "it did not answer" for server in state["batch"] if server in fail}
        state = rolling.finish_batch(state, {"rolled": [s for s in state["batch"] if s not in failed],
                                             "failed": failed, "cut": 1}, now)


def run_to_end_batches(state, fail=()):
    """The batches of run_to_end, without its final state."""
    return run_to_end(state, fail)[0]


def hosts_of(batch):
    return [server.rsplit("-", 1)[0] for server in batch]


# --- max_unavailable ------------------------------------------------------------------

@pytest.mark.parametrize("spec, total, count", [
    ("25%", 24, 6), ("25%", 12, 3), ("25%", 7, 1), ("25%", 3, 1), ("1%", 24, 1), ("100%", 24, 24),
    (1, 24, 1), ("5", 24, 5), (" 30 % ", 10, 3), (50, 12, 12), ("33%", 10, 3),
])
def test_max_unavailable_is_a_count_or_a_share_rounded_down_never_below_one(spec, total, count):
    assert rolling.resolve_max_unavailable(spec, total) == count


@pytest.mark.parametrize("spec", [0, "0", "0%", "101%", "-1", "a quarter", "25.5%", True, None, ""])
def test_a_max_unavailable_that_cannot_move_a_roll_is_refused_naming_the_variable(spec):
    with pytest.raises(rolling.RollingError, match=r"^rolling_max_unavailable: "):
        rolling.resolve_max_unavailable(spec, 10)


# --- batches ---------------------------------------------------------------------------

def test_24_instances_at_25_percent_take_a_canary_and_four_batches_one_instance_per_host():
    batches, state = run_to_end(start(fleet(*[3] * 8), max_unavailable="25%"))
    assert [len(batch) for batch in batches] == [1, 6, 6, 6, 5]
    assert batches[0] == ["app1-9090"]
    assert all(len(set(hosts_of(batch))) == len(batch) for batch in batches), batches
    assert sorted(itertools.chain(*batches)) == sorted(i["server_name"] for i in fleet(*[3] * 8))
    assert state["stopped"] is None and state["pending"] == []
    assert state["planned"] == 5 == state["iterations"]


def test_12_instances_at_25_percent_take_as_many_batches_as_24():
    twelve = run_to_end_batches(start(fleet(3, 3, 3, 3), max_unavailable="25%"))
    assert [len(batch) for batch in twelve] == [1, 3, 3, 3, 2]


def test_one_at_a_time_is_one_batch_per_instance():
    batches = run_to_end_batches(start(fleet(*[3] * 8), max_unavailable=1))
    assert [len(batch) for batch in batches] == [1] * 24


def test_no_canary_starts_with_a_full_batch():
    batches = run_to_end_batches(start(fleet(3, 3, 3, 3), max_unavailable=3, canary=0))
    assert [len(batch) for batch in batches] == [3, 3, 3, 3]


def test_a_canary_larger_than_max_unavailable_is_cut_to_it():
    state = start(fleet(3, 3, 3, 3), max_unavailable=2, canary=5)
    assert state["canary"] == 2
    assert len(rolling.next_batch(state, 1000)["batch"]) == 2


def test_never_every_instance_of_a_host_in_one_batch():
    # Two hosts of two: even with room for four, each batch leaves each host one instance.
    batches = run_to_end_batches(start(fleet(2, 2), max_unavailable="100%", canary=0))
    assert batches == [["app1-9090", "app2-9090"], ["app1-9091", "app2-9091"]]


def test_hosts_of_one_instance_go_out_whole():
    batches = run_to_end_batches(start(fleet(1, 1, 1, 1, 1), max_unavailable="60%", canary=1))
    assert [len(batch) for batch in batches] == [1, 3, 1]


def test_odd_sizes():
    # 7 instances on hosts of 3, 3 and 1 at 50%: three at a time, at most two of a host of three.
    batches = run_to_end_batches(start(fleet(3, 3, 1), max_unavailable="50%", canary=1))
    assert [len(batch) for batch in batches] == [1, 3, 3]
    for batch in batches:
        assert max(hosts_of(batch).count(host) for host in set(hosts_of(batch))) <= 2


def test_a_host_of_many_instances_alone_still_keeps_one_in_rotation():
    batches = run_to_end_batches(start(fleet(5), max_unavailable="100%", canary=0))
    assert [len(batch) for batch in batches] == [4, 1]


def test_weights_bound_the_share_of_new_sessions_out_at_once():
    # Weights 200, 100, 50, 50 (total 400), 50%: the heavy one goes out alone, the others together.
    instances = fleet(2, 2, weights={"app1": [200, 100], "app2": [50, 50]})
    batches = run_to_end_batches(start(instances, max_unavailable="50%", canary=0))
    assert batches == [["app1-9090"], ["app2-9090", "app1-9091"], ["app2-9091"]]


def test_an_instance_heavier_than_the_limit_still_rolls_alone():
    instances = fleet(1, 1, 1, 1, weights={"app1": [256], "app2": [1], "app3": [1], "app4": [1]})
    batches, state = run_to_end(start(instances, max_unavailable="25%", canary=0))
    assert batches[0] == ["app1-9090"] and state["stopped"] is None


def test_zero_weight_instances_count_but_weigh_nothing():
    instances = fleet(2, 2, weights={"app1": [0, 0], "app2": [100, 100]})
    batches = run_to_end_batches(start(instances, max_unavailable="50%", canary=0))
    assert batches == [["app1-9090", "app2-9090"], ["app1-9091", "app2-9091"]]


def test_a_selection_by_server_names_rolls_those_only_and_shares_are_of_them():
    state = start(fleet(3, 3, 3, 3), max_unavailable="50%", canary=0,
                  servers=["app1-9090", "app2-9091", "app3-9092", "app4-9090"])
    assert state["selected"] == 4 and state["limits"]["count"] == 2
    batches = run_to_end_batches(state)
    assert sorted(itertools.chain(*batches)) == ["app1-9090", "app2-9091", "app3-9092", "app4-9090"]
    assert [len(batch) for batch in batches] == [2, 2]


def test_a_selection_by_limit_rolls_the_play_hosts_instances_only():
    state = rolling.start_roll(fleet(3, 3, 3, 3), {"kind": "restart", "max_unavailable": "25%"}, 0,
                               play_hosts=["app2", "app4"])
    assert state["selected"] == 6 and state["limits"]["count"] == 1
    assert {server.split("-")[0] for server in state["pending"]} == {"app2", "app4"}


def test_unknown_or_excluded_server_names_are_refused():
    with pytest.raises(rolling.RollingError, match=r"^rolling_restart_servers: app9-9090 is not an instance"):
        start(fleet(2), servers=["app9-9090"])
    with pytest.raises(rolling.RollingError, match=r"app2-9090 is on a host outside this run's --limit"):
        rolling.start_roll(fleet(2, 2), {"servers": ["app2-9090"]}, 0, play_hosts=["app1"])


@pytest.mark.parametrize("name, value", [("canary", -1), ("max_failed", "x"), ("deadline", -5),
                                         ("pause_after_canary", -1)])
def test_bad_roll_parameters_name_their_variable(name, value):
    with pytest.raises(rolling.RollingError, match=rf"^rolling_{name}: "):
        start(fleet(2), **{name: value})


# --- what is out of rotation already --------------------------------------------------

def test_instances_already_out_count_against_the_limit_and_pending_ones_go_first():
    # app3-9091 is in maint (an operator's), app2-9092 too and it is to be rolled: it goes first, free.
    state = rolling.start_roll(fleet(3, 3, 3, 3), {"max_unavailable": 3, "canary": 0,
                                                   "servers": ["app1-9090", "app2-9092", "app4-9090", "app4-9091"]},
                               0, unavailable=["app3-9091", "app2-9092"])
    first = rolling.next_batch(state, 0)["batch"]
    assert first == ["app2-9092", "app1-9090"]  # 3 out at most: app3-9091, app2-9092, and one more


def test_a_host_whose_other_instances_are_out_cannot_give_its_last_one():
    state = rolling.start_roll(fleet(2, 2), {"max_unavailable": 2, "canary": 0, "servers": ["app1-9090"]},
                               0, unavailable=["app1-9091"])
    stopped = rolling.next_batch(state, 0)
    assert stopped["stopped"]["why"] == "capacity"
    assert "out of rotation now: app1-9091" in stopped["stopped"]["reason"]


# --- failures, deadline ---------------------------------------------------------------

def test_a_failed_canary_stops_the_roll_whatever_max_failed_allows():
    batches, state = run_to_end(start(fleet(3, 3, 3, 3), max_unavailable=3, max_failed=5),
                                fail={"app1-9090"})
    assert batches == [["app1-9090"]]
    assert state["stopped"]["why"] == "canary"
    assert "app1-9090: it did not answer" in state["stopped"]["reason"]
    assert state["failed"] == {"app1-9090": "it did not answer"} and len(state["pending"]) == 11


def test_more_failures_than_max_failed_stop_the_roll():
    batches, state = run_to_end(start(fleet(3, 3, 3, 3), max_unavailable=3, max_failed=1),
                                fail={"app2-9090", "app4-9091"})
    assert state["stopped"]["why"] == "failed"
    assert "2 instance(s) failed, more than rolling_max_failed (1)" in state["stopped"]["reason"]
    assert state["out"] == ["app2-9090", "app4-9091"]


def test_failed_instances_left_out_shrink_later_batches_and_the_bound_has_room_for_it():
    state = start(fleet(3, 3, 3, 3), max_unavailable=3, max_failed=1)
    assert state["planned"] == 5 and state["iterations"] == 7
    batches, state = run_to_end(state, fail={"app2-9090"})
    assert state["stopped"] is None
    assert [len(batch) for batch in batches] == [1, 3, 2, 2, 2, 2]
    assert len(batches) <= state["iterations"]
    assert all(len(batch) + 1 <= 3 for batch in batches[2:])  # app2-9090 stays out: 2 more at most


def test_the_deadline_stops_the_roll_before_the_next_batch():
    state = start(fleet(3, 3, 3, 3), max_unavailable=3, deadline=15)
    state = rolling.next_batch(state, 1000)
    state = rolling.finish_batch(state, {"rolled": state["batch"]}, 1010)
    state = rolling.next_batch(state, 1010)
    state = rolling.finish_batch(state, {"rolled": state["batch"]}, 1020)
    stopped = rolling.next_batch(state, 1020)
    assert stopped["stopped"]["why"] == "deadline" and stopped["batch"] == []
    assert len(stopped["rolled"]) == 4 and len(stopped["pending"]) == 8


def test_an_instance_with_no_outcome_is_a_failure_not_a_success():
    state = rolling.next_batch(start(fleet(2, 2), max_unavailable=2, canary=0), 0)
    state = rolling.finish_batch(state, {"rolled": ["app1-9090"]}, 5)
    assert state["failed"] == {"app2-9090": "no outcome was recorded for it"}


# --- journal and resume ---------------------------------------------------------------

def test_a_rerun_resumes_with_what_is_not_rolled_failed_first_and_no_canary():
    state = rolling.next_batch(start(fleet(3, 3), max_unavailable=2, canary=0), 0)
    state = rolling.finish_batch(state, {"rolled": ["app1-9090"], "failed": {"app2-9090": "down"}}, 5)
    journal = rolling.journal_of(state, 5)
    assert journal["rolled"] == {"app1-9090": {"from": None}} and journal["failed"] == {"app2-9090": "down"}

    again = rolling.start_roll(fleet(3, 3), {"kind": "restart", "max_unavailable": 2}, 50,
                               journal=rolling.merge_journals([journal, None]), unavailable=["app2-9090"])
    assert again["resumed"]["rolled"] == 1 and again["resumed"]["failed"] == ["app2-9090"]
    assert again["canary"] == 0 and again["id"] == state["id"]
    assert "app1-9090" not in again["pending"] and again["rolled"] == ["app1-9090"]
    assert rolling.next_batch(again, 50)["batch"][0] == "app2-9090"


def test_another_kind_of_roll_or_resume_false_starts_over():
    state = rolling.next_batch(start(fleet(2, 2), max_unavailable=1), 0)
    journal = rolling.journal_of(rolling.finish_batch(state, {"rolled": state["batch"]}, 5), 5)
    upgrade = rolling.start_roll(fleet(2, 2), {"kind": "upgrade", "target": "2.0"}, 9, journal=journal)
    assert upgrade["resumed"] is None and len(upgrade["pending"]) == 4
    fresh = rolling.start_roll(fleet(2, 2), {"kind": "restart", "resume": False}, 9, journal=journal)
    assert fresh["resumed"] is None and len(fresh["pending"]) == 4


def test_an_upgrade_leaves_instances_already_on_the_target_alone():
    state = rolling.start_roll(fleet(2, 2), {"kind": "upgrade", "target": "2.0"}, 0, current=["app1-9090"])
    assert "app1-9090" not in state["pending"] and state["skipped_current"] == ["app1-9090"]


def test_journals_of_several_balancers_merge_on_the_newest_roll():
    old = {"format": 1, "id": "a", "key": "restart", "started": 1, "updated": 2, "rolled": {"x": {}}, "cut": 0}
    lb1 = {"format": 1, "id": "b", "key": "restart", "started": 10, "updated": 30,
           "rolled": {"y": {}}, "failed": {"z": "down"}, "cut": 2}
    lb2 = {"format": 1, "id": "b", "key": "restart", "started": 10, "updated": 20,
           "rolled": {"z": {}}, "failed": {}, "cut": 1}
    merged = rolling.merge_journals([old, lb1, lb2, None, {"format": 99}])
    assert merged["id"] == "b" and set(merged["rolled"]) == {"y", "z"} and merged["failed"] == {}
    assert merged["cut"] == 2
    assert rolling.merge_journals([None, None]) is None


# --- what it says ----------------------------------------------------------------------

def test_progress_line_names_the_batch_its_instances_and_the_time_left():
    state = rolling.next_batch(start(fleet(*[3] * 8), max_unavailable="25%"), 1000)
    line = rolling.progress_line(state, 1000)
    assert line.startswith("restart canary batch 1 of 5: 1 instance(s) on 1 host(s) (app1-9090); 0 of 24 rolled")
    assert "left" not in line
    state = rolling.finish_batch(state, {"rolled": state["batch"]}, 1012)
    state = rolling.next_batch(state, 1012)
    state = rolling.finish_batch(state, {"rolled": state["batch"]}, 1032)
    state = rolling.next_batch(state, 1032)
    line = rolling.progress_line(state, 1032)
    assert line.startswith("restart batch 3 of 5: 6 instance(s) on 6 host(s) (")
    assert "7 of 24 rolled; elapsed 32s, about 1m00s left" in line  # 3 batches of 20 s


def test_summary_table_counts_rolled_failed_cut_and_duration():
    state = run_to_end(start(fleet(3, 3, 3, 3), max_unavailable=3, max_failed=0), fail={"app3-9090"})[1]
    lines = rolling.summary_lines(state, state["started"] + 125)
    assert lines[0].startswith("Rolling restart: stopped: 1 instance(s) failed")
    text = "\n".join(lines)
    assert "rolled                    3" in text
    assert "failed (out of rotation)  1 (app3-9090)" in text
    assert "not rolled                8" in text
    assert "connections cut           2" in text
    assert "duration                  2m05s (125.0 s)" in text
    hint = rolling.resume_hint(state)
    assert "app3-9090" in hint and "resumes with the 9 instance(s)" in hint


def test_durations():
    assert [rolling.duration(s) for s in (0, 59.4, 61, 3600, 3725)] == ["0s", "59s", "1m01s", "1h00m", "1h02m"]


# --- a batch step by step, from what the modules returned ---------------------------------------

def lb_result(lb, servers, failed=(), scur=0, reason="no request in flight or queued"):
    """A haproxy_server result with `servers:` as a carrier host registered it (one loop item)."""
    return {"lb": lb, "changed": True, "failed": bool(failed), "failed_servers": list(failed),
            "servers": [{"server": server, "after": {"scur": scur},
                         "wait": {"reached": server not in failed,
                                  "reason": reason if server not in failed else "timed out after 30 s: 2 request(s)"}}
                        for server in servers]}


def carried(*results):
    return {"changed": True, "results": list(results), "msg": "All items completed"}


SKIPPED = {"skipped": True, "results": []}


def test_a_batch_goes_out_restarts_comes_up_and_back_in_rotation():
    state = rolling.plan(fleet(3, 3), {"kind": "restart", "max_unavailable": 2, "canary": 0}, 0)
    assert state["batch"] == ["app1-9090", "app2-9090"] and state["progress"].startswith("restart batch 1 of 3")
    state = rolling.advance(state, "out", [carried(lb_result("lb1", state["batch"], scur=1)),
                                           carried(lb_result("lb2", state["batch"], scur=2)), SKIPPED], 1)
    assert state["restart_on"] == {
        "app1": [{"server": "app1-9090", "port": 9090, "address": "10.0.0.1", "unit": "wt@9090.service"}],
        "app2": [{"server": "app2-9090", "port": 9090, "address": "10.0.0.2", "unit": "wt@9090.service"}]}
    restarts = {"app1": {"instances": [{"server": "app1-9090", "healthy": True}]},
                "app2": {"instances": [{"server": "app2-9090", "healthy": True}]}, "app3": {"skipped": True}}
    state = rolling.advance(state, "restart", restarts, 5)
    assert state["bring_up"] == ["app1-9090", "app2-9090"]
    state = rolling.advance(state, "done", [carried(lb_result("lb1", state["bring_up"]))], 9)
    assert state["keep_out"] == []
    assert state["rolled"] == ["app1-9090", "app2-9090"] and state["cut"] == 6
    assert state["batch"] == ["app1-9091", "app2-9091"] and state["journal"]["rolled"] == {
        "app1-9090": {"from": None}, "app2-9090": {"from": None}}
    # Where the batch's 9 s went, step by step, in the summary's table.
    assert state["batches"][0]["steps"] == {"out": 1.0, "restart": 4.0, "back": 4.0}
    header, row = state["summary"][-2:]
    assert header.split() == ["batch", "instances", "seconds", "out", "restart", "back", "cut", "failed"]
    assert row.split() == ["1", "2", "9.0", "1.0", "4.0", "4.0", "6", "-"]


def test_an_instance_failing_a_step_goes_no_further_and_stays_out():
    state = rolling.plan(fleet(3, 3), {"kind": "restart", "max_unavailable": 2, "canary": 0, "max_failed": 3}, 0)
    state = rolling.advance(state, "out", [carried(lb_result("lb1", state["batch"], failed=["app2-9090"]))], 1)
    assert list(state["restart_on"]) == ["app1"]
    assert state["batch_failed"] == {"app2-9090": "requests still in flight on lb1: timed out after 30 s: 2 request(s)"}
    state = rolling.advance(state, "restart",
                            {"app1": {"failed": True, "unreachable": True, "msg": "ssh: timed out"}}, 2)
    assert state["bring_up"] == []
    assert state["batch_failed"]["app1-9090"] == "app1 did not report the restart: ssh: timed out"
    state = rolling.advance(state, "done", [], 4)
    assert state["keep_out"] == ["app1-9090", "app2-9090"]
    assert sorted(state["failed"]) == ["app1-9090", "app2-9090"] and state["out"] == ["app1-9090", "app2-9090"]
    # Two failed instances out of rotation use up rolling_max_unavailable: the floor stops the roll.
    assert state["stopped"]["why"] == "capacity"


def test_a_balancer_that_fails_takes_the_whole_batch_with_it():
    state = rolling.plan(fleet(2, 2), {"kind": "restart", "max_unavailable": 2, "canary": 0}, 0)
    failure = {"lb": "lb2", "failed": True, "msg": f"HAProxy runtime socket {DEFAULT_SOCKET} does not exist"}
    state = rolling.advance(state, "out", [carried(failure)], 1)
    assert state["restart_on"] == {}
    assert set(state["batch_failed"]) == {"app1-9090", "app2-9090"}
    assert state["batch_failed"]["app1-9090"].startswith("lb2: HAProxy runtime socket")


def test_the_canary_watch_stops_the_roll_and_keeps_the_canary_out():
    state = rolling.plan(fleet(2, 2), {"kind": "restart", "max_unavailable": 2, "pause_after_canary": 60}, 0)
    state = rolling.advance(state, "out", [carried(lb_result("lb1", state["batch"]))], 1)
    state = rolling.advance(state, "restart", {"app1": {"instances": [{"server": "app1-9090", "healthy": True}]}}, 2)
    state = rolling.advance(state, "done", [carried(lb_result("lb1", state["bring_up"]))], 4)
    assert state["watch"] == ["app1-9090"] and state["batch"]
    watched = {"lb": "lb1", "failed": True, "failed_servers": ["app1-9090"], "servers": [
        {"server": "app1-9090", "wait": {"reached": False, "reason": "was up for 12.0 s, then: status DOWN"}}]}
    state = rolling.advance(state, "watch", [carried(watched)], 20)
    assert state["stopped"]["why"] == "canary" and state["keep_out"] == ["app1-9090"] and state["batch"] == []
    assert "did not stay up on lb1: was up for 12.0 s" in state["stopped"]["reason"]
    assert state["hint"].startswith("Instances left out of rotation (maint), which is safe: app1-9090.")


def test_an_upgrade_moves_each_instance_to_its_release_and_a_rollback_back_to_the_one_before():
    state = rolling.plan(fleet(2, 2), {"kind": "upgrade", "target": "2.0", "max_unavailable": 2}, 0,
                         current=["app2-9091"])
    assert state["skipped_current"] == ["app2-9091"] and state["selected"] == 4
    state = rolling.advance(state, "out", [carried(lb_result("lb1", state["batch"]))], 1)
    assert state["restart_on"]["app1"][0]["release"] == "2.0"
    failed = {"app1": {"instances": [{"server": "app1-9090", "healthy": False, "reason": "exit status 1",
                                      "previous_release": "1.0"}]}}
    state = rolling.advance(state, "restart", failed, 2)
    state = rolling.advance(state, "done", [], 4)
    assert state["stopped"]["why"] == "canary" and state["previous"] == {"app1-9090": "1.0"}

    back = rolling.plan_rollback(fleet(2, 2), state, {"max_unavailable": 2}, 5)
    assert (back["kind"], back["target"], back["batch"], back["canary"]) == ("rollback", "1.0", ["app1-9090"], 0)
    assert back["summary"][0] == "Rollback to 1.0: complete" or back["summary"][0].startswith("Rollback to 1.0")
    back = rolling.advance(back, "out", [], 6)
    assert back["restart_on"]["app1"][0]["release"] == "1.0"


def test_nothing_to_roll_back_when_no_previous_release_was_recorded():
    state = rolling.plan(fleet(2), {"kind": "upgrade", "target": "2.0"}, 0)
    state = rolling.stop(state, "canary", "x")
    back = rolling.plan_rollback(fleet(2), state, {}, 1)
    assert back["batch"] == [] and back["plan"][0].startswith("rollback: nothing the upgrade moved can go back")


def test_instances_out_of_rotation_on_any_balancer_count_as_unavailable():
    row = {"backend": "wt", "own_backend": "wt.x", "admin_state": "ready", "operational_state": "running"}
    info = [carried({"lb": "lb1", "servers": [dict(row, server="a"), dict(row, server="b", admin_state="drain"),
                                              {"backend": "static", "server": "c", "admin_state": "maint"}]}),
            carried({"lb": "lb2", "servers": [dict(row, server="a", operational_state="stopped"),
                                              dict(row, server="d")]})]
    assert rolling.unavailable_servers(info) == ["a", "b"]


def test_results_of_loops_skips_and_hosts_are_flattened():
    found = rolling.ansible_results({"h1": carried({"x": 1}, {"skipped": True}), "h2": SKIPPED, "h3": {"y": 2}})
    assert found == [{"x": 1, "_host": "h1"}, {"y": 2, "_host": "h3"}]
    assert rolling.ansible_results(None) == []


def test_instances_down_on_every_balancer_outside_the_roll_are_left_alone_and_not_counted():
    """A huge inventory whose other hosts do not exist: HAProxy sees their instances down (checks
    fail) but in rotation; they are no capacity, so they neither count against the limit nor stop
    the roll, and the plan and summary say how many there were."""
    row = {"backend": "wt", "own_backend": "wt.x", "admin_state": "ready", "operational_state": "running"}
    instances = fleet(3, 3, 3, 3)
    dead = [instance["server_name"] for instance in instances if instance["host"] in ("app3", "app4")]
    info = [carried({"servers": [dict(row, server=name, operational_state="stopped" if name in dead else "running")
                                 for name in (instance["server_name"] for instance in instances)]})
            for dummy in ("lb1", "lb2")]
    assert rolling.down_servers(info) == sorted(dead) and rolling.unavailable_servers(info) == []
    state = rolling.plan(instances, {"kind": "restart", "max_unavailable": "50%", "canary": 0,
                                     "servers": [i["server_name"] for i in instances if i["host"] in ("app1", "app2")]},
                         0, info=info)
    assert state["out"] == [] and state["down"] == sorted(dead) and len(state["batch"]) == 3
    assert "6 instance(s) outside the roll are down on every load balancer (app3-9090, app3-9091, app3-9092, " \
           "app4-9090, app4-9091 and 1 more): no capacity, not counted against the limit, left alone" in state["plan"]
    assert "  down, not in the roll     6" in state["summary"]


def test_an_instance_of_the_roll_that_is_down_goes_first_and_counts_until_rolled():
    row = {"backend": "wt", "own_backend": "wt.x", "admin_state": "ready", "operational_state": "running"}
    info = [carried({"servers": [dict(row, server="app2-9091", operational_state="stopped")]})]
    state = rolling.plan(fleet(2, 2), {"kind": "restart", "max_unavailable": 1, "canary": 0}, 0, info=info)
    assert state["out"] == ["app2-9091"] and state["down"] == [] and state["batch"] == ["app2-9091"]


def test_down_on_one_balancer_only_is_out_of_rotation():
    row = {"backend": "wt", "own_backend": "wt.x", "admin_state": "ready", "operational_state": "stopped"}
    info = [carried({"servers": [dict(row, server="a")]}),
            carried({"servers": [dict(row, server="a", operational_state="running")]})]
    assert rolling.unavailable_servers(info) == ["a"] and rolling.down_servers(info) == []


def test_async_jobs_stand_for_their_last_result_named_after_the_launch_loop_item():
    launched = {"results": [
        {"ansible_job_id": "j1", "started": 1, "finished": 0, "ansible_loop_var": "lb", "lb": "lb1"},
        {"unreachable": True, "msg": "ssh: no route", "ansible_loop_var": "lb", "lb": "lb2"},
        {"ansible_job_id": "j3", "started": 1, "finished": 0, "ansible_loop_var": "lb", "lb": "lb3"},
        {"ansible_job_id": "j4", "started": 1, "finished": 0, "ansible_loop_var": "lb", "lb": "lb4"}]}
    collected = {"results": [
        {"ansible_job_id": "j1", "finished": 1, "servers": [], "ansible_loop_var": "job",
         "job": launched["results"][0]},
        {"ansible_job_id": "j3", "finished": 0, "attempts": 40, "ansible_loop_var": "job",
         "job": launched["results"][2]}]}
    found = rolling.ansible_results([launched, collected])
    assert [(result["_host"], bool(result.get("failed")), result.get("unreachable")) for result in found] == [
        ("lb1", False, None), ("lb2", False, True), ("lb3", True, None), ("lb4", True, None)]
    assert found[3]["msg"] == "its job j4 never reported an end"


def test_a_restart_whose_host_did_not_report_names_the_host_from_the_loop():
    state = rolling.plan(fleet(2, 2), {"kind": "restart", "max_unavailable": 2, "canary": 0}, 0)
    state = rolling.advance(state, "out", [carried(lb_result("lb1", state["batch"]))], 1)
    launched = {"results": [{"ansible_job_id": "j1", "started": 1, "finished": 0, "ansible_loop_var": "on",
                             "on": "app1"},
                            {"unreachable": True, "msg": "ssh: timed out", "ansible_loop_var": "on", "on": "app2"}]}
    collected = {"results": [{"ansible_job_id": "j1", "finished": 1, "ansible_loop_var": "job",
                              "job": launched["results"][0],
                              "instances": [{"server": "app1-9090", "healthy": True}]}]}
    state = rolling.advance(state, "restart", [launched, collected], 5)
    assert state["bring_up"] == ["app1-9090"]
    assert state["batch_failed"]["app2-9090"] == "app2 did not report the restart: ssh: timed out"

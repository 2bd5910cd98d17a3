"""Waiting for servers to drain, be quiet or be up."""

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import errors, parsing, servers, waiting
from haproxy_replies import FakeClock, many, sequence, view_of, views


def test_drained_conditions(captured):
    busy = views(captured, "show_servers_state_drain.txt", "show_stat_drain_busy.txt")
    assert waiting.drained(busy["app1-9090"], 2) == (waiting.WAITING, "1 session(s) active and 0 queued")
    assert waiting.drained(busy["app1-9091"], 2)[0] == waiting.HOPELESS  # still ready: it never drains
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")["app1-9090"]
    assert waiting.drained(idle, 2)[0] == waiting.REACHED
    assert waiting.drained(idle, 60) == (waiting.WAITING,
                                         f"last session assigned {idle.lastsess} s ago, waiting for 60 s of quiet")
    never = views(captured, "show_servers_state_drain.txt", "show_stat_drain.txt")["app1-9090"]
    assert waiting.drained(never, 60) == (waiting.REACHED, "no active or queued session, none ever assigned")
    maint = views(captured, "show_servers_state_maint.txt", "show_stat_maint.txt")["app1-9090"]
    assert waiting.drained(maint, 2)[0] == waiting.REACHED


def test_up_conditions(captured):
    assert waiting.up(view_of(captured)) == (waiting.REACHED, "status UP, last check L7OK")
    # Just out of maint HAProxy calls it up at reduced health ("UP 1/2") before any check ran.
    rejoining = views(captured, "show_servers_state_maint_drain.txt", "show_stat_rejoining.txt")["app1-9090"]
    assert rejoining.status == "UP 1/2"
    assert waiting.up(rejoining) == (waiting.WAITING, "status UP 1/2: health 2/3, last check L7OK")
    failing = views(captured, "show_servers_state.txt", "show_stat_check_failing.txt")["app1-9090"]
    failing = servers.ServerView(**{**failing.as_dict(), "operational_state": "stopped"})
    assert waiting.up(failing) == (waiting.WAITING, "status DOWN, last check L7STS (Layer7 wrong status)")
    assert waiting.up(view_of(captured, "app2-9090"))[0] == waiting.WAITING
    maint = views(captured, "show_servers_state_maint.txt", "show_stat_maint.txt")["app1-9090"]
    assert waiting.up(maint)[0] == waiting.HOPELESS
    draining = views(captured, "show_servers_state_drain.txt", "show_stat_drain.txt")["app1-9090"]
    assert waiting.up(draining) == (waiting.REACHED, "status DRAIN, last check L7OK")


def test_waits_that_cannot_succeed(captured):
    assert "can never drain" in waiting.wait_conflict("drained", "ready")
    assert "can never be quiet: set state=drain (or maint) with wait=quiet" in waiting.wait_conflict("quiet", "ready")
    assert "can never be seen up" in waiting.wait_conflict("up", "maint")
    pairs = [("drained", "drain"), ("drained", "maint"), ("quiet", "maint"), ("up", "ready"), ("up", "drain"),
             ("none", "ready")]
    assert [waiting.wait_conflict(c, s) for c, s in pairs] == [None] * 6
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")["app1-9090"]
    assert waiting.wait_check("drained", 2)(idle)[0] == waiting.REACHED
    assert waiting.wait_check("drained", 600)(idle)[0] == waiting.WAITING
    assert waiting.wait_check("up", 2)(idle) == waiting.up(idle)
    with pytest.raises(errors.RuntimeApiError, match="can wait for drained, quiet or up, not 'none'"):
        waiting.wait_check("none", 2)


def test_wait_until_reached(captured):
    busy = views(captured, "show_servers_state_drain.txt", "show_stat_drain_busy.txt")["app1-9090"]
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")["app1-9090"]
    clock = FakeClock()
    outcome = waiting.wait_for("drained", sequence(busy, busy, idle), lambda view: waiting.drained(view, 2),
                               timeout=60, interval=5, clock=clock, sleep=clock.sleep)
    assert (outcome.reached, outcome.polls, outcome.elapsed, clock.sleeps) == (True, 3, 10.0, [5, 5])
    assert outcome.observed["scur"] == 0 and outcome.reason.startswith("no active or queued session")


def test_wait_times_out_with_the_last_values(captured):
    busy = views(captured, "show_servers_state_drain.txt", "show_stat_drain_busy.txt")["app1-9090"]
    clock = FakeClock()
    outcome = waiting.wait_for("drained", sequence(busy), lambda view: waiting.drained(view, 2),
                               timeout=12, interval=5, clock=clock, sleep=clock.sleep)
    assert (outcome.reached, outcome.polls, outcome.elapsed, clock.sleeps) == (False, 4, 12.0, [5, 5, 2])
    assert outcome.reason == "timed out after 12 s: 1 session(s) active and 0 queued"
    assert outcome.observed["scur"] == 1


def test_wait_stops_at_once_when_hopeless(captured):
    clock = FakeClock()
    outcome = waiting.wait_for("drained", sequence(view_of(captured)), lambda view: waiting.drained(view, 2),
                               timeout=60, interval=1, clock=clock, sleep=clock.sleep)
    assert (outcome.reached, outcome.polls, clock.sleeps) == (False, 1, [])
    assert outcome.reason.startswith("will never be drained: it is in ready state")


def test_wait_rides_out_a_reload_but_not_a_lost_server(captured):
    clock = FakeClock()
    refused = errors.SocketConnectionRefused("nothing accepts connections")
    outcome = waiting.wait_for("up", sequence(refused, refused, view_of(captured)), waiting.up,
                               timeout=60, interval=1, clock=clock, sleep=clock.sleep)
    assert (outcome.reached, outcome.polls) == (True, 3)
    outcome = waiting.wait_for("up", sequence(refused), waiting.up, timeout=2, interval=1, clock=clock,
                               sleep=clock.sleep)
    assert (outcome.reached, outcome.observed, outcome.reason) == (False, None,
                                                                   "timed out after 2 s: nothing accepts connections")
    gone = errors.UnknownServer("backend 'wt' has no server 'app1-9090'")
    outcome = waiting.wait_for("up", sequence(gone), waiting.up, timeout=60, interval=1, clock=clock, sleep=clock.sleep)
    assert (outcome.reached, outcome.polls) == (False, 1)
    assert outcome.reason == "will never be up: backend 'wt' has no server 'app1-9090'"


def test_wait_for_servers_waits_for_all_at_once_and_each_stops_when_it_is_done(captured):
    busy = views(captured, "show_servers_state_drain.txt", "show_stat_drain_busy.txt")
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")
    both_busy = {"a": busy["app1-9090"], "b": busy["app1-9090"]}
    a_idle = {"a": idle["app1-9090"], "b": busy["app1-9090"]}
    clock = FakeClock()
    check = waiting.wait_check("drained", 2)
    outcomes = waiting.wait_for_servers("drained", many(both_busy, a_idle), ["a", "b"], check, timeout=6, interval=2,
                                        clock=clock, sleep=clock.sleep)
    assert (outcomes["a"].reached, outcomes["a"].polls, outcomes["a"].elapsed) == (True, 2, 2.0)
    assert (outcomes["b"].reached, outcomes["b"].polls, outcomes["b"].elapsed) == (False, 4, 6.0)
    assert outcomes["b"].reason == "timed out after 6 s: 1 session(s) active and 0 queued"
    assert outcomes["b"].observed["scur"] == 1
    assert clock.sleeps == [2, 2, 2]


def test_hold_needs_the_condition_to_last_and_a_relapse_ends_the_wait(captured):
    up_view = view_of(captured)
    down = views(captured, "show_servers_state.txt", "show_stat_check_failing.txt")["app1-9090"]
    down = servers.ServerView(**{**down.as_dict(), "operational_state": "stopped"})
    clock = FakeClock()
    steady = waiting.wait_for_servers("up", many({"c": up_view}), ["c"], waiting.wait_check("up", 0), timeout=60,
                                      interval=1, hold=3, clock=clock, sleep=clock.sleep)["c"]
    assert (steady.reached, steady.elapsed, steady.reason) == (True, 3.0, "status UP, last check L7OK, for 3 s")
    clock = FakeClock()
    checking = servers.ServerView(**{**up_view.as_dict(), "check_result": "unknown", "status": "UP 1/2"})
    flapped = waiting.wait_for_servers("up", many({"c": up_view}, {"c": checking}, {"c": down}), ["c"],
                                       waiting.wait_check("up", 0), timeout=60, interval=1, hold=5,
                                       keep=waiting.keep_check("up", 0), clock=clock, sleep=clock.sleep)["c"]
    assert (flapped.reached, flapped.elapsed) == (False, 2.0)
    assert flapped.reason.startswith("was up for 2.0 s, then: status DOWN")


def test_wait_for_servers_rides_out_a_reload(captured):
    clock = FakeClock()
    refused = errors.SocketConnectionRefused("nothing accepts connections")
    outcomes = waiting.wait_for_servers("up", many(refused, {"x": view_of(captured)}), ["x"],
                                        waiting.wait_check("up", 0), timeout=60, interval=1, clock=clock,
                                        sleep=clock.sleep)
    assert outcomes["x"].reached and outcomes["x"].polls == 2


def test_the_poller_reads_streams_only_when_quiet_needs_them(captured):
    class Streams:
        reads = 0

        def __call__(self):
            self.reads += 1
            return parsing.parse_streams(captured("show_sess_all_tunnels.txt"))

    def reader(views):
        return lambda names: {name: views[name] for name in names}

    busy = views(captured, "show_servers_state_tunnels.txt", "show_stat_tunnels.txt")
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")
    streams = Streams()
    assert waiting.server_poller(reader(busy), streams, "quiet")(["app1-9090"]) == {
        "app1-9090": (busy["app1-9090"], parsing.StreamCounts(1, 2))}
    assert waiting.server_poller(reader(busy), streams, "drained")(["app1-9090"])["app1-9090"][1] is None
    streams = Streams()
    assert waiting.server_poller(reader(idle), streams, "quiet")(["app1-9090"])["app1-9090"][1] is None
    assert streams.reads == 0

"""What it takes to bring a server or an instance to a state and weight."""

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import changes, errors, servers
from haproxy_replies import view_of


def test_nothing_to_do_when_already_there(captured):
    change = changes.change_for(view_of(captured), state="ready", weight="100")
    assert change.commands == () and not change.changed
    assert changes.change_for(view_of(captured)).commands == ()
    assert changes.change_for(view_of(captured), weight="100%").commands == ()


def test_weight_before_state_and_both_on_the_placement_server(captured):
    change = changes.change_for(view_of(captured, "app2-9090"), state="drain", weight="200%")
    assert change.commands == ("set server wt/app2-9090 weight 100", "set server wt/app2-9090 state drain")
    assert (change.before, change.after) == ({"admin_state": "ready", "weight": 50},
                                             {"admin_state": "drain", "weight": 100})


def test_a_rolling_restart_sends_each_state_where_it_belongs(captured):
    ready = view_of(captured)
    drained = view_of(captured, state="show_servers_state_drain.txt", stat="show_stat_drain.txt")
    maint = view_of(captured, state="show_servers_state_maint.txt", stat="show_stat_maint.txt")
    rejoined = view_of(captured, state="show_servers_state_rejoined.txt", stat="show_stat_maint_drain.txt")
    assert changes.change_for(ready, state="drain").commands == ("set server wt/app1-9090 state drain",)
    assert changes.change_for(drained, state="maint").commands == ("set server wt.app1-9090/app1-9090 state maint",)
    assert changes.change_for(maint, state="drain").commands == ("set server wt.app1-9090/app1-9090 state ready",)
    assert changes.change_for(rejoined, state="ready").commands == ("set server wt/app1-9090 state ready",)
    assert changes.change_for(maint, state="ready").commands == (
        "set server wt/app1-9090 state ready", "set server wt.app1-9090/app1-9090 state ready")
    assert changes.change_for(ready, state="maint").commands == ("set server wt.app1-9090/app1-9090 state maint",)
    assert changes.change_for(maint, state="maint").commands == ()


def test_leaving_maint_of_an_instance_disabled_in_the_configuration(captured):
    change = changes.change_for(view_of(captured, "app2-9091"), state="ready")
    assert change.commands == ("set server wt.app2-9091/app2-9091 state ready",)


def test_a_plain_server_gets_its_own_commands(captured):
    solo = view_of(captured, "solo")
    assert changes.change_for(solo, state="drain", weight="5").commands == (
        "set server static/solo weight 5", "set server static/solo state drain")


@pytest.mark.parametrize("spec, initial, expected", [
    (0, 100, 0), ("256", 1, 256), ("50%", 100, 50), ("33%", 50, 16), ("1000%", 100, 256), ("0%", 100, 0),
    (" 7 ", 100, 7), ("100%", 3, 3)])
def test_target_weight(spec, initial, expected):
    assert changes.target_weight(spec, initial) == expected


@pytest.mark.parametrize("spec", ["257", "-1", "half", "50 %%", "", "1.5"])
def test_bad_weights(spec):
    with pytest.raises(errors.RuntimeApiError, match="weight"):
        changes.target_weight(spec, 100)


def test_bad_state(captured):
    with pytest.raises(errors.RuntimeApiError, match="ready, drain, maint"):
        changes.change_for(view_of(captured), state="disabled")


def test_unreached_explains_inherited_states(captured):
    server = view_of(captured, "solo")
    change = changes.change_for(server, state="drain")
    assert changes.unreached(view_of(captured, "solo", "show_servers_state_plain_drain.txt"), change) is None
    tracked = servers.ServerView(**{**server.as_dict(), "admin_flags": ("IMAINT",), "admin_mask": 0x02,
                                    "admin_state": "maint", "tracks": None})
    problem = changes.unreached(tracked, changes.change_for(server, state="ready", weight="20"))
    assert problem == ("static/solo: it is still in maint (maintenance inherited from a tracked server), which "
                       "`set server ... state ready` cannot override and its weight is 10, not 20")
    instance = view_of(captured)
    assert changes.unreached(view_of(captured, state="show_servers_state_drain.txt", stat="show_stat_drain.txt"),
                             changes.change_for(instance, state="drain")) is None

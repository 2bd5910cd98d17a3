"""One row per instance: the views the modules report, from captured replies."""

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import changes, servers, waiting
from haproxy_replies import INSTANCES, raw_view, raw_views, views


def test_each_instance_is_one_row_and_its_own_backend_is_left_out(captured):
    folded = servers.fold_instances(raw_views(captured))
    assert [(view.backend, view.server, view.own_backend) for view in folded] == \
        [("wt", name, f"wt.{name}") for name in INSTANCES] + [("static", "solo", None)]
    assert folded[0].as_dict()["tracks"] == "wt.app1-9090/app1-9090"
    assert "placement" not in folded[0].as_dict() and "own" not in folded[0].as_dict()


def test_a_tracking_server_of_another_name_is_not_an_instance():
    server = servers.ServerView(backend="b", server="x", address=None, admin_state="ready", admin_flags=(),
                                admin_mask=0,
                                operational_state="running", status="UP", check_status=None, check_description=None,
                                check_result="unknown", checks_enabled=False, check_health=None, check_rise=None,
                                check_fall=None, weight=1, initial_weight=1, scur=0, qcur=0, stot=0, lastsess=-1)
    tracker = servers.ServerView(**{**server.as_dict(), "backend": "a", "server": "y", "tracks": ("b", "x")})
    assert servers.fold_instances([server, tracker]) == [server, tracker]


def test_initial_state(captured):
    servers = views(captured)
    healthy = servers["app1-9090"]
    assert (healthy.admin_state, healthy.admin_flags, healthy.operational_state, healthy.status) == \
        ("ready", (), "running", "UP")
    assert (healthy.check_status, healthy.check_result, healthy.checks_enabled) == ("L7OK", "passed", True)
    assert (healthy.check_health, healthy.check_rise, healthy.check_fall) == (3, 2, 2)
    # Weight of the placement server (new sessions), address of the checked one.
    assert (healthy.weight, healthy.initial_weight, healthy.scur, healthy.qcur, healthy.lastsess) == \
        (100, 100, 0, 0, -1)
    assert healthy.address == raw_view(captured, "wt.app1-9090", "app1-9090").address

    dead = servers["app2-9090"]
    assert (dead.admin_state, dead.operational_state, dead.status, dead.check_status, dead.weight) == \
        ("ready", "stopped", "DOWN", "L4CON", 50)
    assert dead.check_description == "Layer4 connection problem"

    disabled = servers["app2-9091"]
    assert (disabled.admin_state, disabled.admin_flags, disabled.status) == ("maint", ("FMAINT", "CMAINT"), "MAINT")
    assert disabled.checks_enabled is False and disabled.check_status is None


def test_unchecked_plain_server(captured):
    solo = views(captured)["solo"]
    assert (solo.status, solo.checks_enabled, solo.weight, solo.own_backend) == ("no check", False, 10, None)
    assert waiting.up(solo)[0] == waiting.REACHED


def test_drain_is_set_on_the_placement_server_only(captured):
    state, stat = "show_servers_state_drain.txt", "show_stat_drain.txt"
    drained = views(captured, state, stat)["app1-9090"]
    assert (drained.admin_state, drained.admin_flags, drained.status) == ("drain", ("FDRAIN",), "DRAIN")
    own = raw_view(captured, "wt.app1-9090", "app1-9090", state, stat)
    assert (own.admin_state, own.status) == ("ready", "UP")  # its sessions still reach it


def test_maint_is_set_on_the_own_server_and_inherited_by_the_placement_server(captured):
    state, stat = "show_servers_state_maint.txt", "show_stat_maint.txt"
    maint = views(captured, state, stat)["app1-9090"]
    assert (maint.admin_state, maint.admin_flags, maint.status, maint.operational_state) == \
        ("maint", ("FMAINT", "FDRAIN"), "MAINT", "stopped")
    placement = raw_view(captured, "wt", "app1-9090", state, stat)
    assert (placement.admin_flags, placement.status) == (("IMAINT", "FDRAIN"), "MAINT (via wt.app1-9090/app1-9090)")


def test_leaving_maint_for_drain_rejoins_through_health_checks(captured):
    rejoining = views(captured, "show_servers_state_maint_drain.txt", "show_stat_rejoining.txt")["app1-9090"]
    assert (rejoining.admin_state, rejoining.admin_flags, rejoining.status) == ("drain", ("FDRAIN",), "UP 1/2")
    assert waiting.up(rejoining)[0] == waiting.WAITING
    rejoined = views(captured, "show_servers_state_rejoined.txt", "show_stat_maint_drain.txt")["app1-9090"]
    assert waiting.up(rejoined) == (waiting.REACHED, "status DRAIN, last check L7OK")


def test_draining_both_servers_the_way_community_general_does_is_still_drain(captured):
    both = views(captured, "show_servers_state_drain_both.txt", "show_stat_drain_both.txt")["app1-9091"]
    assert (both.admin_state, both.admin_flags, both.status) == ("drain", ("FDRAIN",), "DRAIN")
    assert changes.change_for(both, state="ready").commands == (
        "set server wt/app1-9091 state ready", "set server wt.app1-9091/app1-9091 state ready")
    # Our drain keeps the instance's own server ready, so this is the one command needed.
    assert changes.change_for(both, state="drain").commands == ("set server wt.app1-9091/app1-9091 state ready",)


def test_configured_disabled_instance_enabled_keeps_only_cmaint_and_is_ready(captured):
    servers = views(captured, "show_servers_state_enabled_from_config.txt", "show_stat_enabled_from_config.txt")
    server = servers["app2-9091"]
    assert (server.admin_mask, server.admin_flags, server.admin_state, server.status) == (4, ("CMAINT",), "ready", "UP")


def test_plain_server_drain_and_maint(captured):
    def solo(state):
        return views(captured, state)["solo"]

    assert (solo("show_servers_state_plain_drain.txt").admin_state,
            solo("show_servers_state_plain_drain.txt").admin_flags) == ("drain", ("FDRAIN",))
    assert (solo("show_servers_state_plain_maint.txt").admin_state,
            solo("show_servers_state_plain_maint.txt").admin_flags) == ("maint", ("FMAINT",))
    # One `state drain` is enough to leave maint for drain (no ready window in between).
    assert captured("reply_set_state_drain_from_maint.txt") == "\n"
    assert solo("show_servers_state_plain_maint_drain.txt").admin_flags == ("FDRAIN",)
    # The old `enable server` clears drain as well.
    assert solo("show_servers_state_plain_after_enable.txt").admin_flags == ()


def test_weights_are_the_placement_servers(captured):
    servers = views(captured, "show_servers_state_weight.txt", "show_stat_weight.txt")
    assert servers["app1-9091"].weight == 40
    # `weight 33%` on a server configured with weight 50: HAProxy truncates 16.5 to 16.
    assert (servers["app2-9090"].weight, servers["app2-9090"].initial_weight) == (16, 50)
    assert changes.target_weight("33%", 50) == 16
    zero = views(captured, "show_servers_state_enabled_from_config.txt", "show_stat_weight_zero.txt")["app1-9091"]
    assert (zero.weight, zero.status) == (0, "UP")


def test_sessions_and_queue_of_both_servers_while_draining(captured):
    busy = views(captured, "show_servers_state_drain.txt", "show_stat_drain_busy.txt")
    assert (busy["app1-9090"].scur, busy["app1-9090"].status) == (1, "DRAIN")
    assert (busy["app1-9091"].scur, busy["app1-9091"].qcur) == (1, 1)  # maxconn 1: the second request queues
    idle = views(captured, "show_servers_state_drain.txt", "show_stat_drain_idle.txt")["app1-9090"]
    assert (idle.scur, idle.qcur, idle.stot) == (0, 0, 1)
    assert idle.lastsess >= 3

"""wt_instances without Ansible or systemd: what systemd says, what to do about it, and the host side
(files, trees, systemctl) against a temporary directory and a scripted command runner."""

import os
import socket
import time
from pathlib import Path

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils import host_files
from ansible_collections.wtstack.fleet.plugins.module_utils import wt_instances as wi

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "systemd"
ROOT = dict(mode=0o644, owner="root", group="root")


def wanted(*ports, settings=b"s\n"):
    return [wi.Wanted(port, "198.51.100.21", settings) for port in ports]


def running(started_at=1000, enabled=True):
    return wi.UnitState(loaded=True, active=True, enabled=enabled, started_at=started_at)


def settings_file(content=b"s\n", ctime=900.0, **attributes):
    return wi.FileState(content, attributes.get("mode", 0o644), attributes.get("owner", "root"),
                        attributes.get("group", "root"), ctime)


# --------------------------------------------------------------------------- systemctl show


def test_show_of_several_units_on_systemd_257():
    shown = host_files.parse_systemctl_show((FIXTURES / "show_257.txt").read_text())
    assert list(shown) == ["wt@9090.service", "wt@9091.service", "wt@9099.service"]
    assert wi.unit_state(shown["wt@9090.service"]) == wi.UnitState(True, True, True, False, 1795955761)
    # A template instance nothing started: loaded, but neither running nor enabled, and no start time.
    assert wi.unit_state(shown["wt@9099.service"]) == wi.UnitState(True, False, False, False, None)


def test_show_of_a_unit_the_host_does_not_have_on_systemd_252():
    shown = host_files.parse_systemctl_show((FIXTURES / "show_252.txt").read_text())
    assert wi.unit_state(shown["haproxy.service"]).active
    assert wi.unit_state(shown["wt@9090.service"]) == wi.UnitState()


@pytest.mark.parametrize("active_state, active", [("active", True), ("reloading", True), ("activating", True),
                                                  ("inactive", False), ("failed", False), ("deactivating", False)])
def test_a_unit_starting_again_after_a_crash_counts_as_running(active_state, active):
    """systemd's own view: `systemctl start` would not start an activating unit again."""
    state = wi.unit_state({"ActiveState": active_state, "ExecMainStartTimestamp": "@5"})
    assert state.active is active and state.started_at == (5 if active else None)


def test_an_enabled_runtime_unit_and_a_pending_daemon_reload_are_read():
    state = wi.unit_state({"LoadState": "loaded", "UnitFileState": "enabled-runtime", "NeedDaemonReload": "yes"})
    assert state.enabled and state.needs_daemon_reload


# --------------------------------------------------------------------------- plan


def test_an_idempotent_host_needs_nothing():
    plan = wi.instance_changes(wanted(9090, 9091), {9090: running(), 9091: running()},
                               {9090: settings_file(), 9091: settings_file()}, {}, newest_shared_change=990.0, **ROOT)
    assert not plan.changed and plan.summary() == ""


def test_a_fresh_host_gets_every_file_and_every_unit_started_and_enabled():
    plan = wi.instance_changes(wanted(9090, 9091), {}, {}, {}, unit_file_changed=True, **ROOT)
    assert (plan.write, plan.daemon_reload, plan.restart, plan.start, plan.enable) == (
        [9090, 9091], True, [], [9090, 9091], [9090, 9091])


def test_changed_settings_restart_only_their_instance():
    plan = wi.instance_changes(wanted(9090, 9091), {9090: running(), 9091: running()},
                               {9090: settings_file(b"old\n"), 9091: settings_file()}, {}, **ROOT)
    assert plan.write == [9090] and plan.restart == [9090] and plan.reasons[9090] == "its settings changed"
    assert "restart wt@9090.service (its settings changed)\n" in plan.summary()


@pytest.mark.parametrize("attribute, value", [("mode", 0o600), ("owner", "wt"), ("group", "wt")])
def test_a_settings_file_with_other_attributes_is_written_again(attribute, value):
    plan = wi.instance_changes(wanted(9090), {9090: running()}, {9090: settings_file(**{attribute: value})}, {}, **ROOT)
    assert plan.write == [9090]


def test_a_shared_change_restarts_every_running_instance_and_starts_the_others():
    plan = wi.instance_changes(wanted(9090, 9091), {9090: running(), 9091: wi.UnitState(loaded=True, enabled=True)},
                               {9090: settings_file(), 9091: settings_file()}, {}, restart_all=True, **ROOT)
    assert plan.restart == [9090] and plan.start == [9091] and plan.enable == []


def test_without_restart_on_change_nothing_running_restarts_but_stopped_instances_start():
    plan = wi.instance_changes(wanted(9090, 9091), {9090: running(), 9091: wi.UnitState(loaded=True)},
                               {9090: settings_file(b"old\n"), 9091: settings_file()}, {}, restart_all=True,
                               restart_on_change=False, **ROOT)
    assert plan.write == [9090] and plan.restart == [] and plan.start == [9091] and plan.enable == [9091]


@pytest.mark.parametrize("shared, own, stale", [
    (1001.0, 900.0, False),   # within the second the process started: older
    (1001.5, 900.0, True),    # a shared file changed after it started
    (None, 1002.0, True),     # its own settings file changed after it started
    (None, None, False),
])
def test_an_instance_older_than_its_files_restarts(shared, own, stale):
    plan = wi.instance_changes(wanted(9090), {9090: running(started_at=1000)}, {9090: settings_file(ctime=own)}, {},
                               newest_shared_change=shared, **ROOT)
    assert plan.restart == ([9090] if stale else [])
    assert not stale or plan.reasons[9090] == "it started before one of its files last changed"


def test_systemd_asking_for_a_reload_gets_one():
    plan = wi.instance_changes(wanted(9090), {9090: wi.UnitState(True, True, True, True, 1000)},
                               {9090: settings_file()}, {}, **ROOT)
    assert plan.daemon_reload and plan.changed and plan.restart == []


def test_instances_the_inventory_no_longer_has_are_stopped_disabled_and_their_settings_removed():
    known = {"wt@9090.service": wi.KnownUnit(True, True, True), "wt@9092.service": wi.KnownUnit(True, True, True),
             "wt@9093.service": wi.KnownUnit(False, False, True), "wt@9094.service": wi.KnownUnit(False, True, False)}
    plan = wi.instance_changes(wanted(9090), {9090: running()}, {9090: settings_file()}, known, settings_dir="/s",
                               **ROOT)
    assert plan.stop == ["wt@9092.service"]
    assert plan.disable == ["wt@9092.service", "wt@9094.service"]
    assert plan.remove == ["/s/9092.env", "/s/9093.env"]
    assert not wi.instance_changes(wanted(9090), {9090: running()}, {9090: settings_file()}, known, prune=False,
                                   **ROOT).changed


@pytest.mark.parametrize("listen, probe", [("198.51.100.21", "198.51.100.21"), ("0.0.0.0", "127.0.0.1"),
                                           ("::", "::1"), ("2001:db8::1", "2001:db8::1")])
def test_a_restarted_instance_is_checked_where_it_listens(listen, probe):
    assert wi.probe_address(listen) == probe


# --------------------------------------------------------------------------- the host


class Systemctl:
    """A scripted command runner: `systemctl show` answers from `shown`, `list-units` from `listed`."""

    def __init__(self, shown="", listed="", rc=0):
        self.shown, self.listed, self.rc, self.calls = shown, listed, rc, []

    def __call__(self, argv):
        self.calls.append(argv)
        if argv[1] == "show":
            return 0, self.shown, ""
        if argv[1] == "list-units":
            return 0, self.listed, ""
        return self.rc, "", "Job for wt@9090.service failed." if self.rc else ""


def test_every_unit_is_read_with_one_systemctl_show():
    runner = Systemctl(shown=(FIXTURES / "show_257.txt").read_text())
    states = wi.Host(runner, "/nonexistent").unit_states([9090, 9091, 9099])
    assert [call[1] for call in runner.calls] == ["show"]
    assert runner.calls[0][-3:] == ["wt@9090.service", "wt@9091.service", "wt@9099.service"]
    assert states[9091].started_at == 1795954404 and not states[9099].active


def test_known_units_come_from_systemd_wants_links_and_settings_files(tmp_path):
    (tmp_path / "9092.env").write_text("")
    (tmp_path / "notes.txt").write_text("")
    listed = "wt@9090.service loaded active running Wt\n\u25cf wt@9091.service loaded failed failed Wt\n"
    runner = Systemctl(shown="Id=wt@9090.service\nActiveState=active\n\nId=wt@9091.service\nActiveState=failed\n\n"
                             "Id=wt@9092.service\nActiveState=inactive\n", listed=listed)
    known = wi.Host(runner, str(tmp_path)).known_units()
    assert sorted(known) == ["wt@9090.service", "wt@9091.service", "wt@9092.service"]
    assert known["wt@9090.service"].active and not known["wt@9091.service"].active
    assert known["wt@9092.service"].has_settings and not known["wt@9090.service"].has_settings


def test_a_failing_systemctl_names_its_command_and_message():
    with pytest.raises(wi.HostError, match=r"systemctl restart wt@9090.service failed \(1\): Job for"):
        wi.Host(Systemctl(rc=1), "/s").systemctl("restart", "wt@9090.service")


def test_settings_files_are_read_with_their_attributes(tmp_path):
    path = tmp_path / "9090.env"
    path.write_bytes(b"x\n")
    os.chmod(path, 0o640)
    state = wi.Host(Systemctl(), str(tmp_path)).settings_state(9090)
    assert (state.content, state.mode, state.owner) == (b"x\n", 0o640, wi.user_name(os.getuid()))
    assert wi.Host(Systemctl(), str(tmp_path)).settings_state(9091) == wi.FileState()


def test_settings_are_written_in_one_rename_with_owner_group_and_mode(tmp_path):
    me, my_group = wi.user_name(os.getuid()), wi.group_name(os.getgid())
    path = tmp_path / "9090.env"
    host_files.write_file(str(path), b"new\n", 0o600, me, my_group)
    assert path.read_bytes() == b"new\n" and os.stat(path).st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["9090.env"]
    with pytest.raises(wi.HostError, match="no such user or group"):
        host_files.write_file(str(path), b"x", 0o600, "no-such-user-here", my_group)
    with pytest.raises(wi.HostError, match=r"cannot write .*/missing/9090.env"):
        host_files.write_file(str(tmp_path / "missing/9090.env"), b"x", 0o600, me, my_group)


def test_the_newest_change_in_files_and_trees_is_found_like_find_maxdepth(tmp_path):
    """A chmod changes only that entry's ctime: touched last, it is the newest change if searched."""
    unit = tmp_path / "wt@.service"
    unit.write_text("")
    lib = tmp_path / "venv/lib"
    shallow = lib / "python3.13/site-packages/witty-0.1.dist-info"
    deep = shallow / "sub/x.dist-info"
    other = lib / "python3.13/site-packages/witty/core.py"
    deep.mkdir(parents=True)
    other.parent.mkdir()
    other.write_text("")
    time.sleep(0.02)
    os.chmod(other, 0o600)  # newest of all, but does not match *.dist-info
    time.sleep(0.02)
    os.chmod(deep, 0o700)  # matches, at depth 5
    trees = [{"path": str(lib), "depth": 3, "name": "*.dist-info"}]
    assert wi.newest_change([str(unit), str(tmp_path / "missing")], trees) == max(
        os.lstat(unit).st_ctime, os.lstat(shallow).st_ctime)
    assert wi.newest_change([], [dict(trees[0], depth=5)]) == os.lstat(deep).st_ctime
    time.sleep(0.02)
    os.chmod(unit, 0o600)
    assert wi.newest_change([str(unit)], trees) == os.lstat(unit).st_ctime
    assert wi.newest_change([str(tmp_path / "missing")], [dict(trees[0], path=str(tmp_path / "none"))]) is None


def test_a_tree_root_counts_when_its_name_matches(tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    assert wi.newest_change([], [{"path": str(root), "depth": 64, "name": "*"}]) == os.lstat(root).st_ctime
    assert wi.newest_change([], [{"path": str(root), "depth": 64, "name": "*.so"}]) is None


def test_waiting_for_a_listener_returns_as_soon_as_it_accepts_and_gives_up_after_the_timeout():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert wi.wait_listening("127.0.0.1", port, timeout=5)
    started = time.monotonic()
    assert not wi.wait_listening("127.0.0.1", port, timeout=0.3, interval=0.05)
    assert time.monotonic() - started < 3


# --------------------------------------------------------------------------- releases


def on(release, *ports):
    return [wi.Wanted(port, "198.51.100.21", b"s\n", release) for port in ports]


INSTALLED = {"1.0": {"mtime": 100.0, "newest_change": 100.0}, "2.0": {"mtime": 200.0, "newest_change": 200.0}}


def linked(release, ctime=500.0):
    return wi.ReleaseLink(release, ctime)


def test_a_fresh_host_links_every_instance_to_its_release_and_starts_it():
    plan = wi.instance_changes(on("1.0", 9090, 9091), {}, {}, {}, links={}, releases={"1.0": INSTALLED["1.0"]}, **ROOT)
    assert plan.link == {9090: "1.0", 9091: "1.0"} and plan.start == [9090, 9091] and plan.restart == []
    assert "link instance 9090 to release 1.0\n" in plan.summary()


def test_a_new_release_moves_every_running_instance_with_a_restart():
    plan = wi.instance_changes(on("2.0", 9090, 9091), {9090: running(), 9091: running()},
                               {9090: settings_file(), 9091: settings_file()}, {},
                               links={9090: linked("1.0"), 9091: linked("2.0")}, releases=INSTALLED, **ROOT)
    assert plan.link == {9090: "2.0"} and plan.restart == [9090]
    assert plan.reasons[9090] == "it moves to release 2.0" and plan.outdated == plan.reasons
    assert plan.prune_releases == []  # 1.0 is the previous release: kept for a rollback


def test_without_restart_on_change_instances_keep_their_release_for_a_rolling_upgrade():
    plan = wi.instance_changes(on("2.0", 9090, 9091), {9090: running(), 9091: running()},
                               {9090: settings_file(), 9091: settings_file()}, {},
                               links={9090: linked("1.0"), 9091: wi.ReleaseLink()}, releases=INSTALLED,
                               restart_on_change=False, **ROOT)
    # 9091 had no link (a host from before releases): it gets one, and moves when it next restarts.
    assert plan.link == {9091: "2.0"} and plan.restart == []
    # What a rolling upgrade still has to restart:
    assert plan.outdated == {9090: "it runs release 1.0, not 2.0", 9091: "it moves to release 2.0"}


def test_a_link_to_a_release_that_is_gone_is_set_again():
    plan = wi.instance_changes(on("2.0", 9090), {9090: running()}, {9090: settings_file()}, {},
                               links={9090: linked("0.9")}, releases=INSTALLED, restart_on_change=False, **ROOT)
    assert plan.link == {9090: "2.0"}


def test_an_instance_older_than_its_release_or_its_link_restarts():
    fresh = {"2.0": {"mtime": 200.0, "newest_change": 1500.0}}
    plan = wi.instance_changes(on("2.0", 9090), {9090: running(started_at=1000)}, {9090: settings_file()}, {},
                               links={9090: linked("2.0", ctime=500.0)}, releases=fresh, **ROOT)
    assert plan.restart == [9090] and plan.reasons[9090] == "it started before one of its files last changed"
    plan = wi.instance_changes(on("2.0", 9090), {9090: running(started_at=1000)}, {9090: settings_file()}, {},
                               links={9090: linked("2.0", ctime=1200.0)}, releases=INSTALLED, **ROOT)
    assert plan.restart == [9090]
    plan = wi.instance_changes(on("2.0", 9090), {9090: running(started_at=1000)}, {9090: settings_file()}, {},
                               links={9090: linked("2.0", ctime=990.0)}, releases=INSTALLED, **ROOT)
    assert not plan.changed


def test_releases_nobody_runs_are_removed_keeping_the_most_recent_ones():
    installed = {"0.8": {"mtime": 50.0}, "0.9": {"mtime": 80.0}, **INSTALLED}
    assert wi.releases_to_prune(installed, {"2.0"}, 2) == ["0.8", "0.9"]
    assert wi.releases_to_prune(installed, {"2.0"}, 3) == ["0.8"]
    assert wi.releases_to_prune(installed, {"1.0", "2.0"}, 2) == ["0.8", "0.9"]
    assert wi.releases_to_prune(installed, {"1.0", "2.0", "0.8"}, 1) == ["0.9"]  # in use is never removed


def test_links_releases_and_their_removal_on_disk(tmp_path):
    releases, links = tmp_path / "releases", tmp_path / "instances"
    for release in ("1.0", "2.0"):
        (releases / release / "venv" / "lib" / "x.dist-info").mkdir(parents=True)
        (releases / release / "release.env").write_text(f"WT_APP_VERSION={release}\n")
    (releases / ".partial").mkdir()
    wi.write_link(str(links), 9090, str(releases), "1.0")
    (links / "9091").symlink_to("/somewhere/else")
    assert wi.release_links(str(links), str(releases), [9090, 9091, 9092]) == {
        9090: wi.ReleaseLink("1.0", os.lstat(links / "9090").st_ctime),
        9091: wi.ReleaseLink(None, os.lstat(links / "9091").st_ctime), 9092: wi.ReleaseLink()}
    wi.write_link(str(links), 9090, str(releases), "2.0")
    assert os.readlink(links / "9090") == str(releases / "2.0") and sorted(os.listdir(links)) == ["9090", "9091"]
    found = wi.installed_releases(str(releases), ["release.env"],
                                  [{"path": "venv/lib", "depth": 1, "name": "*.dist-info"}])
    assert sorted(found) == ["1.0", "2.0"]
    assert found["1.0"]["newest_change"] == max(os.lstat(releases / "1.0" / "release.env").st_ctime,
                                                os.lstat(releases / "1.0" / "venv" / "lib" / "x.dist-info").st_ctime)
    wi.remove_release(str(releases), "1.0")
    assert sorted(os.listdir(releases)) == [".partial", "2.0"]
    assert wi.installed_releases(str(tmp_path / "none")) == {}


def test_a_release_installed_again_restarts_its_instances_only():
    plan = wi.instance_changes(on("2.0", 9090, 9091), {9090: running(), 9091: running()},
                               {9090: settings_file(), 9091: settings_file()}, {},
                               links={9090: linked("2.0"), 9091: linked("1.0")}, releases=INSTALLED,
                               restart_on_change=True, changed_releases=["2.0"], **ROOT)
    assert plan.restart == [9090, 9091]
    assert plan.reasons == {9090: "its release 2.0 was installed again", 9091: "it moves to release 2.0"}


def test_a_stopped_instance_that_keeps_its_release_is_still_outdated_for_the_roll():
    plan = wi.instance_changes(on("2.0", 9090), {9090: wi.UnitState(loaded=True, enabled=True)},
                               {9090: settings_file()}, {}, links={9090: linked("1.0")}, releases=INSTALLED,
                               restart_on_change=False, **ROOT)
    assert plan.start == [9090] and plan.link == {}
    assert plan.outdated == {9090: "it starts on release 1.0, not 2.0"}


# ----------------------------------------------------------------- what the module is given


TOPOLOGY_INSTANCES = [  # wtstack_topology.instances_by_host["app1"], as the topology filter returns them
    {"host": "app1", "prefix": "app1-9090-", "listen_address": "198.51.100.21", "connect_address": "198.51.100.21",
     "port": 9090, "weight": 100, "server_name": "app1-9090", "backend_name": "wt.app1-9090",
     "unit_name": "wt@9090.service", "prefix_generated": True},
    {"host": "app1", "prefix": "a-", "listen_address": "0.0.0.0", "connect_address": "198.51.100.21",
     "port": 9091, "weight": 50, "server_name": "app1-9091", "backend_name": "wt.app1-9091",
     "unit_name": "wt@9091.service", "prefix_generated": False},
]


def test_the_module_is_given_each_instance_with_its_settings_and_only_the_keys_it_takes():
    assert wi.instance_arguments(TOPOLOGY_INSTANCES, ["a\n", "b\n"]) == [
        {"port": 9090, "listen_address": "198.51.100.21", "settings": "a\n"},
        {"port": 9091, "listen_address": "0.0.0.0", "settings": "b\n"}]
    assert wi.instance_arguments([dict(TOPOLOGY_INSTANCES[0], release="2.0")], ["a\n"])[0]["release"] == "2.0"
    with pytest.raises(ValueError, match="2 instances but 1 settings"):
        wi.instance_arguments(TOPOLOGY_INSTANCES, ["a\n"])


def test_each_instances_settings_file_is_planned_where_the_module_writes_it():
    file = {"src": "instance.env.j2", "owner": "root", "group": "root", "mode": "0644"}
    assert wi.settings_files(TOPOLOGY_INSTANCES, file, "/etc/wtstack/wt/instances") == [
        dict(file, dest=wi.settings_path("/etc/wtstack/wt/instances", port), vars={"instance": instance})
        for port, instance in zip((9090, 9091), TOPOLOGY_INSTANCES)]
    assert wi.settings_path("/etc/wtstack/wt/instances", 9090) == "/etc/wtstack/wt/instances/9090.env"

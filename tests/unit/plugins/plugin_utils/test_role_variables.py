"""The variables the collection reads, and the unknown ones under its prefixes."""

import os
from pathlib import Path

import pytest
import yaml
from ansible_collections.wtstack.fleet.plugins.plugin_utils.role_variables import (
    COLLECTION,
    COLLECTION_VARIABLES,
    KnownNames,
    VariableNamesError,
    bound_names,
    owner,
    read_known_names,
    unknown_variables,
)

COLLECTION_ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def known():
    return read_known_names(str(COLLECTION_ROOT))


def specs(role):
    data = yaml.safe_load((COLLECTION_ROOT / "roles" / role / "meta/argument_specs.yml").read_text())
    return {name for entry_point in data["argument_specs"].values() for name in entry_point.get("options") or {}}


@pytest.mark.parametrize("name, role", [
    ("wt_app_version", "wt_app"), ("haproxy_tls_enabled", "haproxy"), ("rolling_max_unavailable", "rolling_restart"),
    ("rolling_restart_quiet", "rolling_restart"), ("wtstack_haproxy_group", COLLECTION), ("wt_instances", None),
    ("ansible_host", None), ("haproxy", None), (3, None),
])
def test_a_prefix_names_its_owner(name, role):
    assert owner(name) == role


@pytest.mark.parametrize("role", ["haproxy", "wt_app", "rolling_restart"])
def test_every_argument_spec_option_of_every_entry_point_is_public(known, role):
    assert specs(role) <= known.public[role]
    assert known.public[role] <= specs(role)  # the public names are exactly the documented ones


def test_the_roles_own_names_are_known_without_being_suggested(known):
    # defaults/vars, a registered result, set_fact, task vars, the playbooks' play vars and loop variables
    for name in ("haproxy_config_path", "wt_app_release_dir", "haproxy_packages_result", "haproxy_vrrp_interface_name",
                 "rolling_restart_state", "rolling_restart_deploy", "rolling_restart_outdated", "wtstack_role",
                 "wt_app_command_state", "rolling_restart_lb", "wt_app_instances_result"):
        assert known.knows(name), name
    assert "haproxy_packages_result" not in known.public["haproxy"]
    assert set(COLLECTION_VARIABLES) | {"wtstack_topology"} <= known.public[COLLECTION]


@pytest.mark.parametrize("name, suggestion", [
    ("wt_app_verison", "wt_app_version"), ("wt_app_comand", "wt_app_command"),
    ("haproxy_tls_enabeld", "haproxy_tls_enabled"), ("haproxy_bind_prot", "haproxy_bind_port"),
    ("rolling_max_unavailabel", "rolling_max_unavailable"), ("rolling_restart_quite", "rolling_restart_quiet"),
    ("wtstack_haproxy_grup", "wtstack_haproxy_group"), ("wtstack_allowed_variable", "wtstack_allowed_variables"),
])
def test_a_misspelt_variable_gets_the_close_name(known, name, suggestion):
    assert unknown_variables({"h1": [name]}, known) == [f"h1: {name}: unknown variable; did you mean {suggestion}?"]


def test_a_name_close_to_nothing_says_whose_it_would_be_and_how_to_keep_it(known):
    [message] = unknown_variables({"lb1": ["haproxy_mycompany_tier"]}, known)
    assert message == ("lb1: haproxy_mycompany_tier: unknown variable; the haproxy role reads no such variable (see "
                       "roles/haproxy/README.md); if it is your own, add it to wtstack_allowed_variables.")
    [message] = unknown_variables({"lb1": ["wtstack_zzz"]}, known)
    assert "the collection reads no such variable" in message


def test_known_and_unprefixed_names_pass(known):
    names = ["wt_app_version", "haproxy_vips", "rolling_restart_servers", "wtstack_wt_group", "wt_instances",
             "ansible_host", "inventory_hostname", "group_names", "my_haproxy_thing", "_haproxy_staged_map_path"]
    assert unknown_variables({"h1": names}, known) == []


def test_one_message_per_variable_however_many_hosts_have_it(known):
    names = {f"app{n}": ["rolling_max_unavailabel"] for n in range(1, 7)}
    assert unknown_variables(names, known) == [
        "app1: rolling_max_unavailabel: unknown variable (also on app2, app3, app4 and 2 more); "
        "did you mean rolling_max_unavailable?"]
    assert "(also on app2)" in unknown_variables({"app1": ["wt_app_verison"], "app2": ["wt_app_verison"]}, known)[0]


def test_the_hosts_allow_list_takes_names_and_patterns(known):
    names = {"lb1": ["haproxy_mycompany_tier", "haproxy_site", "haproxy_tls_enabeld"], "lb2": ["haproxy_site"]}
    allowed = {"lb1": ["haproxy_mycompany_*", "haproxy_site"]}
    assert unknown_variables(names, known, allowed) == [
        "lb1: haproxy_tls_enabeld: unknown variable; did you mean haproxy_tls_enabled?",
        "lb2: haproxy_site: unknown variable; the haproxy role reads no such variable (see roles/haproxy/README.md); "
        "if it is your own, add it to wtstack_allowed_variables."]


@pytest.mark.parametrize("value", ["haproxy_site", {"haproxy_site": 1}, [1], 5])
def test_an_allow_list_that_is_no_list_of_names_is_refused(known, value):
    problems = unknown_variables({"lb1": []}, known, {"lb1": value})
    assert len(problems) == 1 and problems[0].startswith(f"lb1: wtstack_allowed_variables: {value!r} is not a list")


def test_bound_names_walk_blocks_and_plays():
    tasks = [{"name": "b", "block": [
        {"ansible.builtin.command": "true", "register": "r1"},
        {"ansible.builtin.set_fact": {"f1": 1, "cacheable": True}},
        {"set_fact": {"f2": 2}, "vars": {"v1": 1}},
        {"include_tasks": "x.yml", "loop": [1], "loop_control": {"loop_var": "l1"}},
    ], "rescue": [{"debug": {"msg": "x"}, "register": "r2"}]}]
    plays = [{"hosts": "all", "vars": {"p1": 1}, "tasks": tasks}]
    assert bound_names(plays) == {"r1", "f1", "f2", "v1", "l1", "r2", "p1"}


def test_ansible_tags_are_read_as_their_values(tmp_path):
    role = tmp_path / "roles"
    for name in ("haproxy", "wt_app", "rolling_restart"):
        (role / name / "meta").mkdir(parents=True)
        (role / name / "meta/argument_specs.yml").write_text(
            f"argument_specs:\n  main:\n    options:\n      {name}_x: {{type: str}}\n")
    (role / "haproxy/defaults").mkdir()
    (role / "haproxy/defaults/main.yml").write_text("haproxy_y: !unsafe '{{ not templated }}'\n")
    (role / "haproxy/tasks").mkdir()
    (role / "haproxy/tasks/main.yml").write_text("- ansible.builtin.set_fact:\n    haproxy_z: !unsafe x\n")
    names = read_known_names(str(tmp_path))
    assert isinstance(names, KnownNames)
    assert names.public["haproxy"] == {"haproxy_x"} and names.knows("haproxy_y") and names.knows("haproxy_z")


def test_a_broken_installation_says_which_file(tmp_path):
    with pytest.raises(VariableNamesError, match=f"cannot read {os.path.join(tmp_path, 'roles')}"):
        read_known_names(str(tmp_path))

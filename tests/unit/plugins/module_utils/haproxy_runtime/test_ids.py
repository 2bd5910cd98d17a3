"""The ids haproxy.cfg gives backend wt and its placement servers, computed the same everywhere."""

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import ids


def test_each_name_has_its_id_and_collisions_are_told_apart(monkeypatch):
    names = [f"app{host}-{port}" for host in range(1, 51) for port in range(9090, 9190)]
    given = ids.placement_server_ids(names)
    assert len(set(given.values())) == len(names) and all(0 < value < 2 ** 31 for value in given.values())
    assert all(given[name] == ids.placement_server_id(name) for name in names)
    monkeypatch.setattr(ids, "placement_server_id", lambda name: 7)
    assert ids.placement_server_ids(["b", "a", "c"]) == {"a": 7, "b": 8, "c": 9}

"""The haproxy_ids filter: backend wt's id and each placement server's, as the runtime modules compute them."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.filter.haproxy_ids import FilterModule
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.ids import (
    PLACEMENT_BACKEND_ID,
    placement_server_id,
)

haproxy_ids = FilterModule().filters()["haproxy_ids"]


def test_ids_of_a_generator_of_names():
    result = haproxy_ids(name for name in ["app1-9090", "app2-9090"])
    assert result == {"backend": PLACEMENT_BACKEND_ID,
                      "servers": {name: placement_server_id(name) for name in ["app1-9090", "app2-9090"]}}


def test_not_names():
    with pytest.raises(AnsibleFilterError, match="is not a list of server names"):
        haproxy_ids([1, 2])

"""The local HAProxy the integration tests drive (tests/integration/local_haproxy.py, standard library only)
gives backend wt and its placement servers the ids haproxy.cfg gives them."""

import importlib.util
from pathlib import Path

from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime import ids

LOCAL_HAPROXY = Path(__file__).resolve().parents[3] / "local_haproxy.py"


def test_the_local_haproxy_gives_the_same_ids():
    spec = importlib.util.spec_from_file_location("haproxy_lab", LOCAL_HAPROXY)
    lab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab)
    assert lab.WT_ID == ids.PLACEMENT_BACKEND_ID
    assert all(lab.placement_id(name) == ids.placement_server_id(name) for name in lab.SERVERS)

"""Runs our modules' code in-process against a real HAProxy (tests/integration/local_haproxy.py)."""

import importlib.util
import shutil
import time
from pathlib import Path

import pytest

LAB_PY = Path(__file__).resolve().parents[1] / "local_haproxy.py"
# State each lab instance is restored to between tests: (admin state of its own server, weight of
# its placement server). app2-9091 is `disabled` in the lab's haproxy.cfg.
LAB_INSTANCES = {"app1-9090": ("ready", 100), "app1-9091": ("ready", 100), "app2-9090": ("ready", 50),
                 "app2-9091": ("maint", 100)}


def _load_lab():
    spec = importlib.util.spec_from_file_location("haproxy_lab", LAB_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def _haproxy_lab(tmp_path_factory):
    if not (shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")):
        pytest.fail("haproxy is not installed: these tests drive a real HAProxy; install it (`apt-get install "
                    "haproxy`, as .ci/run does) and run them again", pytrace=False)
    lab = _load_lab().HAProxyLab(str(tmp_path_factory.mktemp("haproxy")))
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture
def haproxy_lab(_haproxy_lab):
    """The shared HAProxy, with every server back in its configured state and every app healthy."""
    lab = _haproxy_lab
    for backend in lab.backends.values():
        backend.healthy = True
    for server, (state, weight) in LAB_INSTANCES.items():
        assert lab.command(f"set server wt/{server} weight {weight}") == "\n"
        assert lab.command(f"set server wt/{server} state ready") == "\n"
        assert lab.command(f"set server wt.{server}/{server} state {state}") == "\n"
    assert lab.command("set server static/solo state ready") == "\n"
    lab.wait_for_status({"app1-9090": "UP", "app1-9091": "UP", "app2-9090": "DOWN", "app2-9091": "MAINT"})
    # ... at full health: an instance just out of maint is "UP 1/2" until its checks pass.
    deadline = time.monotonic() + 15
    while any(lab.statuses()[name] != "UP" for name in ("app1-9090", "app1-9091")) and time.monotonic() < deadline:
        time.sleep(0.1)
    return lab

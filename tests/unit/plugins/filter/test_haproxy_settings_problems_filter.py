"""The haproxy_settings_problems filter: the role passes exactly the settings the checks read."""

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.filter.haproxy_settings_problems import (
    FilterModule,
    haproxy_settings_problems,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_settings import SETTINGS

REPO = Path(__file__).resolve().parents[4]


def test_registered_under_its_documented_name():
    assert FilterModule().filters() == {"haproxy_settings_problems": haproxy_settings_problems}


def test_the_role_passes_the_settings_the_checks_read():
    role_vars = yaml.safe_load((REPO / "roles/haproxy/vars/main.yml").read_text())
    assert role_vars["haproxy_validated_settings"] == list(SETTINGS)


def test_a_setting_missing_is_the_callers_mistake():
    with pytest.raises(AnsibleFilterError, match="haproxy_settings_problems: settings lacks haproxy_bind_port"):
        haproxy_settings_problems({}, "lb1", ["lb1"], {})


def test_misuse_is_explained():
    with pytest.raises(AnsibleFilterError, match=r"settings \| wtstack.fleet.haproxy_settings_problems"):
        haproxy_settings_problems(["haproxy_bind_port"], "lb1", ["lb1"], {})

# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""role_checks: a role's variables, or the host it is about to change, checked on the controller.

Documentation: plugins/modules/role_checks.py. The checks are plain Python, unit-tested on their own:
module_utils/haproxy_settings.py and module_utils/wt_app_checks.py; this reads the variables they
need (each templated once, as the vars lookup templates it) and fails with every problem at once.

An action, not a filter: the roles run it for every host, and ansible-core loads an action plugin once,
in the main process, while a collection's filter is loaded, with every other filter file of the
collection, by each host's worker (about 0.1 s of CPU a host).
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.wtstack.fleet.plugins.module_utils import haproxy_settings, wt_app_checks

ARGUMENT_SPEC = {
    "role": {"type": "str", "required": True, "choices": ["haproxy", "wt_app"]},
    "host_state": {"type": "dict"},
}


class ActionModule(ActionBase):
    # Checks on the controller only: no connection to the host is ever opened.
    _requires_connection = False
    _supports_check_mode = True
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        dummy, arguments = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        host = to_text(task_vars["inventory_hostname"])
        try:
            problems = self._problems(arguments["role"], arguments["host_state"], host, task_vars)
        except (AnsibleError, haproxy_settings.SettingsError, wt_app_checks.SettingsError, KeyError) as error:
            result.update(failed=True, msg=f"role_checks: {to_text(error)}")
            return result
        result.update(changed=False, problems=problems, failed=bool(problems),
                      msg=" ".join(problems) if problems else "All checks passed")
        return result

    def _problems(self, role, host_state, host, task_vars):
        if host_state is not None:
            if role != "wt_app":
                raise AnsibleError("host_state: only the wt_app role checks its host this way")
            settings = self._variables(("wt_app_supported_debian", "wt_app_demo_selected", "wt_app_demo_min_python"))
            return wt_app_checks.host_problems(
                host, host_state, [to_text(release) for release in settings["wt_app_supported_debian"]],
                boolean(settings["wt_app_demo_selected"], strict=False), to_text(settings["wt_app_demo_min_python"]))
        if role == "haproxy":
            lb_hosts = self._variables(("wtstack_topology",))["wtstack_topology"]["lb_hosts"]
            return haproxy_settings.settings_problems(host, self._variables(haproxy_settings.SETTINGS), lb_hosts,
                                                      task_vars["hostvars"])
        settings = self._variables(wt_app_checks.SETTINGS)
        return wt_app_checks.settings_problems(host, settings, self._found(settings["wt_app_artifact"]))

    def _variables(self, names):
        """Each variable templated as the vars lookup templates it (a missing one is an error)."""
        lookups = self._shared_loader_obj.lookup_loader
        lookup = lookups.get("ansible.builtin.vars", loader=self._loader, templar=self._templar)
        return dict(zip(names, lookup.run(list(names), self._templar.available_variables)))

    def _found(self, artifact):
        """Whether the artifact is where the role's copy and unarchive tasks find their src."""
        if not artifact:
            return False
        try:
            self._find_needle("files", artifact)
        except AnsibleError:
            return False
        return True

# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wt_instances: render each instance's settings on the controller, then run the module once.

Documentation: plugins/modules/wt_instances.py. With ``settings_template``, each instance of
``instances`` gets the template rendered with the instance as ``instance``, exactly as the
ansible.builtin.template lookup renders it (the role rendered them that way in Jinja before), and the
module receives the keys it takes (instance_arguments() in module_utils/wt_instances.py). Without
it, the arguments go to the module as they are.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.wtstack.fleet.plugins.module_utils.wt_instances import instance_arguments

MODULE = "wtstack.fleet.wt_instances"


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        template = args.pop("settings_template", None)
        if template is not None:
            try:
                instances = list(args.get("instances") or [])
                args["instances"] = instance_arguments(instances, [self._render(template, instance)
                                                                   for instance in instances])
            except (AnsibleError, KeyError, TypeError, ValueError) as error:
                result.update(failed=True, msg=f"wt_instances: settings_template {template}: {to_text(error)}")
                return result
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        return result

    def _render(self, template, instance):
        lookups = self._shared_loader_obj.lookup_loader
        lookup = lookups.get("ansible.builtin.template", loader=self._loader, templar=self._templar)
        return to_text(lookup.run([template], self._templar.available_variables,
                                  template_vars={"instance": instance})[0])

# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plan_files: render a host's templates into a directory on the controller, all in one task.

Documentation: plugins/modules/plan_files.py. Rendering mirrors ansible.builtin.template's action
(same variables, search path, Jinja settings and engine call, per ansible-core release) so that a
plan holds byte for byte what the template module would write on the host; writing is
plugins/plugin_utils/file_tree.py. Nothing here contacts the host.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase
from ansible_collections.wtstack.fleet.plugins.module_utils.host_files import parse_mode
from ansible_collections.wtstack.fleet.plugins.module_utils.wt_instances import settings_files
from ansible_collections.wtstack.fleet.plugins.plugin_utils.file_tree import (
    TreeFile,
    diffs,
    write_tree,
)

try:  # ansible-core >= 2.19 (data tagging): template text must be trusted to be rendered
    from ansible.template import trust_as_template
except ImportError:  # ansible-core 2.17 and 2.18
    trust_as_template = None
from ansible.template import generate_ansible_template_vars

if trust_as_template is None:
    from ansible.template import AnsibleEnvironment

# ansible.builtin.template's defaults, which the roles' templates are written for.
_JINJA_OVERRIDES = {
    "block_start_string": "{%", "block_end_string": "%}",
    "variable_start_string": "{{", "variable_end_string": "}}",
    "comment_start_string": "{#", "comment_end_string": "#}",
    "trim_blocks": True, "lstrip_blocks": False,
}
_NEWLINE_SEQUENCE = "\n"
DEFAULT_MODE = "0644"
ARGUMENT_SPEC = {
    "root": {"type": "path", "required": True},
    "files": {"type": "list", "elements": "dict", "required": True},
    "no_diff": {"type": "list", "elements": "str", "default": []},
    "instance_files": {"type": "dict", "options": {
        "instances": {"type": "list", "elements": "dict", "required": True},
        "src": {"type": "str", "required": True},
        "mode": {"type": "raw", "default": DEFAULT_MODE},
        "dir": {"type": "str", "required": True},
    }},
}


class ActionModule(ActionBase):
    # Renders and writes on the controller only: no connection to the host is ever opened.
    _requires_connection = False
    _supports_check_mode = True
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        dummy, arguments = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            files = arguments["files"] + self._instance_files(arguments["instance_files"])
            tree = [self._tree_file(index, entry, task_vars) for index, entry in enumerate(files)]
            changes = write_tree(arguments["root"], tree, check_mode=self._task.check_mode)
        except (AnsibleError, OSError, ValueError) as error:
            result.update(failed=True, msg=f"plan_files: {to_text(error)}")
            return result
        hidden = set(arguments["no_diff"])
        result["changed"] = any(change.changed for change in changes)
        result["files"] = [{"dest": change.dest, "path": change.path, "changed": change.changed} for change in changes]
        if self._task.diff:
            result["diff"] = [diff for change in changes if change.changed and change.dest not in hidden
                              for diff in diffs(change)]
        return result

    @staticmethod
    def _instance_files(spec):
        """One file per instance, where wt_instances writes its settings (settings_files())."""
        if not spec:
            return []
        try:
            return settings_files(spec["instances"], {"src": spec["src"], "mode": spec["mode"]}, spec["dir"])
        except KeyError as error:
            raise ValueError(f"instance_files: an instance without {error}") from None

    def _tree_file(self, index, entry, task_vars):
        where = f"files[{index}]"
        for key in ("src", "dest"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ValueError(f"{where}: {key} is required (a string)")
        where = f"files[{index}] ({entry['dest']})"
        template_vars = entry.get("vars") or {}
        if not isinstance(template_vars, dict):
            raise ValueError(f"{where}: vars must be a mapping of variable names to values")
        mode = parse_mode(entry.get("mode", DEFAULT_MODE), f"{where}: mode")
        try:
            content = self._render(entry["src"], entry["dest"], template_vars, task_vars)
        except AnsibleError as error:
            raise AnsibleError(f"{where}: {entry['src']}: {to_text(error)}") from error
        return TreeFile(entry["dest"], to_bytes(content, encoding="utf-8", errors="surrogate_or_strict"), mode)

    def _render(self, src, dest, template_vars, task_vars):
        """The text ansible.builtin.template would write to `dest` from `src`."""
        source = self._find_needle("templates", src)
        # The template action's search path for includes (copied: it extends the list it is given).
        searchpath = list(task_vars.get("ansible_search_path", [])) + [self._loader._basedir, os.path.dirname(source)]
        searchpath = [path for base in searchpath for path in (os.path.join(base, "templates"), base)]
        variables = task_vars.copy()
        variables.update(generate_ansible_template_vars(src, source, dest))
        if trust_as_template is not None:
            # ansible-core >= 2.19 keeps an ansible_managed the user set (2.17 and 2.18 do not).
            if "ansible_managed" in task_vars:
                variables["ansible_managed"] = task_vars["ansible_managed"]
            variables.update(template_vars)
            templar = self._templar.copy_with_new_env(searchpath=searchpath, available_variables=variables)
            text = trust_as_template(self._loader.get_text_file_contents(source))
            overrides = dict(_JINJA_OVERRIDES, newline_sequence=_NEWLINE_SEQUENCE)
            rendered = templar.template(text, escape_backslashes=False, overrides=overrides)
        else:
            variables.update(template_vars)
            templar = self._templar.copy_with_new_env(environment_class=AnsibleEnvironment, searchpath=searchpath,
                                                      newline_sequence=_NEWLINE_SEQUENCE,
                                                      available_variables=variables)
            real_file = self._loader.get_real_file(source)  # decrypts a vaulted template
            try:
                with open(real_file, "rb") as handle:
                    text = to_text(handle.read(), errors="surrogate_or_strict")
            finally:
                self._loader.cleanup_tmp_file(real_file)
            rendered = templar.do_template(text, preserve_trailing_newlines=True, escape_backslashes=False,
                                           overrides=dict(_JINJA_OVERRIDES))
        return "" if rendered is None else rendered

# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The variables the collection reads, and the inventory's variables that look like them but are not.

A misspelt role variable (``wt_app_verison``, ``haproxy_tls_enabeld``) is otherwise accepted and ignored:
the role runs with its default and says nothing. Every variable under a prefix the collection owns
(``wt_app_``, ``haproxy_``, ``rolling_``, ``wtstack_``) must therefore be one the collection knows, or one
the user declared as theirs in ``wtstack_allowed_variables`` (names or shell-style patterns).

The known names are read from the collection's own files, so they can never disagree with them:

- public: each role's ``meta/argument_specs.yml``, every entry point (what "did you mean" suggests);
- internal: the role's ``defaults/main.yml`` and ``vars/main.yml``, and every name the roles' task and
  handler files and the playbooks bind (``register``, ``set_fact``, ``vars``, ``loop_var``): a user who
  sets one of those is not misspelling anything, and a later play's hostvars hold registered results;
- COLLECTION_VARIABLES: what the playbooks read with a default and no file sets.

Reading them (about 30 YAML files) is done once per run, on the controller, not once per host.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import yaml

# Prefix -> the role whose variables it names; the longest prefix that matches wins.
ROLE_PREFIXES = {"wt_app_": "wt_app", "haproxy_": "haproxy", "rolling_": "rolling_restart"}
COLLECTION_PREFIX = "wtstack_"
COLLECTION = "collection"
ALLOWED_VARIABLES = "wtstack_allowed_variables"
# Read by the playbooks (with a default) and set by no file of the collection.
COLLECTION_VARIABLES = ("wtstack_haproxy_group", "wtstack_wt_group", "wtstack_app_strategy", ALLOWED_VARIABLES)
PREFIXES = tuple(ROLE_PREFIXES) + (COLLECTION_PREFIX,)
_SET_FACT = ("set_fact", "ansible.builtin.set_fact", "ansible.legacy.set_fact")
# Hosts named in one message before "and N more".
_HOSTS_SHOWN = 3


class VariableNamesError(ValueError):
    """The collection's own files could not be read (a broken installation)."""


@dataclass(frozen=True)
class KnownNames:
    # owner (a role, or COLLECTION) -> the names its argument specs document
    public: Mapping[str, frozenset]
    # every other name the collection reads or binds
    internal: frozenset

    def knows(self, name):
        return name in self.internal or any(name in names for names in self.public.values())


def owner(name):
    """The role (or COLLECTION) whose variable a name looks like, or None."""
    if not isinstance(name, str):
        return None
    if name.startswith(COLLECTION_PREFIX):
        return COLLECTION
    matches = [prefix for prefix in ROLE_PREFIXES if name.startswith(prefix)]
    return ROLE_PREFIXES[max(matches, key=len)] if matches else None


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML that reads Ansible's own tags (!unsafe, !vault) as the plain value they tag."""


def _untagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


_Loader.add_multi_constructor("!", _untagged)


def _load(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_Loader)  # noqa: S506 - a safe loader
    except (OSError, yaml.YAMLError) as error:
        raise VariableNamesError(f"cannot read {path}: {error}") from error


def _yaml_files(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, name) for name in os.listdir(directory) if name.endswith((".yml", ".yaml")))


def bound_names(node):
    """Names a task list or playbook binds: register, set_fact keys, vars keys, loop_var."""
    names = set()
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "register" and isinstance(value, str):
                names.add(value)
            elif key in _SET_FACT and isinstance(value, Mapping):
                names.update(name for name in value if name != "cacheable")
            elif key == "vars" and isinstance(value, Mapping):
                names.update(value)
            elif key == "loop_control" and isinstance(value, Mapping) and isinstance(value.get("loop_var"), str):
                names.add(value["loop_var"])
            names |= bound_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= bound_names(item)
    return names


def read_known_names(collection_root):
    """KnownNames from the collection at collection_root (its roles/ and playbooks/)."""
    public = {COLLECTION: set(COLLECTION_VARIABLES)}
    internal = set()
    roles_dir = os.path.join(collection_root, "roles")
    for role in sorted(set(ROLE_PREFIXES.values())):
        role_dir = os.path.join(roles_dir, role)
        specs = _load(os.path.join(role_dir, "meta", "argument_specs.yml")) or {}
        documented = set()
        for entry_point in (specs.get("argument_specs") or {}).values():
            documented.update((entry_point or {}).get("options") or {})
        public[role] = documented
        for name in ("defaults", "vars"):
            path = os.path.join(role_dir, name, "main.yml")
            if os.path.isfile(path):
                internal.update(_load(path) or {})
        for directory in ("tasks", "handlers"):
            for path in _yaml_files(os.path.join(role_dir, directory)):
                internal |= bound_names(_load(path))
    for path in _yaml_files(os.path.join(collection_root, "playbooks")):
        internal |= bound_names(_load(path))
    # A role's documented wtstack_* options (wtstack_topology) are the collection's too.
    for role in ROLE_PREFIXES.values():
        public[COLLECTION] |= {name for name in public[role] if owner(name) == COLLECTION}
    return KnownNames(public={name: frozenset(names) for name, names in public.items()},
                      internal=frozenset(name for name in internal if isinstance(name, str)))


def _allowed_patterns(host, value, problems):
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or isinstance(value, Mapping) \
            or not all(isinstance(item, str) for item in value):
        problems.append(f"{host}: {ALLOWED_VARIABLES}: {value!r} is not a list of variable names; give a list "
                        "of your own variables' names or shell-style patterns, such as [haproxy_site_tier, "
                        "'haproxy_mycompany_*'].")
        return ()
    return tuple(value)


def _hint(name, known):
    role = owner(name)
    close = difflib.get_close_matches(name, sorted(known.public.get(role, ())), n=1, cutoff=0.8)
    if close:
        return f"did you mean {close[0]}?"
    where = ("the collection reads no such variable" if role == COLLECTION
             else f"the {role} role reads no such variable (see roles/{role}/README.md)")
    return f"{where}; if it is your own, add it to {ALLOWED_VARIABLES}."


def unknown_variables(names_by_host, known, allowed_by_host=None):
    """One message per unknown variable (its first host, and how many others have it too).

    names_by_host: host -> the names of its variables (only those under PREFIXES are looked at);
    allowed_by_host: host -> its wtstack_allowed_variables (a list of names or patterns), if set.
    """
    allowed_by_host = allowed_by_host or {}
    problems = []
    hosts_by_name = {}
    for host, names in names_by_host.items():
        patterns = _allowed_patterns(host, allowed_by_host.get(host), problems)
        for name in names:
            if owner(name) is None or known.knows(name):
                continue
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
                continue
            hosts_by_name.setdefault(name, []).append(host)
    for name, hosts in hosts_by_name.items():
        also = ""
        if len(hosts) > 1:
            others = hosts[1:]
            shown = ", ".join(others[:_HOSTS_SHOWN])
            more = f" and {len(others) - _HOSTS_SHOWN} more" if len(others) > _HOSTS_SHOWN else ""
            also = f" (also on {shown}{more})"
        problems.append(f"{hosts[0]}: {name}: unknown variable{also}; {_hint(name, known)}")
    return problems

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The work is done on the controller by the action plugin of the same name (plugins/action/role_checks.py).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: role_checks
short_description: Internal to the haproxy and wt_app roles - check role variables and the host beyond types
description:
  - >-
    Checks what a role's argument spec cannot, on the controller, and fails with one message per problem,
    C(host: variable: problem; fix), all at once. The role's C(validate) entry point runs it for every host
    before any host is contacted (C(playbooks/topology.yml)).
  - For C(haproxy) - the frontend, TLS, statistics and ACME challenge ports in range and apart, check counts
    at least 1, the VRRP advertisement interval VRRPv3 can carry, a health check URI that is a URL path, TLS
    settings (ACME, a redirect or HSTS need TLS; an absolute certificate path; names for a self-signed
    certificate), ACME settings (names an HTTP-01 challenge can validate, a contact address for a public CA,
    an https directory URL, a CA file on the controller, an issuing balancer that is a load balancer and whose
    ACME settings this one shares) and statistics settings (address, password, user name, URI). No message
    carries C(haproxy_stats_password).
  - For C(wt_app) - C(wt_app_command) an absolute path, and set whenever C(wt_app_artifact) is;
    C(wt_app_version) usable as a directory name; C(wt_app_install_dir) (and, for the bundled demo,
    C(wt_app_demo_venv) and C(wt_app_demo_dir)) below C(wt_app_root); C(wt_app_artifact) a file on the
    controller, where the role's copy and unarchive tasks look for it.
  - With O(host_state), the C(wt_app) role's host instead - a supported Debian release and, for the bundled
    demo, a recent enough python3 - from the role's first read of the host, before anything on it changes.
  - Reads the role's variables (and, for an ACME setting, the issuing balancer's) on the controller and never
    contacts the host.
version_added: 1.0.0
author:
  - wtstack.fleet contributors (@wtstack)
options:
  role:
    description: The role whose variables are checked.
    type: str
    required: true
    choices: [haproxy, wt_app]
  host_state:
    description:
      - The registered result of M(wtstack.fleet.host_state) on this host; the host is checked instead of the
        variables (C(wt_app) only).
    type: dict
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: ansible.builtin.assert
  - module: ansible.builtin.validate_argument_spec
"""

EXAMPLES = r"""
- name: Check the haproxy role's variables beyond their types
  wtstack.fleet.role_checks:
    role: haproxy

- name: Check that the host runs a supported Debian and, for the demo app, a recent enough python3
  wtstack.fleet.role_checks:
    role: wt_app
    host_state: "{{ wt_app_host }}"
"""

RETURN = r"""
problems:
  description: One message per problem, in a fixed order; empty when there is none.
  returned: success
  type: list
  elements: str
  sample:
    - "lb1: haproxy_tls_redirect: redirecting to https needs TLS; set haproxy_tls_enabled to true or drop the redirect."
msg:
  description: The problems joined by spaces, or C(All checks passed).
  returned: always
  type: str
"""

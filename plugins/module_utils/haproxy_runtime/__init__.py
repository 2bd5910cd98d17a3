# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy's runtime API (the stats socket), one module a job, plain Python with no Ansible import.

- errors.py: what can go wrong, and HAProxy's error replies recognised;
- client.py: addresses, connections, command lines (one exchange: one connection, one line);
- parsing.py: replies to plain data;
- servers.py: the view the modules report, one row a server or a Wt instance (ServerView);
- reading.py: reading those views from HAProxy, only the Wt instances asked about where it can;
- ids.py: the ids haproxy.cfg gives backend wt and its placement servers (what reading.py reads them by);
- changes.py: the commands that bring a server to a state and weight;
- waiting.py: waiting for servers to drain, be quiet or be up;
- server_module.py, info_module.py: what the haproxy_server and haproxy_info modules do.

Unit-tested against replies captured from real HAProxy 2.6 and 3.0 (tests/unit/fixtures/haproxy/).
"""

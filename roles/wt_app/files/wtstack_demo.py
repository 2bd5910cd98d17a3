"""wtstack demo: a tiny Wt application that shows which instance serves it.

Run it like any Wt (wthttp) program; every standard option is passed through:

    python wtstack_demo.py --http-address 127.0.0.1 --http-port 9090 \
        --session-id-prefix app1-9090- --docroot /srv/docroot --approot /srv/approot

Page (one Wt session per visit), elements a browser test can find by id:
    #wtstack-prefix      the instance's session-id prefix
    #wtstack-host        hostname of the machine running the instance
    #wtstack-port        the instance's HTTP port
    #wtstack-version     WT_APP_VERSION from the environment (may be empty)
    #wtstack-session-id  this session's id (the value the browser sends as wtd=)
    #wtstack-counter     per-session counter, kept on the server
    #wtstack-increment   button that increments the counter
Session-less endpoints (served by Wt resources, so no Wt session is created):
    GET /health  -> 200 text/plain "ok"
    GET /whoami  -> 200 application/json
                    {"prefix", "host", "port", "address", "pid", "version", "sessions_created",
                     "client"}
"""

import argparse
import html
import json
import os
import socket
import sys
import threading

import witty_for_python as wt


def instance_identity(argv):
    """The options that make this instance distinct, as wthttp will read them from argv."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--session-id-prefix", default="")
    parser.add_argument("--http-port", default="")
    parser.add_argument("--http-address", default="")
    known, dummy = parser.parse_known_args(argv)
    return {
        "prefix": known.session_id_prefix,
        "host": socket.gethostname(),
        "port": int(known.http_port) if known.http_port.isdigit() else None,
        "address": known.http_address,
        "pid": os.getpid(),
        "version": os.environ.get("WT_APP_VERSION", ""),
    }


class SessionCount:
    """Sessions created since start; tests use it to prove an endpoint did not create one."""

    def __init__(self):
        self._lock = threading.Lock()
        self._created = 0

    def increment(self):
        with self._lock:
            self._created += 1

    @property
    def created(self):
        with self._lock:
            return self._created


def add_labelled_value(container, label, element_id, value):
    row = container.add_widget(wt.WContainerWidget())
    row.add_style_class("wtstack-row")
    row.add_widget(wt.WText(html.escape(label) + ": "))
    text = row.add_widget(wt.WText(html.escape(str(value))))
    text.id = element_id
    text.add_style_class(element_id)
    return text


COUNTER_ID = "wtstack-counter"


def find_widget(container, element_id):
    for index in range(container.count):
        child = container.widget(index)
        if child.id == element_id:
            return child
        if isinstance(child, wt.WContainerWidget):
            found = find_widget(child, element_id)
            if found is not None:
                return found
    return None


def increment_counter():
    """Click handler shared by all sessions; the count lives in the session's own widget.

    It is a module-level function on purpose: witty-for-python 0.1.2 releases a slot's
    Python callable without holding the GIL when Wt destroys an expired session, which
    crashes the process if that release frees the callable (a per-session closure).
    """
    counter = find_widget(wt.WApplication.instance().root, COUNTER_ID)
    counter.text = str(int(counter.text) + 1)


def make_application_factory(identity, sessions):
    def create_application(env):
        app = wt.WApplication(env)
        sessions.increment()
        app.title = "wtstack demo - " + identity["prefix"]
        root = app.root
        root.id = "wtstack-demo"
        root.add_widget(wt.WText("<h1>wtstack demo</h1>"))
        add_labelled_value(root, "instance", "wtstack-prefix", identity["prefix"])
        add_labelled_value(root, "host", "wtstack-host", identity["host"])
        add_labelled_value(root, "port", "wtstack-port", identity["port"])
        add_labelled_value(root, "version", "wtstack-version", identity["version"])
        add_labelled_value(root, "session", "wtstack-session-id", app.session_id)
        add_labelled_value(root, "counter", COUNTER_ID, 0)
        button = root.add_widget(wt.WPushButton("increment"))
        button.id = "wtstack-increment"
        button.add_style_class("wtstack-increment")
        button.clicked.connect(increment_counter)
        return app

    return create_application


def make_health_handler():
    def health(request, response):
        response.set_status(200)
        response.insert_header("Cache-Control", "no-store")
        response.set_mime_type("text/plain")
        response.write(b"ok")

    return health


def make_whoami_handler(identity, sessions):
    def whoami(request, response):
        # client: the peer, or the X-Forwarded-For client when the peer is a trusted proxy.
        body = dict(identity, sessions_created=sessions.created, client=request.client_address)
        response.set_status(200)
        response.insert_header("Cache-Control", "no-store")
        response.set_mime_type("application/json")
        response.write(json.dumps(body, sort_keys=True))

    return whoami


def main(argv):
    identity = instance_identity(argv[1:])
    sessions = SessionCount()
    server = wt.WServer()
    # The bundled Wt resources (JS, CSS, themes) live in the wheel, not in the docroot.
    server.set_server_configuration(list(argv) + ["--resources-dir", wt.resources_dir])
    # Keep references: the server does not own the Python callables' wrappers.
    resources = {
        "/health": wt.CallbackResource(make_health_handler()),
        "/whoami": wt.CallbackResource(make_whoami_handler(identity, sessions)),
    }
    for path, resource in resources.items():
        server.add_resource(resource, path)
    server.add_entry_point(wt.EntryPointType.Application, make_application_factory(identity, sessions))
    return server.run() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

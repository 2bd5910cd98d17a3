"""A minimal Wt client for the tests: sessions as a browser without JavaScript sees them.

`GET /` on a fresh connection makes Wt create a session and answer with its bootstrap page,
which carries the new session id (`wtd=...`). `GET /?wtd=<id>&js=no` then renders that
session's page in plain HTML, with the demo's element ids: what the instance itself says it
is (prefix, host, port) and which session it rendered. If a request reaches an instance that
does not hold the session, Wt starts a new one there and the page shows a different id.
"""

import html
import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

WTD = re.compile(r"[?&]wtd=([A-Za-z0-9._%-]+)")
ELEMENT = re.compile(r'id="(wtstack-[a-z-]+)"[^>]*>([^<]*)<')
TIMEOUT = 10


@dataclass(frozen=True)
class Page:
    status: int
    prefix: str
    host: str
    port: str
    session_id: str
    counter: str

    @property
    def instance(self):
        return f"{self.host}:{self.port}"


HEADERS = {"User-Agent": "wtstack-e2e", "Connection": "close"}  # one request per connection
# For https:// URLs: the SSL context get_from_port uses (None: Python's default, the system's CAs). `get`
# goes through urllib's global opener instead; a test that serves its own certificate installs both.
TLS_CONTEXT = None


def get(url, timeout=TIMEOUT):
    """(status, body); never raises for an HTTP error status."""
    request = urllib.request.Request(url, headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def get_from_port(url, timeout, on_connect, form=None):
    """`get`, calling `on_connect(local_port)` once connected, so that a request that hangs can be
    found by its client port in `ss` and in HAProxy's `show sess`. With `form` (a dict), a POST of it,
    as a browser submits a form."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout,
                                                 context=TLS_CONTEXT)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        connection.connect()
        on_connect(connection.sock.getsockname()[1])
        if form is None:
            connection.request("GET", f"{parts.path or '/'}?{parts.query}", headers=HEADERS)
        else:
            connection.request("POST", f"{parts.path or '/'}?{parts.query}", body=urllib.parse.urlencode(form),
                               headers={**HEADERS, "Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def new_session(base_url):
    """Start a session through `base_url`; returns its id as Wt wrote it into the bootstrap page."""
    status, body = get(base_url + "/")
    assert status == 200, f"GET / answered {status}"
    match = WTD.search(body)
    assert match, "no wtd= in Wt's bootstrap page"
    return urllib.parse.unquote(match.group(1))


def parse_page(status, body):
    values = {name: html.unescape(value) for name, value in ELEMENT.findall(body)}
    return Page(status=status, prefix=values.get("wtstack-prefix", ""), host=values.get("wtstack-host", ""),
                port=values.get("wtstack-port", ""), session_id=values.get("wtstack-session-id", ""),
                counter=values.get("wtstack-counter", ""))


def session_page(base_url, session_id):
    """The session's page, rendered by whichever instance the request reached."""
    return parse_page(*get(f"{base_url}/?wtd={session_id}&js=no"))


def whoami(base_url, session_id=None):
    """What the instance that answers says about itself (routed by `session_id` when given)."""
    query = f"?wtd={session_id}" if session_id else ""
    status, body = get(f"{base_url}/whoami{query}")
    assert status == 200, f"/whoami answered {status}: {body[:200]}"
    return json.loads(body)


def assert_session_and_websocket_over_tls(address, sslopt):
    """Through the balancer at `address`, over TLS: a new session keeps its page, and its WebSocket
    (wss://) upgrades and hears from Wt. `sslopt`: websocket-client's TLS options (CA file or context);
    `get` must trust the same certificate through urllib's global opener."""
    import websocket

    base_url = f"https://{address}"
    session_id = new_session(base_url)
    page = session_page(base_url, session_id)
    assert page.status == 200 and page.session_id == session_id
    connection = websocket.create_connection(f"wss://{address}/?wtd={session_id}&request=ws", timeout=10,
                                             sslopt=sslopt)
    try:
        assert connection.getstatus() == 101
        assert connection.recv()  # Wt speaks first on a new WebSocket
    finally:
        connection.close()

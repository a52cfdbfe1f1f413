"""A Jupyter user through the dspool gateway, for jupyter_test.sh.

  jupyter_client.py BASE_URL USER PASSWORD COMMAND [ARG]

Logs in at BASE_URL/hub/login (TLS, the pool's self-signed certificate is
not verified: the test made it a moment ago), waits for the user's notebook
server, then runs COMMAND:
  notebook PATH CODE   create notebook PATH through the contents API, start a
                       kernel, run CODE over the kernel's WebSocket, print the
                       stdout it produced
  busy SECONDS         start a kernel and leave a cell running SECONDS
  until-gone CODE      start a kernel and run CODE, which is not to finish
                       (it uses up the memory): waits until the kernel's
                       WebSocket closes or says the kernel died (at most 120
                       s) and prints how ("closed", "dead")
  page COOKIES         as `browse`, once: GET /user/USER/tree as a browser
                       and print {"status", "refresh", "body"} as JSON
  get PATH             print the HTTP status of GET PATH (with the session)
  login-status         print the status of the login POST and whether a
                       cookie came back
  start                ask for the server (GET /user/USER/tree) and print
                       the answer's status, without waiting for the server
  browse COOKIES CODE  as a browser: log in, unless the cookie file COOKIES
                       holds a session (the same browser coming back; a
                       login saves its cookie there), load /user/USER/tree
                       and follow its Refresh header (the starting page's
                       leads to /hub/spawn-pending, which redirects when
                       the server is ready; at most MAX_WAIT s) until it is
                       the notebook server's own page, then run CODE in a
                       new kernel. Prints one JSON
                       object: "statuses" (every page load's status),
                       "first" ("starting" or "notebook"), "output" (CODE's
                       stdout), and the seconds from the first request to
                       the first answer ("first_s"), to the notebook's page
                       ("page_s") and to CODE's output ("output_s"), and
                       the wall time of the notebook's page ("page_at")
Uses only Debian packages: python3-websocket.
"""
import http.cookiejar
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import websocket

BASE, USER, PASSWORD, COMMAND = sys.argv[1:5]
ARGS = sys.argv[5:]
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE
JAR = http.cookiejar.MozillaCookieJar()
# How long `browse` reloads the starting page before it gives up.
MAX_WAIT = 300


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(
    urllib.request.HTTPSHandler(context=CTX), urllib.request.HTTPCookieProcessor(JAR), NoRedirect)


def request(method, path, body=None, headers=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers or {})
    try:
        with OPENER.open(req, timeout=60) as r:
            return r.status, r.read().decode(errors="replace"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace"), dict(e.headers)


def login():
    form = urllib.parse.urlencode({"username": USER, "password": PASSWORD})
    return request("POST", "/hub/login", form, {"Content-Type": "application/x-www-form-urlencoded"})


def api(method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    status, text, _ = request(method, f"/user/{USER}/api/{path}", None if body is None else json.dumps(body), headers)
    return status, (json.loads(text) if text.strip().startswith(("{", "[")) else text)


def wait_for_server():
    deadline = time.time() + 180
    while time.time() < deadline:
        status, _ = api("GET", "status")
        if status == 200:
            return
        time.sleep(0.5)
    sys.exit(f"{USER}'s notebook server did not start")


def run_code(kernel_id, code, wait=True):
    cookie = "; ".join(f"{c.name}={c.value}" for c in JAR)
    url = BASE.replace("https://", "wss://") + f"/user/{USER}/api/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(url, sslopt={"cert_reqs": ssl.CERT_NONE, "check_hostname": False},
                                     header=[f"Cookie: {cookie}"],
                                     timeout=120)
    # First a kernel_info round trip, as the notebook page does.
    info_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": info_id, "username": USER, "session": uuid.uuid4().hex,
                   "msg_type": "kernel_info_request", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "content": {},
    }))
    while True:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") == info_id and msg["msg_type"] == "kernel_info_reply":
            break
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "username": USER, "session": uuid.uuid4().hex, "msg_type": "execute_request",
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    out = []
    while wait:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "error":
            sys.exit("kernel error: " + "\n".join(msg["content"]["traceback"]))
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    if not wait:
        # Stay until the kernel said busy, so the cell surely runs.
        while True:
            msg = json.loads(ws.recv())
            if (msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "busy"):
                break
    ws.close()
    return "".join(out)


def until_gone(kernel_id, code):
    cookie = "; ".join(f"{c.name}={c.value}" for c in JAR)
    url = BASE.replace("https://", "wss://") + f"/user/{USER}/api/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(url, sslopt={"cert_reqs": ssl.CERT_NONE, "check_hostname": False},
                                     header=[f"Cookie: {cookie}"], timeout=120)
    ws.send(json.dumps({
        "header": {"msg_id": uuid.uuid4().hex, "username": USER, "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    try:
        while True:
            text = ws.recv()
            if not text:
                return "closed"
            msg = json.loads(text)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] in ("dead", "restarting"):
                return "dead"
    except websocket.WebSocketTimeoutException:
        sys.exit("the kernel's WebSocket stayed open for 120 s: the cell did not end it")
    except (websocket.WebSocketConnectionClosedException, ConnectionError, ssl.SSLError):
        return "closed"


def load_session(cookies):
    if os.path.exists(cookies):
        JAR.load(cookies, ignore_discard=True, ignore_expires=True)
    if not any(c.name == "dspool_session" for c in JAR):
        status, text, _ = login()
        if status != 303:
            sys.exit(f"login as {USER}: HTTP {status}: {text[:200]}")
        JAR.save(cookies, ignore_discard=True, ignore_expires=True)


def browse(cookies, code):
    t0 = time.time()
    load_session(cookies)
    statuses, first_s = [], None
    path = f"/user/{USER}/tree"
    while True:
        status, text, headers = request("GET", path, None, {"Accept": "text/html"})
        now = time.time()
        statuses.append(status)
        if first_s is None:
            first_s = now - t0
        refresh = next((v for k, v in headers.items() if k.lower() == "refresh"), None)
        location = next((v for k, v in headers.items() if k.lower() == "location"), None)
        if status == 302 and path.startswith("/hub/spawn-pending/") and location:
            path = location  # the server is ready: on to where we were going
            continue
        if status >= 500 or status in (301, 302, 303, 401, 403):
            sys.exit(f"{USER}'s page: HTTP {status} after {statuses}: {text[:200]}")
        if status == 200 and refresh is None:
            break  # the notebook server's own page
        if refresh is None or now - t0 > MAX_WAIT:
            sys.exit(f"{USER}'s page: no notebook after {statuses}: {text[:200]}")
        # "SECONDS" or "SECONDS; url=PATH", as a browser reads it.
        delay, _, target = refresh.partition(";")
        target = target.strip()
        time.sleep(float(delay))
        if target.lower().startswith("url="):
            path = target[4:]
    page_at = now
    status, kernel = api("POST", "kernels", {"name": "python3"})
    if status not in (200, 201):
        sys.exit(f"start kernel: HTTP {status}: {kernel}")
    output = run_code(kernel["id"], code)
    print(json.dumps({"statuses": statuses, "first": "notebook" if len(statuses) == 1 else "starting",
                      "output": output, "first_s": round(first_s, 3), "page_s": round(page_at - t0, 3),
                      "output_s": round(time.time() - t0, 3), "page_at": round(page_at, 3)}))


# hold (gateway_restart_test.sh): as a notebook page left open. Logs in,
# starts a kernel, opens its channels WebSocket ONCE and prints "ready
# LOCAL_PORT"; then runs each line on stdin as code on that same WebSocket
# and prints the stdout it produced (one line at least), until stdin ends.
# It never reconnects: a WebSocket that closes or fails is an error,
# printed on stderr, and exit 1. The server's pings are answered while it
# waits for stdin (one thread: select on both).
def hold():
    import select

    status, text, _ = login()
    if status != 303:
        sys.exit(f"login as {USER}: HTTP {status}: {text[:200]}")
    request("GET", f"/user/{USER}/tree")  # starts the server
    wait_for_server()
    status, kernel = api("POST", "kernels", {"name": "python3"})
    if status not in (200, 201):
        sys.exit(f"start kernel: HTTP {status}: {kernel}")
    cookie = "; ".join(f"{c.name}={c.value}" for c in JAR)
    url = BASE.replace("https://", "wss://") + f"/user/{USER}/api/kernels/{kernel['id']}/channels"
    ws = websocket.create_connection(url, sslopt={"cert_reqs": ssl.CERT_NONE, "check_hostname": False},
                                     header=[f"Cookie: {cookie}"], timeout=120)
    session = uuid.uuid4().hex

    def closed(why):
        print(f"the kernel WebSocket closed: {why}", file=sys.stderr, flush=True)
        os._exit(1)

    def send(msg_type, content):
        msg_id = uuid.uuid4().hex
        try:
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "username": USER, "session": session, "msg_type": msg_type,
                           "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "channel": "shell", "content": content}))
        except Exception as e:  # the socket is gone: never reconnect
            closed(repr(e))
        return msg_id

    def receive():
        # One frame: a message, or None for a control frame (a ping, answered).
        try:
            opcode, frame = ws.recv_data_frame(control_frame=True)
        except Exception as e:
            closed(repr(e))
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            closed("the server sent a close frame " + repr(frame.data))
        if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
            return json.loads(frame.data)
        return None

    def wait_readable(with_stdin):
        if ws.sock.pending():
            return [ws.sock]
        fds = [ws.sock] + ([sys.stdin.fileno()] if with_stdin else [])
        return select.select(fds, [], [])[0]

    info_id = send("kernel_info_request", {})
    while True:
        if ws.sock in wait_readable(False):
            msg = receive()
            if msg and msg.get("parent_header", {}).get("msg_id") == info_id and msg["msg_type"] == "kernel_info_reply":
                break
    print("ready", ws.sock.getsockname()[1], flush=True)
    pending, buffered = None, b""  # the execute_request running, and its stdout so far
    out = []
    while True:
        readable = wait_readable(pending is None)
        if ws.sock in readable:
            msg = receive()
            if msg is None or pending is None or msg.get("parent_header", {}).get("msg_id") != pending:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                sys.exit("kernel error: " + "\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                text = "".join(out)
                print(text if text.endswith("\n") else text + "\n", end="", flush=True)
                pending, out = None, []
        elif sys.stdin.fileno() in readable:
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:
                ws.close()
                return
            buffered += chunk
        if pending is None and b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            pending = send("execute_request", {
                "code": line.decode(), "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, "stop_on_error": True})


if COMMAND == "hold":
    hold()
    sys.exit(0)

if COMMAND == "browse":
    browse(*ARGS)
    sys.exit(0)

if COMMAND == "page":
    load_session(ARGS[0])
    status, text, headers = request("GET", f"/user/{USER}/tree", None, {"Accept": "text/html"})
    refresh = next((v for k, v in headers.items() if k.lower() == "refresh"), None)
    print(json.dumps({"status": status, "refresh": refresh, "body": text}))
    sys.exit(0)

if COMMAND == "login-status":
    status, _, headers = login()
    print(status, "cookie" if any(k.lower() == "set-cookie" for k in headers) else "no-cookie")
    sys.exit(0)

status, text, _ = login()
if status != 303:
    sys.exit(f"login as {USER}: HTTP {status}: {text[:200]}")
status, _, _ = request("GET", f"/user/{USER}/tree")  # starts the server
if COMMAND == "start":
    print(status)
    sys.exit(0)
wait_for_server()

if COMMAND == "get":
    status, _, _ = request("GET", ARGS[0])
    print(status)
elif COMMAND == "notebook":
    path, code = ARGS
    status, body = api("PUT", "contents/" + path, {
        "type": "notebook", "format": "json",
        "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}})
    if status not in (200, 201):
        sys.exit(f"create {path}: HTTP {status}: {body}")
    status, kernel = api("POST", "kernels", {"name": "python3"})
    if status not in (200, 201):
        sys.exit(f"start kernel: HTTP {status}: {kernel}")
    print(run_code(kernel["id"], code), end="")
elif COMMAND == "busy":
    status, kernel = api("POST", "kernels", {"name": "python3"})
    if status not in (200, 201):
        sys.exit(f"start kernel: HTTP {status}: {kernel}")
    run_code(kernel["id"], f"import time; time.sleep({int(ARGS[0])})", wait=False)
    print("busy")
elif COMMAND == "until-gone":
    status, kernel = api("POST", "kernels", {"name": "python3"})
    if status not in (200, 201):
        sys.exit(f"start kernel: HTTP {status}: {kernel}")
    print(until_gone(kernel["id"], ARGS[0]))
else:
    sys.exit(f"unknown command {COMMAND}")

"""Holds connections to an echo service through a proxy, for bench/restart.sh.

  echo_hold.py PORT N

Opens N connections to 127.0.0.1:PORT, each answered by an echo server
behind the proxy, and from then on also opens a new connection every 10 ms
(each one checked with one echo, then closed). Reads commands on stdin and
answers each with one JSON line on stdout:

  check   every held connection sends a line and waits (5 s at most) for
          it back: {"alive": K, "dead": N - K}; a dead one stays dead
  churn   the new connections since the last "churn": {"tried", "failed"}

Uses only the standard library (Debian's /usr/bin/python3).
"""
import json
import selectors
import socket
import sys
import threading
import time

PORT, N = int(sys.argv[1]), int(sys.argv[2])
held = []
for i in range(N):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    held.append(s)
dead = set()

lock = threading.Lock()
churn = {"tried": 0, "failed": 0}


def churner():
    while True:
        ok = False
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=5) as s:
                s.sendall(b"new\n")
                ok = s.recv(16).startswith(b"new")
        except OSError:
            ok = False
        with lock:
            churn["tried"] += 1
            churn["failed"] += 0 if ok else 1
        time.sleep(0.01)


threading.Thread(target=churner, daemon=True).start()


def check():
    sel = selectors.DefaultSelector()
    want = {}
    for i, s in enumerate(held):
        if i in dead:
            continue
        try:
            s.sendall(b"ping %d\n" % i)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
            want[i] = b"ping %d\n" % i
        except OSError:
            dead.add(i)
    got = {i: b"" for i in want}
    deadline = time.monotonic() + 5
    while want and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            i = key.data
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:
                dead.add(i)
                sel.unregister(key.fileobj)
                want.pop(i, None)
                continue
            got[i] += data
            if got[i] == want[i]:
                sel.unregister(key.fileobj)
                key.fileobj.setblocking(True)
                want.pop(i)
    for i in want:
        dead.add(i)
    sel.close()
    return {"alive": N - len(dead), "dead": len(dead)}


print(json.dumps({"ready": N}), flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "check":
        print(json.dumps(check()), flush=True)
    elif command == "churn":
        with lock:
            print(json.dumps(churn), flush=True)
            churn["tried"] = churn["failed"] = 0

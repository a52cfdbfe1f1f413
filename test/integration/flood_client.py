"""Idle TCP connections to a pool's front port, for flood_test.sh and
bench/flood.sh.

  flood_client.py PORT COUNT SOURCES READY_FILE [--reopen]

Opens COUNT connections to 127.0.0.1:PORT, from the source addresses in
SOURCES (comma-separated, taken in turn), and sends nothing on any of them.
Once all are open it writes COUNT to READY_FILE. Then it holds them until
SIGTERM; with --reopen it opens a new one for each the server closes, so
COUNT stay open. On SIGTERM it closes them all and prints one line of JSON:

  {"opened": N, "closed_by_server": N, "answered": N, "failed": N}

`answered`: connections on which the server sent something. Through the
gateway to an SSH port that is 0: a silent client never reaches an
instance's sshd, which would greet it with its identification string.
"""
import json
import selectors
import signal
import socket
import sys


def main():
    if len(sys.argv) not in (5, 6) or (len(sys.argv) == 6 and sys.argv[5] != "--reopen"):
        sys.exit("usage: flood_client.py PORT COUNT SOURCES READY_FILE [--reopen]")
    port, count = int(sys.argv[1]), int(sys.argv[2])
    sources = [s for s in sys.argv[3].split(",") if s]
    ready_file = sys.argv[4]
    reopen = len(sys.argv) == 6
    if port <= 0 or port > 65535 or count <= 0 or not sources:
        sys.exit(f"flood_client.py: bad arguments {sys.argv[1:]}")

    stats = {"opened": 0, "closed_by_server": 0, "answered": 0, "failed": 0}
    selector = selectors.DefaultSelector()
    answered = set()
    turn = [0]

    def open_one():
        source = sources[turn[0] % len(sources)]
        turn[0] += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
        except OSError as e:
            s.close()
            stats["failed"] += 1
            return e
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ)
        stats["opened"] += 1
        return None

    for i in range(count):
        error = open_one()
        if error is not None:
            sys.exit(f"flood_client.py: connection {i + 1} of {count} to 127.0.0.1:{port}: {error}")
    with open(ready_file, "w") as f:
        f.write(f"{count}\n")

    stopping = [False]
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__(0, True))
    while not stopping[0]:
        for key, _ in selector.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if data:
                if s not in answered:
                    answered.add(s)
                    stats["answered"] += 1
                continue
            selector.unregister(s)
            answered.discard(s)
            s.close()
            stats["closed_by_server"] += 1
            if reopen:
                open_one()
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    print(json.dumps(stats))


if __name__ == "__main__":
    main()

"""A warm Python for starting Jupyter Notebook servers: dspool's zygote.

A Notebook server spends most of its start-up importing (about 0.4 s of
CPU for Notebook 6.4, IPython and their dependencies, before it binds its
port). The agent runs this program once per instance, as root; it imports
those modules once and then, for each server, forks a copy of itself that
becomes the user and runs the server's script in the interpreter that has
them all already: the server answers some ten times sooner.

Protocol, on the SOCK_SEQPACKET socket that is this process's stdin (the
agent holds the other end; the zygote exits when it closes):

  request   one JSON object {"id", "argv", "uid", "gid", "groups", "cwd",
            "log_path", "truncate_log", "log_dir_mode"}, with one file
            descriptor attached (SCM_RIGHTS): a pipe holding the child's
            whole environment, "NAME=value" entries each ending in a NUL
  reply     {"id", "pid"} once the child is the user, in `cwd`, with its
            output going to `log_path`; {"id", "step", "errno"} if a step
            failed ("step": "chdir /home/alice"); {"id", "error"} for
            anything else (a bad request, a failed fork)

The child is a grandchild (this process reaps the middle one), so the
agent — PID 1 of the instance — inherits and reaps it like any process it
spawned; it replies only once that has happened, so the agent may wait
for the pid it reads. It leads a session of its own, as os/children.h's Spawn makes
them, and every descriptor but 0-2 (and /dev/null) is closed before the
script runs.

Secrets: the environment (the server's token) goes from the agent to the
child through the pipe; this process never reads it, so no child forked
later finds another user's token in its copy of this process's memory.

argv[0] must be a Python script for this interpreter (the agent checks its
"#!" line); it runs as `python3 argv[0] argv[1:]` would run it.

The agent writes this file into the instance; it is built into the agent
from src/agent/dspool_zygote.py.
"""

import ctypes
import importlib
import json
import os
import pkgutil
import signal
import socket
import stat
import sys
import sysconfig
import time

# What Notebook 6.4 imports before it answers, beyond notebook.notebookapp
# itself: its handler modules (loaded by name in init_handlers), the asyncio
# patch, Jinja's i18n extension, and IPython (IPython.paths, for the
# nbextensions path: 0.1 s on its own). Measured with `python3 -X importtime`
# on Debian 12; a module that is missing is skipped.
PRELOAD = ("notebook.notebookapp", "nest_asyncio", "jinja2.ext", "IPython.paths", "dspool_kernels")


def preload():
    # Notebook imports distutils (notebook.utils, for LooseVersion). Through
    # setuptools' shim that is setuptools and pkg_resources as well, a fifth
    # of the whole preload's CPU; the standard library's own distutils has
    # the same class. Only when it is there, and only while preloading (the
    # shim reads the variable at each import; children get their own
    # environment anyway).
    stdlib_distutils = os.path.isdir(os.path.join(sysconfig.get_paths()["stdlib"], "distutils"))
    if stdlib_distutils and "SETUPTOOLS_USE_DISTUTILS" not in os.environ:
        os.environ["SETUPTOOLS_USE_DISTUTILS"] = "stdlib"
        try:
            preload_modules()
        finally:
            del os.environ["SETUPTOOLS_USE_DISTUTILS"]
    else:
        preload_modules()


def preload_modules():
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as e:  # an absent or broken module: the child imports it, or fails, itself
            print(f"dspool_zygote: not preloaded: {name}: {e}", file=sys.stderr)
    notebook = sys.modules.get("notebook")
    if notebook is not None:
        for info in pkgutil.walk_packages(notebook.__path__, "notebook."):
            if info.name.endswith(".handlers") and ".tests" not in info.name:
                try:
                    importlib.import_module(info.name)
                except Exception as e:
                    print(f"dspool_zygote: not preloaded: {info.name}: {e}", file=sys.stderr)


def send(sock, message):
    sock.send(json.dumps(message).encode())


class SetupError(Exception):
    def __init__(self, step, errno):
        super().__init__(step)
        self.step, self.errno = step, errno


def step(what, fn, *args):
    try:
        return fn(*args)
    except OSError as e:
        raise SetupError(what, e.errno) from None


def read_environment(fd):
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    entries = b"".join(chunks).split(b"\0")[:-1]
    env = {}
    for entry in entries:
        name, sep, value = entry.partition(b"=")
        if sep:
            env[os.fsdecode(name)] = os.fsdecode(value)
    return env


def close_descriptors():
    """Closes every descriptor but 0-2 and those open on /dev/null.

    Preloaded modules keep files on /dev/null (IPython's devnull), closed at
    exit by an atexit handler; they leak nothing, and closing them under
    their file objects would make those handlers fail.
    """
    null = os.stat("/dev/null").st_rdev
    for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
        if fd > 2:
            try:
                st = os.fstat(fd)
            except OSError:
                continue  # the directory listdir had open
            if not (stat.S_ISCHR(st.st_mode) and st.st_rdev == null):
                os.close(fd)


def become(sock, request, env_fd):
    """In the grandchild: the user, in their directory, writing to the log.

    Replies to the agent and closes everything but 0-2; raises SetupError
    (before replying) if a step fails.
    """
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    os.setsid()
    gid, uid = request["gid"], request["uid"]
    step(f"drop to uid {uid} gid {gid}", lambda: (os.setgroups(request["groups"]), os.setresgid(gid, gid, gid),
                                                   os.setresuid(uid, uid, uid)))
    if request["cwd"]:
        step(f"chdir {request['cwd']}", os.chdir, request["cwd"])
    log_path = request["log_path"]
    if request["log_dir_mode"]:
        try:
            os.mkdir(os.path.dirname(log_path) or ".", request["log_dir_mode"])
        except FileExistsError:
            pass
        except OSError as e:
            raise SetupError(f"mkdir {os.path.dirname(log_path)}", e.errno) from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | (os.O_TRUNC if request["truncate_log"] else 0)
    log = step(f"open {log_path}", os.open, log_path, flags, 0o600)
    step(f"open {log_path}", os.fchmod, log, 0o600)
    null = step("open /dev/null", os.open, "/dev/null", os.O_RDONLY)
    env = read_environment(env_fd)
    send(sock, {"id": request["id"], "pid": os.getpid()})
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    close_descriptors()
    os.environ.clear()
    os.environ.update(env)
    return env


def run_script(argv):
    """In the grandchild: argv[0] as the interpreter would run it. Never returns."""
    import runpy

    try:  # the command name ps and top show: the script's, not ours
        ctypes.CDLL(None).prctl(15, os.path.basename(argv[0]).encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (AttributeError, OSError):
        pass
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(argv[0])
    runpy.run_path(argv[0], run_name="__main__")
    sys.exit(0)


def serve(sock, request, env_fd):
    """Forks the server for one request; returns in this process only."""
    try:
        middle = os.fork()
    except OSError as e:
        os.close(env_fd)
        send(sock, {"id": request["id"], "error": f"fork: {e.strerror}"})
        return
    if middle:
        os.close(env_fd)
        os.waitpid(middle, 0)
        return
    middle = os.getpid()
    try:
        if os.fork():
            os._exit(0)
    except OSError as e:
        send(sock, {"id": request["id"], "error": f"fork: {e.strerror}"})
        os._exit(1)
    # Reply only once the middle is gone, so that whoever reads the pid (the
    # agent, the instance's PID 1, or a subreaper) is already its parent and
    # can wait for it. The middle exits right after the fork.
    while os.getppid() == middle:
        time.sleep(0.0002)
    try:
        become(sock, request, env_fd)
    except SetupError as e:
        send(sock, {"id": request["id"], "step": e.step, "errno": e.errno})
        os._exit(127)
    except Exception as e:
        send(sock, {"id": request["id"], "error": f"setting up the child: {e!r}"})
        os._exit(127)
    # From here on this process is the user's server: SystemExit ends it
    # (through the interpreter's normal exit), nothing returns to the loop.
    run_script(request["argv"])


FIELDS = {"id": int, "argv": list, "uid": int, "gid": int, "groups": list, "cwd": str, "log_path": str,
          "truncate_log": bool, "log_dir_mode": int}


def parse(message, fds):
    request = json.loads(message)
    if not isinstance(request, dict):
        raise ValueError("not a JSON object")
    for name, kind in FIELDS.items():
        if not isinstance(request.get(name), kind):
            raise ValueError(f'"{name}" missing or not {kind.__name__}')
    if not request["argv"] or not all(isinstance(a, str) for a in request["argv"]):
        raise ValueError('"argv" must be a non-empty list of strings')
    if len(fds) != 1:
        raise ValueError(f"{len(fds)} descriptors attached, not 1")
    return request


def main():
    wall, cpu = time.monotonic(), time.process_time()
    preload()
    print(f"dspool_zygote: preloaded in {time.monotonic() - wall:.2f} s ({time.process_time() - cpu:.2f} s of CPU)",
          file=sys.stderr, flush=True)
    sock = socket.socket(fileno=0)
    while True:
        message, fds, _, _ = socket.recv_fds(sock, 65536, 1)
        if not message:
            return 0  # the agent is gone
        try:
            request = parse(message, fds)
        except ValueError as e:
            for fd in fds:
                os.close(fd)
            print(f"dspool_zygote: bad request: {e}", file=sys.stderr)
            try:
                send(sock, {"id": json.loads(message)["id"], "error": f"bad request: {e}"})
            except (ValueError, KeyError, TypeError):
                pass
            continue
        serve(sock, request, fds[0])


if __name__ == "__main__":
    sys.exit(main())

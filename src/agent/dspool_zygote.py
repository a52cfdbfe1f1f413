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

Kernels. A request may also ask for "kernel_forker": true (the agent does
when the server loads dspool_kernels). The child then, once it is the user
and before the script runs, forks its kernel forker: a copy of itself that
has imported ipykernel too, and forks a kernel for each launch the server
sends it, instead of the server starting a fresh interpreter that imports
for a second of CPU. dspool_kernels.KernelForker is the server's end and
says which launches go there; serve_kernels below is the forker's loop.

  request   {"argv", "env", "cwd"}: `python3 -m ipykernel_launcher ARGS`
            as LocalProvisioner would run it, with that whole environment
  reply     {"started": pid} from the kernel, once it leads a session of
            its own in `cwd`; {"error": "chdir /x: No such file or
            directory", "argv"} if a step failed there (it then exits 127);
            {"error"} alone if the request was bad or the fork failed
  event     {"exited": pid, "status": S} when a kernel it forked has
            exited (S as Popen.returncode: -N for signal N)

The forker dies with the server (PR_SET_PDEATHSIG) and exits when the
server's end closes. A kernel whose forker is gone is reparented to the
agent, and ipykernel's parent poller (JPY_PARENT_PID) ends it, as it ends
a kernel whose server died.

argv[0] must be a Python script for this interpreter (the agent checks its
"#!" line); it runs as `python3 argv[0] argv[1:]` would run it.

The agent writes this file into the instance; it is built into the agent
from src/agent/dspool_zygote.py.
"""

import ctypes
import importlib
import importlib.util
import json
import locale
import os
import pkgutil
import select
import signal
import site
import socket
import stat
import sys
import sysconfig
import time
import traceback

# What Notebook 6.4 imports before it answers, beyond notebook.notebookapp
# itself: its handler modules (loaded by name in init_handlers), the asyncio
# patch, Jinja's i18n extension, and IPython (IPython.paths, for the
# nbextensions path: 0.1 s on its own). Measured with `python3 -X importtime`
# on Debian 12; a module that is missing is skipped.
PRELOAD = ("notebook.notebookapp", "nest_asyncio", "jinja2.ext", "IPython.paths", "dspool_kernels")

# What ipykernel_launcher imports before its kernel answers, for the kernel
# forkers: preloaded once no server start is waiting (0.3 s of CPU that a
# login right after the instance's start need not wait for). A forker made
# before imports it itself, once, before its first kernel.
KERNEL_PRELOAD = ("ipykernel.kernelapp",)

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15


def preload(names):
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
            preload_modules(names)
        finally:
            del os.environ["SETUPTOOLS_USE_DISTUTILS"]
    else:
        preload_modules(names)


def preload_modules(names):
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # an absent or broken module: the child imports it, or fails, itself
            print(f"dspool_zygote: not preloaded: {name}: {e}", file=sys.stderr)
    notebook = sys.modules.get("notebook")
    if notebook is not None and "notebook.notebookapp" in names:
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


def prctl(option, value):
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (AttributeError, OSError):
        return False


def set_command_name(name):
    prctl(PR_SET_NAME, name.encode()[:15])


def run_script(argv):
    """In the grandchild: argv[0] as the interpreter would run it. Never returns."""
    import runpy

    set_command_name(os.path.basename(argv[0]))  # what ps and top show: the script's, not ours
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
    if request.get("kernel_forker") is True:
        start_kernel_forker()
    # From here on this process is the user's server: SystemExit ends it
    # (through the interpreter's normal exit), nothing returns to the loop.
    run_script(request["argv"])


def start_kernel_forker():
    """In a server's process, before its script runs: forks its kernel
    forker and gives dspool_kernels the server's end. Should that fail, it
    says why in the server's log, and the server starts its kernels itself."""
    kernels = sys.modules.get("dspool_kernels")
    if kernels is None:
        print("dspool_zygote: no kernel forker: dspool_kernels was not preloaded", file=sys.stderr, flush=True)
        return
    server = os.getpid()
    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError as e:
        print(f"dspool_zygote: no kernel forker: socketpair: {e.strerror}", file=sys.stderr, flush=True)
        return
    try:
        pid = os.fork()
    except OSError as e:
        ours.close()
        theirs.close()
        print(f"dspool_zygote: no kernel forker: fork: {e.strerror}", file=sys.stderr, flush=True)
        return
    if pid == 0:
        ours.close()
        forker = os.getpid()
        try:
            serve_kernels(theirs, server)
        except BaseException:
            if os.getpid() != forker:
                raise  # a kernel's exit (SystemExit), to the interpreter's, as the script's would
            traceback.print_exc()
        os._exit(0)  # never on to the server's script
    theirs.close()
    kernels.FORKER = kernels.KernelForker(ours, pid)


def serve_kernels(sock, server):
    """The kernel forker's loop (module docstring, "Kernels"). Returns when
    the server's end is closed; in a kernel, never returns."""
    if not prctl(PR_SET_PDEATHSIG, signal.SIGKILL) or os.getppid() != server:
        return  # the server is gone already, or could leave us behind
    set_command_name("kernel-forker")
    preload(KERNEL_PRELOAD)  # if the zygote had not yet
    pidfds = {}  # of the kernels not yet reaped: pidfd -> pid
    while True:
        readable, _, _ = select.select([sock.fileno(), *pidfds], [], [])
        for fd in readable:
            if fd != sock.fileno():
                pid = pidfds.pop(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                send(sock, {"exited": pid, "status": os.waitstatus_to_exitcode(status)})
                continue
            message = sock.recv(1 << 20)
            if not message:
                return
            try:
                request = json.loads(message)
                argv, env, cwd = request["argv"], request["env"], request["cwd"]
                if argv[1:3] != ["-m", "ipykernel_launcher"] or not isinstance(env, dict) or not isinstance(cwd, str):
                    raise ValueError("not a `python3 -m ipykernel_launcher` launch with an env and a cwd")
            except (ValueError, KeyError, IndexError, TypeError) as e:
                send(sock, {"error": f"bad request: {e}"})
                continue
            try:
                pid = os.fork()
            except OSError as e:
                send(sock, {"error": f"fork: {e.strerror}"})
                continue
            if pid == 0:
                become_kernel(sock, argv, env, cwd)
                run_kernel(argv)
            pidfds[os.pidfd_open(pid)] = pid


def become_kernel(sock, argv, env, cwd):
    """In a kernel, forked by the forker: what Popen(argv, env=env,
    cwd=cwd, start_new_session=True, stdin=PIPE) would have started,
    except that its stdin is /dev/null. Replies to the server; exits 127
    if a step fails."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        step("setsid", os.setsid)
        step(f"chdir {cwd}", os.chdir, cwd)
        null = step("open /dev/null", os.open, "/dev/null", os.O_RDONLY)
    except SetupError as e:
        send(sock, {"error": f"{e.step}: {os.strerror(e.errno)}", "argv": argv})
        os._exit(127)
    send(sock, {"started": os.getpid()})
    sock.detach()  # closed below, with the forker's other descriptors
    os.dup2(null, 0)
    os.close(null)
    close_descriptors()
    os.environ.clear()
    os.environ.update(env)
    try:
        locale.setlocale(locale.LC_CTYPE, "")  # as the interpreter's start does, for this environment
    except locale.Error:
        pass
    use_own_user_site()


def use_own_user_site():
    """sys.path as a fresh `python3` of this user would have it: their
    ~/.local site-packages (where `pip install --user` puts packages), not
    the zygote's (root's), before the system's site-packages."""
    old_user_site = site.USER_SITE
    if old_user_site in sys.path:
        sys.path.remove(old_user_site)
    site.USER_BASE = site.USER_SITE = None  # computed again, from this HOME
    if os.environ.get("PYTHONNOUSERSITE") or not site.ENABLE_USER_SITE:
        return
    user_site = site.getusersitepackages()
    if not os.path.isdir(user_site):
        return
    before = list(sys.path)
    site.addsitedir(user_site)  # appends it, and what its .pth files name
    added = [p for p in sys.path if p not in before]
    system = [i for i, p in enumerate(before) if p in site.getsitepackages()]
    at = system[0] if system else len(before)
    sys.path[:] = before[:at] + added + before[at:]


def run_kernel(argv):
    """In a kernel: what `python3 -m ipykernel_launcher ARGS` runs. Never
    returns.

    ipykernel_launcher.py calls kernelapp.launch_new_instance(); here the
    call also gives the kernel app the parent's pid, a trait whose default
    ipykernel reads from JPY_PARENT_PID at its import, which was the
    zygote's (without it, no parent poller ends the kernel of a server that
    died)."""
    set_command_name(os.path.basename(argv[0]))  # "python3", as a kernel started afresh is named
    sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, *argv[3:]]  # as -m makes it
    sys.path[0] = os.getcwd()  # -m puts the working directory first
    try:
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(parent_handle=int(os.environ.get("JPY_PARENT_PID") or 0))
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
    sys.exit(0)


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


def timed_preload(names, what):
    wall, cpu = time.monotonic(), time.process_time()
    preload(names)
    print(f"dspool_zygote: preloaded{what} in {time.monotonic() - wall:.2f} s "
          f"({time.process_time() - cpu:.2f} s of CPU)", file=sys.stderr, flush=True)


def main():
    timed_preload(PRELOAD, "")
    sock = socket.socket(fileno=0)
    kernel_preload = KERNEL_PRELOAD
    while True:
        if kernel_preload and not select.select([sock], [], [], 0)[0]:
            timed_preload(kernel_preload, " for kernels")
            kernel_preload = ()
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

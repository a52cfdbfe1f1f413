"""Notebook's kernel manager: a "busy" that means a cell is running, and a
spare kernel started before anyone asks for one.

dspool's agent starts Debian's Jupyter Notebook 6.4 with
--NotebookApp.kernel_manager_class=dspool_kernels.WorkAwareKernelManager and
reads /api/kernels to tell whether a server may be culled.

Busy. Notebook 6.4 takes a kernel's execution_state from every IOPub status
message, including those that answer the kernel_info requests it sends
itself each time a client connects to the kernel's WebSocket. A browser that
reconnects during a long cell therefore makes /api/kernels say "idle" while
the cell runs, and a culler trusting that stops the computation. Here a
kernel is "busy" from the status "busy" of an execute_request until that
request's status "idle", whatever else the kernel reports meanwhile.

Spare. A new ipykernel imports for about half a second before it answers,
and a user who has just logged in would wait for that. So the manager, as
soon as it exists (Notebook makes it early in its start-up, before its web
application), launches spare_kernels (--WorkAwareKernelManager.spare_kernels,
default 1; 0: none) kernels of the default kernel name with the root
directory as cwd, and does not wait for them to answer. start_kernel hands
a spare out only when the launch asked for is exactly the spare's (same
kernel name, same cwd, no kernel_id, no other launch argument such as an
env; see launch_key) and the spare's process is alive; Notebook's own
start_kernel then registers it as it registers a kernel it launched
(activity watching, "dead" callback, connection count, metrics, culler),
and the next spare is launched replenish_delay later, once no kernel of
the server is "starting" any more (has not answered: many users logging in
at once on a few CPUs would otherwise wait for spares' starts too):

    spare ──start_kernel fits──> handed out: in _kernels, a kernel like any
      ^                                │
      └── replenish_delay (1 s), ──────┘
          and every kernel answered
    spare ──dies──> restarted by its KernelRestarter, as any kernel is
    spare ──fails to start, or its restarter gives up──> a failure; after
          MAX_SPARE_FAILURES of them, no spares any more (logged once)

Spares are not in _kernels: /api/kernels, /api/status, the culler and
Notebook's "no kernels" shutdown never see them. shutdown_all (the server
stopping) kills them, and so does the interpreter's exit, should the server
exit another way (it does when its port is taken).

The spare is launched as the server starts (some 0.05 s after the agent's
zygote forks it). Started afresh, a kernel takes 0.4 s to answer on an idle
CPU, so one asked for the moment the server first answers still waits for
most of that; forked (below), the spare is ready by then. One asked for
once the browser has loaded its page answers at once (0.06 s instead of
0.43 s).

Forked kernels. A server the agent's zygote started has a kernel forker
(dspool_zygote.py, "Kernels"): a process that imported ipykernel before the
server existed. The kernels' manager class here, ForkingKernelManager,
gives each kernel a ForkingProvisioner, Notebook's LocalProvisioner except
that a launch the forker can make, `python3 -m ipykernel_launcher ...` for
this very interpreter with Python's environment unchanged (see
KernelForker.can_fork), is forked there: the kernel costs some 0.25 s of
CPU before it answers instead of 0.7 s, which is what many users logging
in at once on a few CPUs wait for. Any other launch, or any launch once the
forker failed, starts a fresh process as before. The forker reports each
kernel's exit; ForkedKernel is the Popen the provisioner keeps.

Everything but the exit hook runs on the server's IOLoop thread. The agent
writes this file into the instance; it is built into the agent from
src/agent/dspool_kernels.py.
"""

import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from functools import partial

from jupyter_client.ioloop import IOLoopKernelManager
from jupyter_client.multikernelmanager import MultiKernelManager
from jupyter_client.provisioning import LocalProvisioner
from jupyter_client.session import Session
from notebook._tz import utcnow
from notebook.services.kernels.kernelmanager import MappingKernelManager
from tornado.ioloop import IOLoop
from traitlets import Integer, default

try:
    # jupyter_client's kernel spec lookup imports this (and with it debugpy:
    # 0.08 s) to recognise ipykernel's own spec, at the first launch. Here
    # it is loaded before the spare's launch, and in the agent's zygote
    # (which preloads this module) before the server exists.
    import ipykernel.kernelspec  # noqa: F401
except ImportError:
    pass

MAX_SPARE_FAILURES = 3

# The server's KernelForker; set by the agent's zygote before the server's
# script runs. None: kernels start afresh.
FORKER = None

# Seconds a launch waits for the forker's answer before giving up on it.
FORKER_TIMEOUT = 10


class KernelForker:
    """The server's end of its kernel forker."""

    def __init__(self, sock, pid):
        self._sock = sock
        self.pid = pid  # the forker's
        self._exits = {}  # pid -> returncode, of forked kernels that exited
        self._broken = None  # why the forker is not used any more

    def can_fork(self, cmd, kwargs):
        """Whether the forker makes the process Popen(cmd, **kwargs) would:
        `python3 -m ipykernel_launcher` for this interpreter, nothing asked
        of Popen but env and cwd, and an environment that leaves Python's
        own settings (PYTHON*) as this server has them: the agent gives its
        zygote the same, and an interpreter reads them at its start."""
        if self.broken or cmd[1:3] != ["-m", "ipykernel_launcher"]:
            return False
        if set(kwargs) - {"env", "cwd"}:
            return False
        env = kwargs.get("env")
        program = cmd[0] if "/" in cmd[0] else shutil.which(cmd[0], path=(env or os.environ).get("PATH"))
        if program is None or os.path.realpath(program) != os.path.realpath(sys.executable):
            return False
        if env is None:
            return True

        def python_settings(e):
            return {k: v for k, v in e.items() if k.startswith("PYTHON")}

        return python_settings(env) == python_settings(os.environ)

    def launch(self, cmd, kwargs, log):
        """The ForkedKernel of Popen(cmd, **kwargs), forked; None if the
        forker cannot make it or failed (then it is not asked again)."""
        if not self.can_fork(cmd, kwargs):
            return None
        env = dict(kwargs.get("env") or os.environ)
        env["JPY_PARENT_PID"] = str(os.getpid())  # as launch_kernel sets it
        request = {"argv": list(cmd), "env": env, "cwd": kwargs.get("cwd") or os.getcwd()}
        try:
            self._sock.send(json.dumps(request).encode())
            reply = self._next_reply(time.monotonic() + FORKER_TIMEOUT)
        except OSError as e:
            reply = {"error": f"{e.strerror or e}"}
        if "started" in reply:
            return ForkedKernel(self, reply["started"])
        if "argv" in reply:  # a step of this launch failed, as Popen would have
            raise OSError(f"Could not start kernel {reply['argv']}: {reply['error']}")
        self._give_up(f"kernel forker: {reply['error']}; kernels start afresh from now on", log)
        return None

    @property
    def broken(self):
        return self._broken is not None

    def returncode(self, pid, timeout=0):
        """The exit status of forked kernel pid, None while it runs; waits
        for it at most timeout seconds (None: until it exits, or the forker
        is gone)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid not in self._exits and not self.broken:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self._receive(left) is None and left == 0:
                break
        return self._exits.get(pid)

    def _next_reply(self, deadline):
        """The next message that is not an exit event."""
        while True:
            message = self._receive(max(0, deadline - time.monotonic()))
            if message is None:
                if self.broken:
                    return {"error": self._broken}
                return {"error": f"no answer within {FORKER_TIMEOUT} s"}
            if "exited" not in message:
                return message

    def _receive(self, timeout):
        """One message, noting exits; None if none came within timeout."""
        if self.broken:
            return None
        readable, _, _ = select.select([self._sock], [], [], timeout)
        if not readable:
            return None
        try:
            data = self._sock.recv(1 << 20)
        except OSError as e:
            data, why = b"", e.strerror
        else:
            why = "it exited"
        if not data:
            self._give_up(f"kernel forker: {why}", None)
            return None
        message = json.loads(data)
        if "exited" in message:
            self._exits[message["exited"]] = message["status"]
        return message

    def _give_up(self, why, log):
        """No more launches: kernels start afresh. Those it forked run on;
        ForkedKernel watches them itself."""
        if self.broken:
            return
        self._broken = why
        if log is not None:
            log.warning(why)
        try:
            os.waitpid(self.pid, os.WNOHANG)  # our child: no zombie left
        except ChildProcessError:
            pass


class ForkedKernel:
    """The Popen of a kernel the forker started (as much of it as
    LocalProvisioner uses). Signals go through a pidfd, so none reaches
    another process that got the pid after the forker reaped the kernel."""

    stdin = stdout = stderr = None

    def __init__(self, forker, pid):
        self._forker = forker
        self.pid = pid
        self.returncode = None
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd = None  # gone already; the forker reports its exit

    def poll(self):
        return self._returncode(0)

    def wait(self, timeout=None):
        if self._returncode(timeout) is None:
            raise subprocess.TimeoutExpired(self.pid, timeout)
        return self.returncode

    def _returncode(self, timeout):
        if self.returncode is not None:
            return self.returncode
        code = self._forker.returncode(self.pid, timeout)
        if code is None and self._forker.broken:
            # Its exit can no longer be reported: watch the process itself
            # (a pidfd is readable once it has exited). Its status is lost:
            # 1, as ipykernel's parent poller exits when its parent is gone.
            if self._pidfd is None or select.select([self._pidfd], [], [], timeout)[0]:
                code = 1
        if code is not None:
            self.returncode = code
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        return self.returncode

    def send_signal(self, signum):
        if self.poll() is None and self._pidfd is not None:
            signal.pidfd_send_signal(self._pidfd, signum)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)


class ForkingProvisioner(LocalProvisioner):
    """LocalProvisioner, with the launches the forker can make forked."""

    async def launch_kernel(self, cmd, **kwargs):
        forker = FORKER
        process = None
        if forker is not None:
            process = forker.launch(cmd, LocalProvisioner._scrub_kwargs(kwargs), self.log)
        if process is None:
            return await super().launch_kernel(cmd, **kwargs)
        self.process = process
        self.pid = self.pgid = process.pid  # it leads a session of its own, as launch_kernel makes it
        return self.connection_info


class ForkingKernelManager(IOLoopKernelManager):
    """Notebook's kernel manager class, with a ForkingProvisioner where the
    kernel spec names no provisioner (where jupyter_client would make a
    LocalProvisioner)."""

    def pre_start_kernel(self, **kw):
        # What KernelManager's does first, up to making the provisioner.
        if self.provisioner is None and not self.kernel_spec.metadata.get("kernel_provisioner"):
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = ForkingProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return super().pre_start_kernel(**kw)


def launch_key(kernel_name, launch_kwargs, default_kernel_name, server_cwd):
    """What a kernel launch would start, as a value equal for two launches
    that start the same process: (kernel name, real path of its cwd).

    launch_kwargs are what MultiKernelManager.start_kernel gets besides
    kernel_name; without "cwd" the kernel gets the server's (server_cwd).
    None when they ask for anything more (a kernel_id, an env, extra
    arguments): no spare is such a launch.
    """
    if set(launch_kwargs) - {"cwd"}:
        return None
    return (kernel_name or default_kernel_name, os.path.realpath(launch_kwargs.get("cwd") or server_cwd))


class _Spare:
    def __init__(self, key, km, on_dead):
        self.key = key  # launch_key of its launch
        self.km = km  # a KernelManager, not in _kernels
        self.on_dead = on_dead  # its restarter's "dead" callback


class _LaunchOrHandOut(MultiKernelManager):
    """WorkAwareKernelManager's pinned_superclass. Notebook's start_kernel
    launches a kernel with one call, pinned_superclass.start_kernel(self,
    ...), and registers it around that call; here that call hands out a
    spare when one fits. self is the WorkAwareKernelManager."""

    def start_kernel(self, kernel_name=None, **kwargs):
        kernel_id = self._take_spare(kernel_name, kwargs)
        if kernel_id is None:
            kernel_id = MultiKernelManager.start_kernel(self, kernel_name=kernel_name, **kwargs)
        self._schedule_spares()
        return kernel_id


class WorkAwareKernelManager(MappingKernelManager):
    spare_kernels = Integer(
        1,
        config=True,
        help="""Kernels of the default kernel name, in the root directory,
        kept started for start_kernel to hand out. 0: none.""",
    )

    # Seconds from handing out a spare to launching the next: the new
    # kernel's imports would slow the first requests to the one handed out.
    replenish_delay = 1.0

    @default("kernel_manager_class")
    def _default_kernel_manager_class(self):
        return "dspool_kernels.ForkingKernelManager"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pinned_superclass = _LaunchOrHandOut
        self._spares = []  # of _Spare, oldest first
        self._spare_failures = 0
        self._spares_stopped = False  # by shutdown_all: no more spares
        self._replenish = None  # the pending _start_spares timeout, if any
        atexit.register(self._stop_spares)
        self._start_spares()

    def shutdown_all(self, now=False):
        self._stop_spares()
        super().shutdown_all(now=now)

    def _start_spares(self):
        """Launches spares until there are spare_kernels. A launch returns
        once the process runs; its imports go on without us. Not while a
        kernel of the user's has not answered yet (its state "starting"):
        the spare's start would slow it; tried again replenish_delay later."""
        self._replenish = None
        if any(getattr(k, "execution_state", None) == "starting" for k in self._kernels.values()):
            self._schedule_spares()
            return
        while self._spares_wanted():
            launch = {"cwd": self.cwd_for_path("")}
            km = None
            try:
                km, name, kernel_id = self.pre_start_kernel(self.default_kernel_name, dict(launch))
                km.start_kernel(kernel_id=kernel_id, **launch)
            except Exception as e:
                if km is not None:
                    self._stop_spare(km)
                self._spare_failed(f"Could not start a spare kernel: {e}")
                return  # tried again after the next start_kernel
            on_dead = partial(self._spare_died, km)
            km.add_restart_callback(on_dead, "dead")
            self._spares.append(_Spare(launch_key(name, launch, self.default_kernel_name, ""), km, on_dead))
            self.log.info(f"Spare kernel started: {kernel_id}, name: {name}")

    def _spares_wanted(self):
        return (
            not self._spares_stopped
            and self._spare_failures < MAX_SPARE_FAILURES
            and len(self._spares) < self.spare_kernels
        )

    def _schedule_spares(self):
        if self._replenish is None and self._spares_wanted():
            self._replenish = IOLoop.current().call_later(self.replenish_delay, self._start_spares)

    def _take_spare(self, kernel_name, kwargs):
        """Registers in _kernels a spare that is the launch
        MultiKernelManager.start_kernel(kernel_name, **kwargs) would make,
        and returns its id; None if no spare is."""
        try:
            key = launch_key(kernel_name, kwargs, self.default_kernel_name, os.getcwd())
        except OSError:  # the server's cwd is gone
            return None
        for spare in self._spares:
            km = spare.km
            # Not while its restarter restarts it; a dead one is left to it.
            if spare.key != key or not km.ready.done() or km.shutting_down or not km.is_alive():
                continue
            self._spares.remove(spare)
            km.remove_restart_callback(spare.on_dead, "dead")
            self._kernels[km.kernel_id] = km
            self.log.info(f"Spare kernel handed out: {km.kernel_id}")
            return km.kernel_id
        return None

    def _spare_died(self, km):
        """Its restarter gave up on it (restart_limit restarts in a row)."""
        self._spares = [s for s in self._spares if s.km is not km]
        self._stop_spare(km)
        self._spare_failed(f"Spare kernel {km.kernel_id} died and could not be restarted")
        self._schedule_spares()

    def _spare_failed(self, what):
        self._spare_failures += 1
        self.log.warning(what)
        if self._spare_failures == MAX_SPARE_FAILURES:
            self.log.warning(f"{MAX_SPARE_FAILURES} spare kernels failed: no more spares; kernels start when asked for")

    def _stop_spares(self):
        self._spares_stopped = True
        spares, self._spares = self._spares, []
        for spare in spares:
            self._stop_spare(spare.km)

    def _stop_spare(self, km):
        try:
            km.shutdown_kernel(now=True)  # also removes its connection file
        except Exception as e:
            # At exit the event loop may be closed: kill the process at least.
            self.log.warning(f"Could not shut down spare kernel {km.kernel_id}: {e}")
            process = getattr(km.provisioner, "process", None)
            if process is not None:
                process.kill()

    def start_watching_activity(self, kernel_id):
        super().start_watching_activity(kernel_id)
        kernel = self._kernels[kernel_id]
        # A Session of its own, as Notebook's watcher has: a Session remembers
        # the signatures it checked and refuses to see one twice.
        session = Session(config=kernel.session.config, key=kernel.session.key)
        running = set()  # msg_ids of execute_requests that have started and not finished

        def record_activity(msg_list):
            self.last_kernel_activity = kernel.last_activity = utcnow()
            _, fed = session.feed_identities(msg_list)
            msg = session.deserialize(fed, content=True)
            if msg["header"]["msg_type"] != "status":
                return
            state = msg["content"].get("execution_state")
            parent = msg.get("parent_header") or {}
            if state in ("starting", "restarting", "dead"):
                running.clear()  # a new (or no) kernel process: nothing of the old one runs
                kernel.execution_state = state
                return
            if parent.get("msg_type") == "execute_request":
                if state == "busy":
                    running.add(parent.get("msg_id"))
                elif state == "idle":
                    running.discard(parent.get("msg_id"))
            kernel.execution_state = "busy" if running else "idle"

        heard = []  # set by the first message that tells a state

        def record_and_note(msg_list):
            record_activity(msg_list)
            # A kernel's own "starting" (heard when the subscription beats
            # the kernel's start, as it does for a forked kernel handed out
            # at once) says it runs, not whether a cell does: probe on.
            if kernel.execution_state != "starting":
                heard.append(True)

        def probe():
            if heard or kernel_id not in self._kernels or kernel.shutting_down:
                return
            # kernel_info on a shell channel of our own: answered at once by
            # an idle kernel, after the running cell by a busy one. Its
            # status messages tell the watcher which (parent kernel_info:
            # "idle" unless an execute_request is known to run).
            shell = kernel.connect_shell()
            shell.on_recv(lambda _: shell.close())
            # Unanswered (the kernel stopped), the request must not keep the
            # zmq context from terminating: Context.destroy waits for
            # unsent messages as long as their socket's linger (default:
            # forever); seen as a hang at exit.
            shell.socket.linger = 1000
            kernel.session.send(shell, "kernel_info_request")

        # A subscription made while the kernel starts is sometimes never
        # served (seen in LXC instances: the kernel answers its WebSocket
        # clients, but this stream hears nothing, for minutes), and the
        # kernel's first statuses are lost anyway. Until the stream hears
        # a state (not the kernel's own "starting"): probe, and if still
        # nothing, connect again, with growing pauses (about 8 minutes in
        # all). "starting" until then; the agent counts that as busy: a cell
        # may run unheard.
        def resubscribe(pause):
            if heard or kernel_id not in self._kernels or kernel._activity_stream is None:
                return
            kernel._activity_stream.close()
            kernel._activity_stream = kernel.connect_iopub()
            kernel._activity_stream.on_recv(record_and_note)
            IOLoop.current().call_later(0.2, probe)
            if pause < 256:
                IOLoop.current().call_later(pause, resubscribe, pause * 2)

        kernel._activity_stream.on_recv(record_and_note)
        IOLoop.current().call_later(0.5, probe)
        IOLoop.current().call_later(2, resubscribe, 2)

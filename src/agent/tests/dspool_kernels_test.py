"""Test of dspool_kernels.WorkAwareKernelManager.

The busy tests use no kernel: the IOPub stream is a fake that keeps the
callback, and messages are signed by a real jupyter_client Session, as a
kernel's are. The spare tests start real ipykernel processes through the
manager (a second or two each), and the server test runs Debian's Notebook
on 127.0.0.1 and prints how long a new kernel takes to answer, with and
without a spare. Run by CTest (label unit) with /usr/bin/python3; exits 77
(skipped) where Debian's Notebook or ipykernel is missing, or fails there
under DSPOOL_REQUIRE_ALL=1 (CI; README.md, "Tests").
"""

import asyncio
import contextlib
import glob
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from unittest import mock

def cannot_run_here(why):
    """Says why, and returns the exit status: 77 (skipped, for CTest), or 1
    where every test must run."""
    if os.environ.get("DSPOOL_REQUIRE_ALL") == "1":
        print(f"FAIL: {why} (DSPOOL_REQUIRE_ALL=1: a test that cannot run here fails)")
        return 1
    print(f"skipped: {why}")
    return 77


try:
    from jupyter_client.blocking import BlockingKernelClient
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.session import Session
    from notebook.services.kernels import kernelmanager
    from tornado import httpclient, web, websocket
    from traitlets.config import Config
except ImportError as e:
    sys.exit(cannot_run_here(f"{e} (apt-get install jupyter-notebook)"))

import dspool_kernels
import dspool_zygote

try:
    import ipykernel  # noqa: F401 (the kernels the spare tests start)

    NO_IPYKERNEL = None
except ImportError as e:
    NO_IPYKERNEL = f"{e} (apt-get install python3-ipykernel)"

# Seconds after which a kernel or a server that has not done what is awaited
# (answered, started, exited) is taken to hang. A bound, not a measure: a
# Notebook importing with no compiled bytecode on two busy CPUs took more
# than 30 s to answer.
DEADLINE = 120

# Kernels talk over Unix sockets in their runtime directory: a TCP kernel's
# ports are picked free by its manager, then bound by the kernel once it has
# imported, and a kernel that is slow to import finds one taken meanwhile
# (by another test's kernel or server) and exits ("Address already in use").
IPC_TRANSPORT = {"KernelManager": {"transport": "ipc"}}


class FakeStream:
    def __init__(self):
        self.callback = None

    def on_recv(self, callback):
        self.callback = callback


class FakeKernel:
    def __init__(self):
        self.session = Session(key=b"secret")
        self.stream = FakeStream()

    def connect_iopub(self):
        return self.stream


def status(session, state, parent_type=None, parent_id="p"):
    """A signed IOPub status message as a kernel sends it (a zmq frame list)."""
    parent = {} if parent_type is None else session.msg_header(parent_type) | {"msg_id": parent_id}
    msg = session.msg("status", content={"execution_state": state}, parent=parent)
    return session.serialize(msg)


class LoopTest(unittest.TestCase):
    """A test with an asyncio event loop of its own, current while it runs."""

    def setUp(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.addCleanup(asyncio.set_event_loop, None)
        self.addCleanup(self.loop.close)


class WorkAwareKernelManagerTest(LoopTest):
    def watch(self, manager_class, **kwargs):
        manager = manager_class(**kwargs)
        kernel = FakeKernel()
        manager._kernels["k"] = kernel
        manager.start_watching_activity("k")
        return kernel, lambda *args: kernel.stream.callback(status(kernel.session, *args))

    def watch_work_aware(self):
        return self.watch(dspool_kernels.WorkAwareKernelManager, spare_kernels=0)

    def test_a_running_cell_stays_busy_whatever_control_requests_say(self):
        kernel, feed = self.watch_work_aware()
        self.assertEqual(kernel.execution_state, "starting")
        feed("starting")
        feed("busy", "kernel_info_request", "k1")
        feed("idle", "kernel_info_request", "k1")
        self.assertEqual(kernel.execution_state, "idle")
        feed("busy", "execute_request", "cell")
        self.assertEqual(kernel.execution_state, "busy")
        # A page connects: the server asks for kernel_info on the control
        # channel, which the kernel answers while the cell runs.
        feed("busy", "kernel_info_request", "nudge")
        feed("idle", "kernel_info_request", "nudge")
        self.assertEqual(kernel.execution_state, "busy")
        feed("idle", "execute_request", "cell")
        self.assertEqual(kernel.execution_state, "idle")

    def test_stock_notebook_reports_that_cell_idle(self):
        # The behaviour this module exists for: if this ever fails, Notebook
        # fixed it and the module may go.
        kernel, feed = self.watch(kernelmanager.MappingKernelManager)
        feed("busy", "execute_request", "cell")
        feed("busy", "kernel_info_request", "nudge")
        feed("idle", "kernel_info_request", "nudge")
        self.assertEqual(kernel.execution_state, "idle")

    def test_a_restart_forgets_the_cells_of_the_old_process(self):
        kernel, feed = self.watch_work_aware()
        feed("busy", "execute_request", "cell")
        feed("restarting")
        self.assertEqual(kernel.execution_state, "restarting")
        feed("starting")
        feed("idle", "kernel_info_request", "k2")
        self.assertEqual(kernel.execution_state, "idle")

    def test_activity_is_recorded_for_every_message(self):
        kernel, feed = self.watch_work_aware()
        before = kernel.last_activity
        feed("busy", "comm_info_request", "c")
        self.assertGreaterEqual(kernel.last_activity, before)


class LaunchKeyTest(unittest.TestCase):
    def key(self, kernel_name, **kwargs):
        return dspool_kernels.launch_key(kernel_name, kwargs, "python3", "/srv/home")

    def test_the_default_name_and_the_servers_cwd_fill_in(self):
        self.assertEqual(self.key(None), ("python3", "/srv/home"))
        self.assertEqual(self.key(None), self.key("python3", cwd="/srv/home"))
        self.assertEqual(self.key(None, cwd=""), self.key(None))

    def test_another_name_or_cwd_is_another_launch(self):
        self.assertNotEqual(self.key("ir"), self.key(None))
        self.assertNotEqual(self.key(None, cwd="/srv/home/sub"), self.key(None))

    def test_a_cwd_is_compared_where_it_leads(self):
        with tempfile.TemporaryDirectory() as tmp:
            os.mkdir(os.path.join(tmp, "real"))
            os.symlink("real", os.path.join(tmp, "link"))
            self.assertEqual(self.key(None, cwd=os.path.join(tmp, "link")), self.key(None, cwd=os.path.join(tmp, "real")))

    def test_any_other_launch_argument_matches_no_spare(self):
        self.assertIsNone(self.key(None, kernel_id="k"))
        self.assertIsNone(self.key(None, env={"A": "1"}))
        self.assertIsNone(self.key(None, cwd="/srv/home", extra_arguments=[]))


def process_alive(pid):
    """False once pid has exited (a zombie has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def processes_mentioning(text):
    """Pids of the processes whose command line holds text."""
    pids = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if text.encode() in cmdline and int(path.split("/")[2]) != os.getpid():
            pids.append(int(path.split("/")[2]))
    return pids


@contextlib.contextmanager
def answering_client(connection_file, pid):
    """A BlockingKernelClient of the kernel of connection_file (process
    pid), once the kernel has answered it: the IOPub status of one of its
    kernel_info requests heard, which shows the kernel runs and the IOPub
    subscription is in place (one made as the kernel starts can miss what
    is published meanwhile; so the request is repeated each second until an
    answer is heard). Fails if the process exits first, or after DEADLINE.

    Not BlockingKernelClient.wait_for_ready: a client made without a
    KernelManager judges the kernel by its heartbeat, and calls it dead
    ("Kernel died before replying to kernel_info") when the heartbeat has
    not answered within a second of the channel's start, which a kernel
    still importing (no compiled bytecode yet, busy CPUs) has not. Here
    there is no heartbeat channel: the kernel's death is its process's.
    More kernel_info replies may follow on the shell channel: read it by
    parent msg_id.
    """
    client = BlockingKernelClient(connection_file=connection_file)
    client.load_connection_file()
    client.start_channels(hb=False)
    try:
        asked = set()
        deadline = time.monotonic() + DEADLINE
        next_ask = 0
        while True:
            now = time.monotonic()
            if not process_alive(pid):
                raise AssertionError(f"kernel {pid} exited before it answered kernel_info")
            if now > deadline:
                raise AssertionError(f"kernel {pid} did not answer kernel_info within {DEADLINE} s")
            if now >= next_ask:
                asked.add(client.kernel_info())
                next_ask = now + 1
            try:
                msg = client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") in asked:
                break
        yield client
    finally:
        client.stop_channels()


def shell_reply(client, msg_id):
    """The reply on the shell channel to request msg_id."""
    deadline = time.monotonic() + DEADLINE
    while True:
        msg = client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def iopub_message(client, msg_id, msg_type):
    """The first IOPub message of msg_type that request msg_id caused."""
    deadline = time.monotonic() + DEADLINE
    while True:
        msg = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == msg_type:
            return msg


def ask(km, code):
    """The text/plain of what the kernel of km (a KernelManager) answers to
    an execute_request of code, asked as a client of its connection file."""
    with answering_client(km.connection_file, km.provisioner.pid) as client:
        msg_id = client.execute(code)
        deadline = time.monotonic() + DEADLINE
        while True:
            msg = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_result":
                return msg["content"]["data"]["text/plain"]
            if msg["msg_type"] == "error":
                return msg["content"]["ename"]


def write_kernel_spec(directory, name, argv):
    os.makedirs(os.path.join(directory, name))
    with open(os.path.join(directory, name, "kernel.json"), "w") as f:
        json.dump({"argv": argv, "display_name": name, "language": "python"}, f)


@unittest.skipIf(NO_IPYKERNEL, NO_IPYKERNEL)
class SpareKernelTest(LoopTest):
    """The manager as Notebook uses it: made before the event loop runs,
    start_kernel awaited on that loop."""

    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory(prefix="dspool_kernels_test.")
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.root = os.path.join(self.tmp, "root")
        os.makedirs(os.path.join(self.root, "sub"))
        self.runtime = os.path.join(self.tmp, "runtime")
        os.mkdir(self.runtime)
        self.log = logging.getLogger(f"dspool_kernels_test.{self.id()}")
        # The kernels' history and profile (they inherit our environment).
        environment = mock.patch.dict(os.environ, {"IPYTHONDIR": os.path.join(self.tmp, "ipython")})
        environment.start()
        self.addCleanup(environment.stop)

    def manager(self, config=None, **kwargs):
        config, given = Config(IPC_TRANSPORT), config
        config.merge(given or Config())
        m = dspool_kernels.WorkAwareKernelManager(
            root_dir=self.root, connection_dir=self.runtime, log=self.log, config=config, **kwargs
        )
        self.addCleanup(lambda: self.assertEqual(os.listdir(self.runtime), [], "a connection file left"))
        self.addCleanup(m.shutdown_all)
        return m

    def run_loop(self, awaitable):
        return self.loop.run_until_complete(awaitable)

    def wait_until(self, condition, what):
        """Runs the event loop until condition() holds; fails after DEADLINE."""
        deadline = time.monotonic() + DEADLINE
        while not condition():
            if time.monotonic() > deadline:
                self.fail(f"not within {DEADLINE} s: {what}")
            self.run_loop(asyncio.sleep(0.02))

    def spare_kms(self, m):
        return [s.km for s in m._spares]

    def listed(self, m):
        return [k["id"] for k in m.list_kernels()]

    def test_the_spare_is_handed_out_then_replaced(self):
        m = self.manager()
        [spare] = self.spare_kms(m)
        pid, connection_file = spare.provisioner.pid, spare.connection_file
        self.assertEqual((self.listed(m), len(m)), ([], 0))

        kernel_id = self.run_loop(m.start_kernel(path=""))
        kernel = m.get_kernel(kernel_id)
        self.assertIs(kernel, spare)
        self.assertEqual(self.spare_kms(m), [], "the next spare waits for replenish_delay")
        self.assertEqual((kernel.provisioner.pid, kernel.connection_file), (pid, connection_file))
        self.assertEqual((self.listed(m), len(m)), ([kernel_id], 1))
        self.assertEqual(ask(kernel, "6*7"), "42")
        self.assertEqual(ask(kernel, "import os; os.getcwd()"), repr(os.path.realpath(self.root)))
        # Registered as a started kernel is: watched, connections counted.
        self.wait_until(lambda: kernel.execution_state == "idle", "the activity watcher hears the kernel")
        self.assertEqual(m.kernel_model(kernel_id)["connections"], 0)
        self.assertIn(kernel_id, m._kernel_connections)
        self.assertEqual(len(kernel._restarter.callbacks["dead"]), 1, "Notebook's only, not the spare's")

        self.wait_until(lambda: m._spares, "a new spare")
        [replacement] = self.spare_kms(m)
        self.assertIsNot(replacement, spare)
        self.assertTrue(process_alive(replacement.provisioner.pid))
        self.assertEqual((self.listed(m), len(m)), ([kernel_id], 1))

        second = self.run_loop(m.start_kernel(path=""))
        self.assertIs(m.get_kernel(second), replacement)
        self.assertEqual(ask(replacement, "6*7"), "42")
        self.assertEqual(sorted(self.listed(m)), sorted([kernel_id, second]))

    def test_a_launch_unlike_the_spares_starts_a_kernel_of_its_own(self):
        m = self.manager()
        [spare] = self.spare_kms(m)

        sub = self.run_loop(m.start_kernel(path="sub"))
        self.assertIsNot(m.get_kernel(sub), spare)
        self.assertEqual(
            ask(m.get_kernel(sub), "import os; os.getcwd()"),
            repr(os.path.realpath(os.path.join(self.root, "sub"))),
        )
        env = self.run_loop(m.start_kernel(path="", env=dict(os.environ, DSPOOL_SPARE_TEST="1")))
        self.assertIsNot(m.get_kernel(env), spare)
        self.assertEqual(ask(m.get_kernel(env), "import os; os.environ['DSPOOL_SPARE_TEST']"), "'1'")
        # Notebook starts nothing for a kernel_id: it is the kernel of that id,
        # or none.
        self.assertEqual(self.run_loop(m.start_kernel(kernel_id=sub)), sub)
        with self.assertRaises(web.HTTPError):
            self.run_loop(m.start_kernel(kernel_id=str(uuid.uuid4())))
        # No path (POST /api/kernels): the server's cwd, here not the root.
        self.assertNotEqual(os.path.realpath(os.getcwd()), os.path.realpath(self.root))
        elsewhere = self.run_loop(m.start_kernel())
        self.assertIsNot(m.get_kernel(elsewhere), spare)

        self.assertEqual(self.spare_kms(m), [spare])
        self.assertIsNone(m._replenish, "no spare is missing")
        self.assertEqual(sorted(self.listed(m)), sorted([sub, env, elsewhere]))

        # No path in the root: the spare's launch.
        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            here = self.run_loop(m.start_kernel())
        finally:
            os.chdir(cwd)
        self.assertIs(m.get_kernel(here), spare)

    def test_shutdown_all_stops_kernels_and_spares(self):
        m = self.manager(spare_kernels=2)
        m.replenish_delay = 0.01
        self.assertEqual(len(m._spares), 2)
        handed_out = self.run_loop(m.start_kernel(path=""))
        own = self.run_loop(m.start_kernel(path="sub"))
        self.wait_until(lambda: len(m._spares) == 2, "the spare handed out replaced")
        kms = [m.get_kernel(handed_out), m.get_kernel(own)] + self.spare_kms(m)
        pids = [km.provisioner.pid for km in kms]
        self.assertTrue(all(process_alive(pid) for pid in pids))

        m.shutdown_all()
        self.assertEqual([pid for pid in pids if process_alive(pid)], [])
        self.assertEqual((self.listed(m), m._spares), ([], []))
        self.assertEqual(os.listdir(self.runtime), [])
        self.run_loop(m.start_kernel(path=""))  # after shutdown_all, no spare comes back
        self.wait_until(lambda: m._replenish is None, "a pending replenish has run")
        self.assertEqual(m._spares, [])

    def test_no_spare_when_spare_kernels_is_0(self):
        m = self.manager(spare_kernels=0)
        self.assertEqual(m._spares, [])
        kernel_id = self.run_loop(m.start_kernel(path=""))
        self.assertEqual(ask(m.get_kernel(kernel_id), "6*7"), "42")
        self.assertEqual((m._spares, m._replenish), ([], None))

    def test_a_handed_out_kernel_interrupts_restarts_and_shuts_down(self):
        m = self.manager(spare_kernels=1)
        [spare] = self.spare_kms(m)
        kernel_id = self.run_loop(m.start_kernel(path=""))
        self.assertIs(m.get_kernel(kernel_id), spare)
        old_pid = spare.provisioner.pid
        # The watcher's subscription is live once it has heard the kernel
        # (its probe's kernel_info): a cell started before could have its
        # "busy" published to nobody (ZeroMQ's late joiner), and this test
        # would wait for a status that was never delivered.
        self.wait_until(lambda: spare.execution_state == "idle", "the watcher hears the handed-out kernel")

        with answering_client(spare.connection_file, old_pid) as client:
            msg_id = client.execute("print('running', flush=True); import time; time.sleep(60)")
            # Interrupted once the cell's code runs: the kernel says "busy"
            # before, while it prepares the cell, and an interrupt then stops
            # its handler ("KeyboardInterrupt caught in kernel"): no reply.
            self.assertEqual(iopub_message(client, msg_id, "stream")["content"]["text"], "running\n")
            self.wait_until(lambda: spare.execution_state == "busy", "the watcher hears the cell run")
            m.interrupt_kernel(kernel_id)
            reply = shell_reply(client, msg_id)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual((reply["content"]["status"], reply["content"]["ename"]), ("error", "KeyboardInterrupt"))

        restarted = self.run_loop(m.restart_kernel(kernel_id))
        self.run_loop(restarted)  # the kernel_info reply of the new process
        self.assertNotEqual(spare.provisioner.pid, old_pid)
        self.assertFalse(process_alive(old_pid))
        self.assertEqual(ask(spare, "6*7"), "42")

        new_pid = spare.provisioner.pid
        m.shutdown_kernel(kernel_id)
        self.assertEqual(self.listed(m), [])
        self.assertFalse(process_alive(new_pid))

    def test_a_spare_that_dies_is_restarted(self):
        m = self.manager(config=Config({"KernelRestarter": {"time_to_dead": 0.1}}))
        [spare] = self.spare_kms(m)
        old_pid = spare.provisioner.pid
        os.kill(old_pid, signal.SIGKILL)
        self.wait_until(
            lambda: spare.provisioner.pid != old_pid and spare.ready.done() and spare.is_alive(),
            "the spare's restarter starts it again",
        )
        self.assertEqual(self.spare_kms(m), [spare])
        self.assertEqual(m._spare_failures, 0)
        kernel_id = self.run_loop(m.start_kernel(path=""))
        self.assertIs(m.get_kernel(kernel_id), spare)
        self.assertEqual(ask(spare, "6*7"), "42")

    def test_spares_that_keep_dying_are_given_up(self):
        specs = os.path.join(self.tmp, "kernels")
        write_kernel_spec(specs, "dying", [sys.executable, "-c", "raise SystemExit(3)", "{connection_file}"])
        with self.assertLogs(self.log, logging.WARNING) as logs:
            m = self.manager(
                kernel_spec_manager=KernelSpecManager(kernel_dirs=[specs]),
                default_kernel_name="dying",
                config=Config({"KernelRestarter": {"time_to_dead": 0.05, "restart_limit": 1}}),
            )
            m.replenish_delay = 0.01
            self.wait_until(lambda: m._spare_failures == dspool_kernels.MAX_SPARE_FAILURES, "the failures counted")
            self.wait_until(lambda: m._replenish is None, "a pending replenish has run")
        self.assertEqual(m._spares, [])
        self.assertEqual(m._spare_failures, dspool_kernels.MAX_SPARE_FAILURES)
        self.assertEqual(sum("no more spares" in line for line in logs.output), 1, logs.output)

    def test_a_spare_that_cannot_start_leaves_the_normal_way(self):
        specs = os.path.join(self.tmp, "kernels")
        write_kernel_spec(specs, "missing", [os.path.join(self.tmp, "no-such-python"), "{connection_file}"])
        with self.assertLogs(self.log, logging.WARNING) as logs:
            m = self.manager(
                kernel_spec_manager=KernelSpecManager(kernel_dirs=[specs]), default_kernel_name="missing"
            )
        self.assertEqual((m._spares, m._spare_failures), ([], 1))
        self.assertTrue(any("Could not start a spare kernel" in line for line in logs.output), logs.output)
        kernel_id = self.run_loop(m.start_kernel(path="", kernel_name="python3"))
        self.assertEqual(ask(m.get_kernel(kernel_id), "6*7"), "42")


# The kernel forker of this process (dspool_zygote.start_kernel_forker),
# made in main() before any test runs, while this process has one thread,
# as the zygote's child has; None where ipykernel is missing. Tests that
# want it set dspool_kernels.FORKER to it.
FORKER = None


def parent_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@unittest.skipIf(NO_IPYKERNEL, NO_IPYKERNEL)
class ForkedSpareKernelTest(SpareKernelTest):
    """Every spare test again, with kernels from the kernel forker."""

    def setUp(self):
        super().setUp()
        self.assertIsNotNone(FORKER, "main() made the forker")
        forker = mock.patch.object(dspool_kernels, "FORKER", FORKER)
        forker.start()
        self.addCleanup(forker.stop)

    def assert_forked(self, km):
        self.assertIsInstance(km.provisioner.process, dspool_kernels.ForkedKernel)
        self.assertEqual(parent_of(km.provisioner.pid), FORKER.pid)

    def test_a_kernel_is_forked_and_runs_as_one_started_afresh(self):
        m = self.manager(spare_kernels=0)
        kernel_id = self.run_loop(m.start_kernel(path="sub"))
        km = m.get_kernel(kernel_id)
        self.assert_forked(km)
        sub = os.path.realpath(os.path.join(self.root, "sub"))
        # As `python3 -m ipykernel_launcher` in its directory, leading a
        # session of its own, with its parent's pid for the parent poller.
        self.assertEqual(ask(km, "import os; os.getcwd(), os.getsid(0) == os.getpid()"), repr((sub, True)))
        launcher = os.path.join(os.path.dirname(ipykernel.__path__[0]), "ipykernel_launcher.py")
        self.assertEqual(ask(km, f"import sys; sys.path[0] == {sub!r} and sys.argv[0] == {launcher!r}"), "True")
        self.assertEqual(ask(km, "import os; os.environ['JPY_PARENT_PID']"), repr(str(os.getpid())))
        self.assertEqual(ask(km, "from ipykernel.kernelapp import IPKernelApp; IPKernelApp.instance().parent_handle"),
                         str(os.getpid()))
        pid = km.provisioner.pid
        m.shutdown_kernel(kernel_id)
        self.assertFalse(process_alive(pid))
        self.assertIn(pid, FORKER._exits, "the forker reported its exit")

    def test_the_users_own_site_packages_come_before_the_systems(self):
        home = os.path.join(self.tmp, "home")
        user_site = os.path.join(home, ".local/lib", f"python{sys.version_info[0]}.{sys.version_info[1]}",
                                 "site-packages")
        os.makedirs(user_site)
        with open(os.path.join(user_site, "dspool_user_module.py"), "w") as f:
            f.write("WHERE = 'the user site'\n")
        m = self.manager(spare_kernels=0)
        kernel_id = self.run_loop(m.start_kernel(path="", env=dict(os.environ, HOME=home)))
        km = m.get_kernel(kernel_id)
        self.assert_forked(km)
        self.assertEqual(ask(km, "import dspool_user_module; dspool_user_module.WHERE"), repr("the user site"))
        self.assertEqual(
            ask(km, f"import sys, site; sys.path.index({user_site!r}) < min(sys.path.index(p) "
                    "for p in site.getsitepackages() if p in sys.path)"),
            "True",
        )

    def test_a_launch_the_forker_cannot_make_starts_afresh(self):
        m = self.manager(spare_kernels=0)
        # Python's own settings differ: a fresh interpreter must read them.
        kernel_id = self.run_loop(m.start_kernel(path="", env=dict(os.environ, PYTHONHASHSEED="7")))
        km = m.get_kernel(kernel_id)
        self.assertNotIsInstance(km.provisioner.process, dspool_kernels.ForkedKernel)
        self.assertEqual(parent_of(km.provisioner.pid), os.getpid())
        self.assertEqual(ask(km, "import os; os.environ['PYTHONHASHSEED']"), "'7'")

    def test_a_step_that_fails_in_the_kernel_is_the_launchs_error(self):
        missing = os.path.join(self.tmp, "missing")
        cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", os.path.join(self.runtime, "kernel-x.json")]
        with self.assertRaises(OSError) as raised:
            FORKER.launch(cmd, {"cwd": missing, "env": dict(os.environ)}, self.log)
        self.assertEqual(str(raised.exception), f"Could not start kernel {cmd}: chdir {missing}: No such file or directory")
        self.assertFalse(FORKER.broken, "the forker is not given up for a launch's own failure")

    def test_a_forker_that_is_gone_is_left_and_kernels_start_afresh(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        theirs.close()
        gone = dspool_kernels.KernelForker(ours, FORKER.pid)
        with mock.patch.object(dspool_kernels, "FORKER", gone):
            m = self.manager(spare_kernels=0)
            with self.assertLogs(self.log, logging.WARNING) as logs:
                kernel_id = self.run_loop(m.start_kernel(path=""))
            km = m.get_kernel(kernel_id)
            self.assertEqual(parent_of(km.provisioner.pid), os.getpid())
            self.assertEqual(ask(km, "6*7"), "42")
            # Said once; not asked again.
            self.assertTrue(gone.broken)
            self.assertEqual(len(logs.output), 1, logs.output)
            self.assertIn("kernel forker: ", logs.output[0])
            self.assertIn("kernels start afresh from now on", logs.output[0])
        ours.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NotebookServer:
    """Debian's Notebook with WorkAwareKernelManager, in a directory of its
    own (root, runtime, config, data, IPython dir and log under it)."""

    TOKEN = "dspool-test-token"

    def __init__(self, directory, port, spare_kernels):
        self.directory = directory
        self.root = os.path.join(directory, "root")
        self.runtime = os.path.join(directory, "runtime")
        os.makedirs(self.root)
        self.address = f"127.0.0.1:{port}"
        env = dict(
            os.environ,
            PYTHONPATH=os.path.dirname(os.path.abspath(dspool_kernels.__file__)),
            JUPYTER_RUNTIME_DIR=self.runtime,
            JUPYTER_CONFIG_DIR=os.path.join(directory, "config"),
            JUPYTER_DATA_DIR=os.path.join(directory, "data"),
            IPYTHONDIR=os.path.join(directory, "ipython"),
        )
        argv = [
            "/usr/bin/python3", "-m", "notebook", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            "--NotebookApp.port_retries=0", f"--NotebookApp.token={self.TOKEN}", f"--notebook-dir={self.root}",
            "--NotebookApp.kernel_manager_class=dspool_kernels.WorkAwareKernelManager",
            "--KernelManager.transport=ipc",  # see IPC_TRANSPORT
            f"--WorkAwareKernelManager.spare_kernels={spare_kernels}",
        ]  # fmt: skip
        if os.geteuid() == 0:
            argv.append("--allow-root")
        self.log_path = os.path.join(directory, "server.log")
        with open(self.log_path, "wb") as log:
            self.started = time.monotonic()
            self.process = subprocess.Popen(argv, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def request(self, path, scheme="http", **kwargs):
        headers = {"Authorization": f"token {self.TOKEN}"}
        url = f"{scheme}://{self.address}{path}"
        return httpclient.HTTPRequest(url, headers=headers, request_timeout=DEADLINE, **kwargs)

    async def wait_answering(self):
        """Seconds from launch until GET /api/status answers."""
        client = httpclient.AsyncHTTPClient()
        deadline = time.monotonic() + DEADLINE
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited ({self.process.returncode}):\n{self.log()}")
            try:
                await client.fetch(self.request("/api/status"))
                return time.monotonic() - self.started
            except (ConnectionError, httpclient.HTTPClientError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)

    async def start_kernel_and_ask(self):
        """POST /api/kernels, then 6*7 over the kernel's WebSocket, as a
        page does: (kernel id, answer, seconds from the POST to the answer)."""
        client = httpclient.AsyncHTTPClient()
        posted = time.monotonic()
        response = await client.fetch(self.request("/api/kernels", method="POST", body="{}"))
        kernel_id = json.loads(response.body)["id"]
        ws = await websocket.websocket_connect(
            self.request(f"/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4()}", scheme="ws")
        )
        try:
            msg_id = str(uuid.uuid4())
            header = {"msg_id": msg_id, "msg_type": "execute_request", "session": str(uuid.uuid4()),
                      "username": "test", "version": "5.3", "date": ""}  # fmt: skip
            content = {"code": "6*7", "silent": False, "store_history": True, "user_expressions": {},
                       "allow_stdin": False, "stop_on_error": True}  # fmt: skip
            ws.write_message(json.dumps({"header": header, "parent_header": {}, "metadata": {},
                                         "content": content, "buffers": [], "channel": "shell"}))  # fmt: skip
            while True:
                text = await asyncio.wait_for(ws.read_message(), DEADLINE)
                if text is None:
                    raise AssertionError(f"the kernel's WebSocket closed:\n{self.log()}")
                msg = json.loads(text)
                if msg["msg_type"] == "execute_result" and msg["parent_header"].get("msg_id") == msg_id:
                    return kernel_id, msg["content"]["data"]["text/plain"], time.monotonic() - posted
        finally:
            ws.close()
            while await asyncio.wait_for(ws.read_message(), DEADLINE) is not None:
                pass

    async def kernel_ids(self):
        response = await httpclient.AsyncHTTPClient().fetch(self.request("/api/kernels"))
        return [k["id"] for k in json.loads(response.body)]

    def connection_files(self):
        return sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.runtime, "kernel-*.json")))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@unittest.skipIf(NO_IPYKERNEL, NO_IPYKERNEL)
class NotebookServerTest(LoopTest):
    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory(prefix="dspool_kernels_test.")
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name

    def server(self, name, port, spare_kernels):
        server = NotebookServer(os.path.join(self.tmp, name), port, spare_kernels)
        self.addCleanup(
            lambda: self.assertEqual(processes_mentioning(server.directory), [], "a process outlived its server")
        )
        self.addCleanup(server.stop)
        return server

    def wait_until(self, condition, what):
        deadline = time.monotonic() + DEADLINE
        while not condition():
            if time.monotonic() > deadline:
                self.fail(f"not within {DEADLINE} s: {what}")
            time.sleep(0.02)

    def run_server(self, spare_kernels):
        """Asks a new kernel for 6*7 as soon as a new server answers, then
        a second one once the server is warm (with a spare: once the spare
        that replaced the first answers); checks what the server shows and
        leaves. Returns the seconds from launch to the server's answer, and
        from each POST to the kernel's answer."""
        server = self.server(f"spare{spare_kernels}", free_port(), spare_kernels)
        answering = self.loop.run_until_complete(server.wait_answering())
        spares = server.connection_files()
        first, answer, first_seconds = self.loop.run_until_complete(server.start_kernel_and_ask())
        self.assertEqual(answer, "42")
        self.assertEqual(self.loop.run_until_complete(server.kernel_ids()), [first])
        self.assertEqual(spares, [f"kernel-{first}.json"] if spare_kernels else [], "the kernel is the spare")

        if spare_kernels:
            self.wait_until(lambda: len(server.connection_files()) == 2, "a new spare")
            [spare] = set(server.connection_files()) - {f"kernel-{first}.json"}
            path = os.path.join(server.runtime, spare)
            # The connection file is written before the kernel is launched.
            self.wait_until(lambda: len(processes_mentioning(path)) == 1, "the new spare's process")
            [pid] = processes_mentioning(path)
            with answering_client(path, pid):
                pass
        second, answer, second_seconds = self.loop.run_until_complete(server.start_kernel_and_ask())
        self.assertEqual(answer, "42")
        self.assertEqual(sorted(self.loop.run_until_complete(server.kernel_ids())), sorted([first, second]))
        if spare_kernels:
            self.assertEqual(f"kernel-{second}.json", spare, "the second kernel is the new spare")

        self.assertEqual(server.stop(), 0, server.log())
        self.assertEqual(server.connection_files(), [])
        return answering, first_seconds, second_seconds

    def test_a_new_server_hands_out_its_spare(self):
        for spare_kernels in (1, 0):
            answering, first, second = self.run_server(spare_kernels)
            print(
                f"\nspare_kernels={spare_kernels}: the server answers {answering:.2f} s after its launch; "
                f"a kernel POSTed then answers 6*7 after {first:.3f} s, one POSTed once warm after {second:.3f} s",
                file=sys.stderr,
            )

    def test_a_server_that_cannot_listen_leaves_no_spare(self):
        port = free_port()
        first = self.server("first", port, 0)
        self.loop.run_until_complete(first.wait_answering())
        second = self.server("second", port, 1)
        self.assertEqual(second.process.wait(timeout=DEADLINE), 1)  # exits without stopping kernels
        self.assertIn("Spare kernel started", second.log())
        self.assertEqual(processes_mentioning(second.directory), [], "the spare outlived its server")
        self.assertEqual(second.connection_files(), [])


def start_forker():
    global FORKER
    if NO_IPYKERNEL:
        return
    import ipykernel.kernelapp  # noqa: F401 (as the agent's zygote preloads it)

    dspool_zygote.start_kernel_forker()
    FORKER, dspool_kernels.FORKER = dspool_kernels.FORKER, None


def main():
    start_forker()
    result = unittest.main(exit=False).result
    if not result.wasSuccessful():
        return 1
    if result.skipped:  # passed only in part: not a pass
        return cannot_run_here("; ".join(sorted({reason for _, reason in result.skipped})))
    return 0


if __name__ == "__main__":
    code = main()
    # Out without the interpreter's finalisation: there, jupyter_client's
    # MultiKernelManager.__del__ destroys the managers' zmq context, and
    # zmq_ctx_term waits for sockets of it the collector has not closed yet
    # (seen as a hang of minutes after every test had passed). Each test has
    # checked already that its kernels, servers and files are gone.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

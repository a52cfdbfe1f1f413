"""Unit test of dspool_kernels.WorkAwareKernelManager: no kernel, no server.

The IOPub stream is a fake that keeps the callback; messages are signed by a
real jupyter_client Session, as a kernel's are. Run by CTest (label unit)
with /usr/bin/python3; exits 77 (skipped) where Debian's Notebook is missing.
"""

import sys
import unittest

try:
    from jupyter_client.session import Session
    from notebook.services.kernels import kernelmanager
except ImportError as e:
    print(f"skipped: {e} (apt-get install jupyter-notebook)")
    sys.exit(77)

import dspool_kernels


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


class WorkAwareKernelManagerTest(unittest.TestCase):
    def watch(self, manager_class):
        manager = manager_class()
        kernel = FakeKernel()
        manager._kernels["k"] = kernel
        manager.start_watching_activity("k")
        return kernel, lambda *args: kernel.stream.callback(status(kernel.session, *args))

    def test_a_running_cell_stays_busy_whatever_control_requests_say(self):
        kernel, feed = self.watch(dspool_kernels.WorkAwareKernelManager)
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
        kernel, feed = self.watch(dspool_kernels.WorkAwareKernelManager)
        feed("busy", "execute_request", "cell")
        feed("restarting")
        self.assertEqual(kernel.execution_state, "restarting")
        feed("starting")
        feed("idle", "kernel_info_request", "k2")
        self.assertEqual(kernel.execution_state, "idle")

    def test_activity_is_recorded_for_every_message(self):
        kernel, feed = self.watch(dspool_kernels.WorkAwareKernelManager)
        before = kernel.last_activity
        feed("busy", "comm_info_request", "c")
        self.assertGreaterEqual(kernel.last_activity, before)


if __name__ == "__main__":
    unittest.main()

"""Notebook's kernel manager, with a "busy" that means a cell is running.

dspool's agent starts Debian's Jupyter Notebook 6.4 with
--NotebookApp.kernel_manager_class=dspool_kernels.WorkAwareKernelManager and
reads /api/kernels to tell whether a server may be culled.

Notebook 6.4 takes a kernel's execution_state from every IOPub status
message, including those that answer the kernel_info requests it sends
itself each time a client connects to the kernel's WebSocket. A browser that
reconnects during a long cell therefore makes /api/kernels say "idle" while
the cell runs, and a culler trusting that stops the computation. Here a
kernel is "busy" from the status "busy" of an execute_request until that
request's status "idle", whatever else the kernel reports meanwhile.

The agent writes this file into the instance; it is built into the agent
from src/agent/dspool_kernels.py.
"""

from jupyter_client.session import Session
from notebook._tz import utcnow
from tornado.ioloop import IOLoop
from notebook.services.kernels.kernelmanager import MappingKernelManager


class WorkAwareKernelManager(MappingKernelManager):
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

        heard = []  # set by the first message

        def record_and_note(msg_list):
            heard.append(True)
            record_activity(msg_list)

        def probe():
            if heard or kernel_id not in self._kernels:
                return
            # kernel_info on a shell channel of our own: answered at once by
            # an idle kernel, after the running cell by a busy one. Its
            # status messages tell the watcher which (parent kernel_info:
            # "idle" unless an execute_request is known to run).
            shell = kernel.connect_shell()
            shell.on_recv(lambda _: shell.close())
            kernel.session.send(shell, "kernel_info_request")

        # A subscription made while the kernel starts is sometimes never
        # served (seen in LXC instances: the kernel answers its WebSocket
        # clients, but this stream hears nothing, for minutes), and the
        # kernel's first statuses are lost anyway. Until the stream hears
        # something: probe, and if still nothing, connect again, with
        # growing pauses (about 8 minutes in all). "starting" until then;
        # the agent counts that as busy: a cell may run unheard.
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

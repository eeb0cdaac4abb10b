"""A simulator app served by waitress on a local port, in a background thread of this process."""

from __future__ import annotations

import threading

import waitress


class LocalServer:
    """`app` on `host`:`port` (0: a free port the system picks); `url` is its base."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, threads: int = 8):
        self.app = app
        self.server = waitress.create_server(app, host=host, port=port, threads=threads)
        self.url = f"http://{host}:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, name="simulator", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving, now; the server is closed in its own thread (from here would race it)."""
        # A reply still in the works (a `slow` fault sleeps) would pull a closed trigger.
        self.server.task_dispatcher.shutdown()
        self.server.trigger.pull_trigger(self._close_everything)
        self.thread.join(timeout=5)

    def _close_everything(self) -> None:
        # The loop runs while any connection is open: a client that kept one alive (a session
        # not closed, a reply an exception still holds) would keep it serving.
        for channel in list(self.server._map.values()):
            if channel not in (self.server, self.server.trigger):
                channel.close()
        self.server.close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

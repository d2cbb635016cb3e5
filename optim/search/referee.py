"""Pruning decisions for trials that run in other processes: a trial asks the search's process.

A pruner decides from the study's finished trials, which only the search's process (the
driver) holds. So when trials run on worker processes or a dask cluster, each
``report(step, value)`` of a trial sends its number and its curve so far to the driver and
waits for the answer: ``None`` (go on) or the reason to stop; and a trial that ends hands its
outcome to the driver, which stores it before the worker starts another trial. The driver
answers from one thread, with the same functions that serve serial and threaded searches, so
a trial's decision is the one a serial search would make given the trials stored when the
report arrives.

The channel is a Unix socket in a private temporary directory with a random key (the HMAC
challenge of ``multiprocessing.connection`` on every connection; forked workers close their
copy of the listening socket), one short connection per report (about 0.3 ms); the messages
are JSON (no pickle).
Any executor whose workers run on this machine can reach it (a local process pool, a dask
``LocalCluster``, threads); workers on other machines cannot. A trial that cannot reach the
driver (it has ended, or closed the channel) gets ``DriverLost`` from ``report`` and stops.

>>> with DecisionServer(lambda number, curve: "too slow" if curve[-1][1] > 1 else None,
...                     lambda number, outcome: None) as server:
...     server.referee(0, [(0, 0.5)]), server.referee(0, [(0, 0.5), (1, 2.0)])
(None, 'too slow')
>>> server.referee(0, [(0, 0.5)])  # doctest: +ELLIPSIS
Traceback (most recent call last):
optim.search.referee.DriverLost: trial 0 cannot reach the search that runs it ...
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass
from multiprocessing import AuthenticationError
from multiprocessing.connection import (
    Client,
    Connection,
    answer_challenge,
    deliver_challenge,
)
from typing import Any

from tape.utils.forks import close_in_forked_children, forget

from .execution import Finish, Judge

__all__ = ["DecisionServer", "Referee", "DriverLost"]

_MAX_MESSAGE = 1 << 24  # bytes: a curve of a few hundred thousand reports
_PATIENCE = 10.0  # seconds the server waits for a connected caller's message, or to stop


class DriverLost(RuntimeError):
    """A trial running in a worker lost the search that runs it; ``report`` raises it so that
    the trial stops.

    >>> issubclass(DriverLost, RuntimeError)
    True
    """


@dataclass(frozen=True)
class Referee:
    """The worker's side: ``referee(number, curve)`` asks the driver at ``address`` whether
    trial ``number`` goes on; ``None`` or the reason to stop. Picklable, so it travels with
    the task to any executor.

    >>> Referee("/tmp/listener-x", b"key")
    Referee(address='/tmp/listener-x')
    """

    address: str
    authkey: bytes

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"Referee(address={self.address!r})"

    def __call__(self, number: int, curve: list[tuple[int, float]]) -> str | None:
        return self._ask({"number": number, "curve": curve})

    def finish(self, number: int, outcome: dict[str, Any]) -> None:
        """Hand trial ``number``'s outcome (the fields of a ``Trial``) to the driver."""
        self._ask({"number": number, "outcome": outcome})

    def _ask(self, message: dict[str, Any]) -> Any:
        try:
            with Client(self.address, authkey=self.authkey) as conn:
                conn.send_bytes(json.dumps(message).encode())
                answer = json.loads(conn.recv_bytes(_MAX_MESSAGE))
        except (OSError, EOFError, AuthenticationError) as e:
            raise DriverLost(
                f"trial {message['number']} cannot reach the search that runs it at "
                f"{self.address} ({type(e).__name__}: {e}); the search has ended, so this "
                "trial stops") from None
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["decision"]


class DecisionServer:
    """The driver's side: a thread that answers each ``Referee`` call with
    ``decide(number, curve)`` and each ``Referee.finish`` with ``finish(number, outcome)``, one
    at a time, until ``close()``. An exception they raise is raised in the trial's process as
    ``RuntimeError`` with the same message.

    >>> server = DecisionServer(lambda number, curve: None, lambda number, outcome: None)
    >>> server.referee(3, [(0, 1.0)]) is None
    True
    >>> server.close()
    """

    def __init__(self, decide: Judge, finish: Finish) -> None:
        if not hasattr(socket, "AF_UNIX"):
            raise OSError("pruning trials that run in other processes needs Unix sockets, which "
                          "this platform lacks; run the search serially or on a "
                          "ThreadPoolExecutor")
        self._decide, self._finish = decide, finish
        self._authkey = os.urandom(32)
        self._folder = tempfile.mkdtemp(prefix="pruning-")  # private: mode 0o700
        address = os.path.join(self._folder, "decisions")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(address)
        self._socket.listen(64)
        close_in_forked_children(self._socket.fileno())  # pool workers must not accept
        self.referee = Referee(address, self._authkey)
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="pruning-decisions",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn = self._accept()
            except (OSError, EOFError, AuthenticationError):  # a caller gone mid-handshake
                if self._closed:
                    return
                continue
            with conn:
                if self._closed:
                    return
                self._answer(conn)

    def _accept(self) -> Connection:
        """The next caller's connection, once it has proved it knows the key (HMAC challenge
        both ways, as `multiprocessing.connection.Listener` does)."""
        sock, _ = self._socket.accept()
        sock.setblocking(True)
        conn = Connection(sock.detach())
        try:
            deliver_challenge(conn, self._authkey)
            answer_challenge(conn, self._authkey)
        except BaseException:
            conn.close()
            raise
        return conn

    def _answer(self, conn: Connection) -> None:
        try:
            if not conn.poll(_PATIENCE):  # a caller that connected and went silent
                return
            message = json.loads(conn.recv_bytes(_MAX_MESSAGE))
            number = message["number"]
        except (OSError, EOFError, ValueError, KeyError, TypeError):
            return  # the trial's process died while asking; nothing to answer
        answer: dict[str, Any]
        try:
            if "outcome" in message:
                outcome = message["outcome"]
                outcome["intermediate"] = [(s, v) for s, v in outcome["intermediate"]]
                answer = {"decision": self._finish(number, outcome)}
            else:
                curve = [(int(s), float(v)) for s, v in message["curve"]]
                answer = {"decision": self._decide(number, curve)}
        except Exception as e:  # raised in the trial's process
            answer = {"error": str(e)}
        try:
            conn.send_bytes(json.dumps(answer).encode())
        except OSError:
            pass

    def close(self) -> None:
        """Stop answering: later reports raise ``DriverLost`` in their trials."""
        if self._closed:
            return
        self._closed = True
        # Wake the thread if it waits in accept(), from a thread of its own: if the server is
        # busy answering, the knock waits in the socket's backlog and must not hold us up.
        threading.Thread(target=self._knock, name="pruning-decisions-close", daemon=True).start()
        self._thread.join(_PATIENCE)
        forget(self._socket.fileno())
        self._socket.close()  # also ends an accept() the knock did not reach
        shutil.rmtree(self._folder, ignore_errors=True)

    def _knock(self) -> None:
        try:
            Client(self.referee.address, authkey=self.referee.authkey).close()
        except (OSError, EOFError, AuthenticationError):
            pass

    def __enter__(self) -> DecisionServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

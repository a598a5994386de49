"""The host-facing ends of the link: the pty (the board's serial port) and the TCP bridge.

Pty: the launcher keeps only the master. It closes its own slave fd right after setting the
line up (raw, no echo; the settings stay while the master is open), so `poll()` on the
master reports POLLHUP exactly when no process has the slave open: that is how the proxy
knows whether a host is there. When the host closes the port, what it left unread in the
pty is drained, so the next host does not read stale frames (tcflush on the master does not
reach that buffer; it takes a descriptor of the slave).

`Emulator.port` is a stable symlink to the current slave: after an unplug the pty is
replaced by a new one and the symlink follows it, as a udev rule would for a real board.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import termios
import tty


class PtyPort:
    """One pty; `path` is the symlink hosts open."""

    settle_s = 0.1  # a new host gets bytes after this (pyserial flushes its input at open)

    def __init__(self, path: str) -> None:
        self.path = path
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            attrs = termios.tcgetattr(slave)
            attrs[3] &= ~termios.ECHO
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            self.slave_name = os.ttyname(slave)
        finally:
            os.close(slave)  # else the master would never report POLLHUP
        os.set_blocking(master, False)
        self.master = master
        self._hup = select.poll()
        self._hup.register(master, select.POLLIN)
        # With no host the master reports POLLHUP all the time, so it cannot sit in a poll
        # set; an edge-triggered epoll of it can: it turns readable when a host writes.
        self._edges = select.epoll()
        self._edges.register(master, select.EPOLLIN | select.EPOLLET)
        tmp_link = path + ".new"
        try:
            os.unlink(tmp_link)
        except FileNotFoundError:
            pass
        os.symlink(self.slave_name, tmp_link)
        os.replace(tmp_link, path)

    def fileno(self) -> int:
        return self.master

    @property
    def edges_fd(self) -> int:
        """Readable when something happened on the pty since `clear_edges()` (a host wrote
        or left); for waiting while no host has the port open."""
        return self._edges.fileno()

    def clear_edges(self) -> None:
        self._edges.poll(0)

    def host_present(self) -> bool:
        """Whether any process has the slave open."""
        return not any(ev & select.POLLHUP for _, ev in self._hup.poll(0))

    def send(self, data: bytes) -> int:
        """Board bytes to the host: how many the pty took (0 when it is full)."""
        try:
            return os.write(self.master, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as e:
            if e.errno == errno.EIO:  # the host just left; the proxy sees the POLLHUP next
                return 0
            raise ConnectionError(str(e)) from e

    def read(self) -> bytes:
        """What the host wrote (b"" when nothing; EIO is what a master reads with no host)."""
        try:
            return os.read(self.master, 65536)
        except OSError:
            return b""

    def drain_stale(self) -> int:
        """Read and discard what the pty holds for a host that left (or is being cut off);
        returns how many bytes that was. Bytes pass from the pty's flip buffer to the
        readable queue asynchronously, so read until a short wait brings nothing more."""
        try:
            fd = os.open(self.slave_name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return 0
        n = 0
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            while p.poll(5):
                try:
                    got = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not got:
                    break
                n += len(got)
            termios.tcflush(fd, termios.TCIFLUSH)
        except OSError:
            pass
        finally:
            os.close(fd)
        return n

    def close(self) -> None:
        """The port disappears: the pty and the symlink go."""
        self._edges.close()
        try:
            os.close(self.master)
        except OSError:
            pass
        try:
            if os.path.islink(self.path) and os.readlink(self.path) == self.slave_name:
                os.unlink(self.path)
        except FileNotFoundError:
            pass


class TcpListener:
    """The TCP bridge's listening socket (`socket://HOST:PORT` for pyserial)."""

    def __init__(self, host: str, port: int) -> None:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, port))
        ls.listen(1)
        ls.setblocking(False)
        self._sock = ls
        self.port: int = ls.getsockname()[1]
        self.url = f"socket://{host}:{self.port}"

    def fileno(self) -> int:
        return self._sock.fileno()

    def accept(self) -> TcpClient | None:
        try:
            sock, _ = self._sock.accept()
        except OSError:
            return None
        sock.setblocking(False)
        return TcpClient(sock)

    def close(self) -> None:
        self._sock.close()


class TcpClient:
    """One connected TCP host."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def send(self, data: bytes) -> int:
        """Board bytes to the host: how many the socket took (0 when its buffer is full)."""
        try:
            return self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as e:
            raise ConnectionError(str(e)) from e

    def read(self) -> bytes | None:
        """What the host sent; b"" when nothing yet, None when it has disconnected."""
        try:
            got = self._sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return None
        return got or None

    def close(self) -> None:
        self._sock.close()

"""stressrig wire protocol: the one definition shared by the board and the host.

Pure Python that runs unchanged on MicroPython and CPython. See README.md in this
folder for the byte-level specification.
"""

from protocol.defs import PROTOCOL_VERSION  # noqa: E402,F401  (one source of truth)

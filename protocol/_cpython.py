"""CPython stand-in for the `micropython` module, so the protocol code runs on the host.

On MicroPython `@micropython.native` is handled by the compiler (machine code whose frame
lives on the C stack; bytecode functions with more than ~11 locals+stack slots put their
frame on the GC heap for the duration of each call, which shows in mem_total()). Here the
decorators do nothing.
"""


class micropython:  # noqa: N801  (mirrors the module's name)
    @staticmethod
    def native(f):
        return f

    @staticmethod
    def viper(f):
        return f

    @staticmethod
    def const(x):
        return x

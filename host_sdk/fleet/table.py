"""The supervisor's one status table in the terminal (plain text; redrawn in place on a
terminal, printed on each change otherwise, so a log file stays readable)."""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

__all__ = ["StatusTable", "render"]

COLUMNS = ("rig", "uid", "port", "phase", "step", "t_dev", "V", "lost", "message")


def _fmt_t(t: Any) -> str:
    if not isinstance(t, int | float) or not math.isfinite(t):
        return "-"
    if t >= 3600:
        return f"{t / 3600:.2f} h"
    return f"{t:.1f} s"


def _row(st: dict[str, Any], point: dict[str, Any] | None) -> list[str]:
    step = st.get("step_index", -1)
    v = (point or {}).get("voltage_v")
    port = str(st.get("device") or st.get("port", ""))
    if len(port) > 28:
        port = "…" + port[-27:]
    phase = str(st.get("phase", ""))
    if not st.get("alive", True) and phase not in ("failed", "lost"):
        phase += " (dead)"
    return [
        str(st.get("rig", "")),
        str(st.get("unique_id", ""))[:12],
        port,
        phase,
        f"{step} {st.get('step_label', '')}"[:22] if isinstance(step, int) and step >= 0 else "-",
        _fmt_t(st.get("t_dev_s")),
        f"{v:.3f}" if isinstance(v, float) else "-",
        str(st.get("lost", 0)),
        str(st.get("message", ""))[:60],
    ]


def render(states: dict[str, dict[str, Any]], points: dict[str, dict[str, Any]]) -> str:
    rows = [list(COLUMNS)] + [_row(states[k], points.get(k)) for k in sorted(states)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


class StatusTable:
    """Draws the table: in place on a terminal, on change otherwise."""

    def __init__(self, out: TextIO | None = None, enabled: bool = True) -> None:
        self.out = out or sys.stdout
        self.enabled = enabled
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self._last_key: Any = None
        self._lines = 0

    def draw(
        self,
        states: dict[str, dict[str, Any]],
        points: dict[str, dict[str, Any]],
        final: bool = False,
    ) -> None:
        if not self.enabled:
            return
        key = tuple(
            (k, s.get("phase"), s.get("step_index"), s.get("alive"), s.get("message"))
            for k, s in sorted(states.items())
        )
        if not self.tty and key == self._last_key and not final:
            return
        self._last_key = key
        text = render(states, points)
        if self.tty and self._lines:
            self.out.write(f"\x1b[{self._lines}F\x1b[J")  # back to the table's first line
        self.out.write(text + "\n")
        if not self.tty:
            self.out.write("\n")
        self.out.flush()
        self._lines = text.count("\n") + 1 if self.tty else 0

"""Commands to a running supervisor: start and abort, from the CLI or MQTT, checked alike.

A command is an argv list parsed by one argparse parser whatever its origin:

    stressrig fleet abort lab3.toml cell07 --reason "cell swelling"   (CLI, via the spool)
    mosquitto_pub -t stressrig/lab3/cmd -m '{"id": "42", "argv": ["abort", "cell07"]}'

so a bad rig name or option gets the same one-line error and the same exit code (2 bad
input, 1 refused, 0 done) on both ways. Replies carry the command's id.

The CLI reaches a supervisor through its spool folder (<out_dir>/.fleet/commands/): it
writes `<id>.json`, the supervisor answers `<id>.reply.json`. No network, and only who
may write to the fleet's folder can command it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

__all__ = ["CommandReply", "Commandable", "execute", "parse_payload", "send_via_spool", "spool_dir"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


@dataclass
class CommandReply:
    code: int  # as a CLI exit code: 0 done, 1 refused/failed, 2 bad command
    message: str
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "message": self.message}


class Commandable(Protocol):
    """What a supervisor offers to commands."""

    def rig_names(self) -> list[str]: ...

    def start_rig(self, name: str, restart: bool) -> str: ...

    def abort_rig(self, name: str, reason: str) -> str: ...


class _BadCommand(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _BadCommand(f"{message} (commands: start RIG [--restart], abort RIG|all)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fleet command", add_help=False)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    s = sub.add_parser("start", add_help=False)
    s.add_argument("rig")
    s.add_argument("--restart", action="store_true")
    a = sub.add_parser("abort", add_help=False)
    a.add_argument("rig")
    a.add_argument("--reason", default="")
    return p


def parse_payload(payload: bytes | str) -> tuple[str, list[str]]:
    """An MQTT payload -> (id, argv): JSON {"id", "argv": [...]} or a plain command line."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise _BadCommand(f"not JSON: {e}") from None
        argv = data.get("argv")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise _BadCommand('JSON commands need "argv": a list of strings')
        return str(data.get("id", "")), argv
    return "", shlex.split(text)


def execute(
    target: Commandable, argv: list[str], cmd_id: str = "", origin: str = ""
) -> CommandReply:
    """Parse and run one command; never raises."""
    try:
        ns = _parser().parse_args(argv)
    except _BadCommand as e:
        return CommandReply(EXIT_USAGE, f"bad command {shlex.join(argv)!r}: {e}", cmd_id)
    names = target.rig_names()
    if ns.rig != "all" and ns.rig not in names:
        return CommandReply(
            EXIT_USAGE, f"no rig {ns.rig!r} in this fleet; rigs: {', '.join(names)}", cmd_id
        )
    if ns.cmd == "start" and ns.rig == "all":
        return CommandReply(EXIT_USAGE, "start needs one rig name (not all)", cmd_id)
    try:
        if ns.cmd == "start":
            return CommandReply(EXIT_OK, target.start_rig(ns.rig, bool(ns.restart)), cmd_id)
        reason = ns.reason or f"aborted by a command ({origin or 'local'})"
        rigs = names if ns.rig == "all" else [ns.rig]
        text = "; ".join(target.abort_rig(r, reason) for r in rigs)
        return CommandReply(EXIT_OK, text, cmd_id)
    except (RuntimeError, ValueError) as e:
        return CommandReply(EXIT_ERROR, str(e), cmd_id)


def bad_payload_reply(payload: bytes | str) -> tuple[str, list[str]] | CommandReply:
    try:
        return parse_payload(payload)
    except _BadCommand as e:
        return CommandReply(EXIT_USAGE, f"bad command: {e}")


# ---- the local spool ------------------------------------------------------------------------
def spool_dir(state_dir: Path) -> Path:
    return state_dir / "commands"


def take_spooled(state_dir: Path) -> list[tuple[Path, str, list[str]]]:
    """Commands waiting in the spool (oldest first); each file is consumed."""
    d = spool_dir(state_dir)
    out = []
    for path in sorted(d.glob("*.cmd.json"), key=lambda p: p.stat().st_mtime):
        try:
            data = json.loads(path.read_text())
            out.append((path, str(data.get("id", "")), [str(a) for a in data.get("argv", [])]))
        except (OSError, ValueError):
            pass
        path.unlink(missing_ok=True)
    return out


def reply_spooled(state_dir: Path, reply: CommandReply) -> None:
    d = spool_dir(state_dir)
    tmp = d / f".{reply.id}.tmp"
    tmp.write_text(json.dumps(reply.to_dict()))
    os.replace(tmp, d / f"{reply.id}.reply.json")


def send_via_spool(state_dir: Path, argv: list[str], timeout_s: float = 10.0) -> CommandReply:
    """Hand a command to the supervisor of this fleet and wait for its reply."""
    d = spool_dir(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    cmd_id = uuid.uuid4().hex[:12]
    tmp = d / f".{cmd_id}.tmp"
    tmp.write_text(json.dumps({"id": cmd_id, "argv": argv}))
    os.replace(tmp, d / f"{cmd_id}.cmd.json")
    reply = d / f"{cmd_id}.reply.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if reply.exists():
            data = json.loads(reply.read_text())
            reply.unlink(missing_ok=True)
            return CommandReply(int(data["code"]), str(data["message"]), cmd_id)
        time.sleep(0.1)
    (d / f"{cmd_id}.cmd.json").unlink(missing_ok=True)
    return CommandReply(
        EXIT_ERROR,
        f"no supervisor answered within {timeout_s:.0f} s; is `stressrig fleet run` running "
        "for this fleet?",
        cmd_id,
    )

"""The recording's file layout (format version 2): what each group and dataset holds, its
units and descriptions, shared by the writer and the reader.

    /                     attrs: format, format_version, sdk_version, created_utc, start_utc,
                          board_id, unique_id, firmware_version, protocol_version, url,
                          operator, hello (JSON), protocol (JSON), meta (JSON), complete,
                          closed_utc, lost_samples (JSON)
    /streams/<name>/      one group per stream (rate_hz, stream_id, record_format, enabled)
        time              f8, device time in s; @start = ISO 8601 UTC of device time 0
        sample_index      i8, the board's sample counter (gaps show as jumps)
        <field>           one 1-D dataset per record field, raw as the board sent it:
                          @units (raw), and for scaled fields @scale_factor, @add_offset,
                          @physical_units: physical = raw * scale_factor + add_offset
    /events/              time, code (enum: boot, waveform_start, ...), cause (enum:
                          completed, v_max, watchdog, ...), index, value
    /gaps/                time, stream (enum), first_index, count (-1 unknown), kind (enum:
                          lost, link_down, board_reset, lost_on_board)
    /markers/             time, text (protocol steps, calibration holds)
    /steps/               one row per protocol step run: index, path, kind, label,
                          time_start, time_end, end_cause
    /cell                 attrs: electrode_area_m2, stack_area_m2 (pressed area), label
    /calibration          attrs: the calibration as JSON and its numbers one by one
    /outcome              attrs: completed, stopped_by, cause, step_index, step_path,
                          step_label, t_dev_s, incidents (JSON)

Every dataset carries `units` (and `long_name`); every time dataset `start`, after the
NeXus NXlog convention, so h5py, HDFView or h5dump show what a number means. Raw counts
stay raw (a recording can be re-analysed with a better calibration); the scale and offset
next to them are the board's nominal calibration, `/calibration` the host's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from protocol import defs

FORMAT_VERSION = 2
LIBVER = ("v108", "v108")  # superblock v2: no "open for write" flags to trip a reader

GAP_KINDS = {"lost": 0, "link_down": 1, "board_reset": 2, "lost_on_board": 3}
GAP_KIND_NAMES = {v: k for k, v in GAP_KINDS.items()}

# in-memory record dtypes (what Recording.gaps/events/markers/steps hold)
GAP_DTYPE = np.dtype(
    [
        ("stream_id", "u1"),
        ("first_index", "<i8"),
        ("count", "<i8"),
        ("t_dev_s", "<f8"),
        ("kind", "u1"),
    ]
)
EVENT_DTYPE = np.dtype(
    [("t_dev_s", "<f8"), ("code", "u1"), ("cause", "u1"), ("index", "<u2"), ("value", "<f4")]
)
MARKER_DTYPE = np.dtype([("t_dev_s", "<f8"), ("text", "S96")])
STEP_DTYPE = np.dtype(
    [
        ("index", "<i4"),
        ("path", "S48"),
        ("kind", "S24"),
        ("label", "S64"),
        ("t_start_s", "<f8"),
        ("t_end_s", "<f8"),
        ("end_cause", "S24"),
    ]
)
EXTRA_FIELDS = [("t_dev_s", "<f8"), ("sample_index", "<i8")]
TIME_COLUMN = "time"  # the file's name for the in-memory t_dev_s

EVENT_ENUM = h5py.enum_dtype({v: k for k, v in defs.EVENT_NAMES.items()}, basetype="u1")
CAUSE_ENUM = h5py.enum_dtype({v: k for k, v in defs.CAUSE_NAMES.items()}, basetype="u1")
GAP_KIND_ENUM = h5py.enum_dtype(dict(GAP_KINDS), basetype="u1")
STREAM_ENUM = h5py.enum_dtype({n: i for i, n in enumerate(defs.STREAM_NAMES)}, basetype="u1")

# what a board's field is, for long_name (the HELLO gives names and units only)
FIELD_TEXT = {
    "t_us": "device clock when sampled (u32 microseconds, wraps every 71.6 min)",
    "counts": "load-cell bridge reading (raw ADC counts, signed 24 bit)",
    "status": "status flags of the sample (load: 1 HX711 glitch, 2 not ready)",
    "voltage": "cell voltage (raw ADC code)",
    "current": "cell current (raw ADC code)",
    "state": "waveform state when sampled",
    "raw": "thermistor divider (raw ADC code)",
    "temp": "cell temperature from the thermistor (millidegrees)",
}


@dataclass
class Column:
    """One dataset of a table group: file name, in-memory field name, dtype, attributes."""

    name: str
    field: str
    dtype: Any
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)


def time_column(what: str) -> Column:
    return Column(
        TIME_COLUMN,
        "t_dev_s",
        np.dtype("<f8"),
        {"units": "s", "long_name": f"device time of the {what} (unwrapped, 64-bit)"},
    )


TABLES: dict[str, tuple[np.dtype[Any], list[Column]]] = {
    "events": (
        EVENT_DTYPE,
        [
            time_column("event"),
            Column("code", "code", EVENT_ENUM, {"units": "", "long_name": "event"}),
            Column("cause", "cause", CAUSE_ENUM, {"units": "", "long_name": "why it ended"}),
            Column(
                "index",
                "index",
                np.dtype("<u2"),
                {"units": "1", "long_name": "pulse/step number, or command id at a start"},
            ),
            Column(
                "value",
                "value",
                np.dtype("<f4"),
                {
                    "units": "A or C",
                    "long_name": "edge: new setpoint (A); waveform_end: charge passed (C)",
                },
            ),
        ],
    ),
    "gaps": (
        GAP_DTYPE,
        [
            time_column("gap (host clock of its detection)"),
            Column("stream", "stream_id", STREAM_ENUM, {"units": "", "long_name": "stream"}),
            Column(
                "first_index",
                "first_index",
                np.dtype("<i8"),
                {"units": "1", "long_name": "first missing sample index"},
            ),
            Column(
                "count",
                "count",
                np.dtype("<i8"),
                {"units": "1", "long_name": "samples missing (-1: unknown, link down/reboot)"},
            ),
            Column("kind", "kind", GAP_KIND_ENUM, {"units": "", "long_name": "what lost them"}),
        ],
    ),
    "markers": (
        MARKER_DTYPE,
        [
            time_column("marker"),
            Column("text", "text", np.dtype("S96"), {"units": "", "long_name": "host note"}),
        ],
    ),
    "steps": (
        STEP_DTYPE,
        [
            Column("index", "index", np.dtype("<i4"), {"units": "1", "long_name": "step"}),
            Column("path", "path", np.dtype("S48"), {"units": "", "long_name": "in the file"}),
            Column("kind", "kind", np.dtype("S24"), {"units": "", "long_name": "step kind"}),
            Column("label", "label", np.dtype("S64"), {"units": "", "long_name": "label"}),
            Column(
                "time_start", "t_start_s", np.dtype("<f8"), {"units": "s", "long_name": "start"}
            ),
            Column("time_end", "t_end_s", np.dtype("<f8"), {"units": "s", "long_name": "end"}),
            Column(
                "end_cause", "end_cause", np.dtype("S24"), {"units": "", "long_name": "end cause"}
            ),
        ],
    ),
}
TABLE_KEYS = {"events": "code", "gaps": "t_dev_s", "markers": "text", "steps": "t_end_s"}


def stream_columns(stream: Any, roles: dict[str, str] | None = None) -> list[Column]:
    """Columns of a stream from its HELLO StreamInfo: time, sample_index, then each field."""
    cols = [
        time_column("sample"),
        Column(
            "sample_index",
            "sample_index",
            np.dtype("<i8"),
            {"units": "1", "long_name": "the board's sample counter (a jump is a gap)"},
        ),
    ]
    base = stream.dtype
    for f in stream.fields:
        scaled = float(f.scale) != 1.0 or float(f.offset) != 0.0
        text = FIELD_TEXT.get(f.name, f"{stream.name} field {f.name}")
        if stream.name == "fbg" and f.unit in ("nm", "m", "pm"):
            text = f"Bragg wavelength of grating {f.name} (raw)"
        attrs: dict[str, Any] = {"long_name": text}
        if scaled:
            attrs.update(
                units="counts",
                physical_units=str(f.unit),
                scale_factor=float(f.scale),
                add_offset=float(f.offset),
                note=f"{f.name} in {f.unit} = raw * scale_factor + add_offset (the board's "
                "nominal calibration; /calibration holds the host's)",
            )
        else:
            attrs["units"] = str(f.unit) or "1"
        if roles and f.name in roles:
            attrs["role"] = roles[f.name]
        cols.append(Column(f.name, f.name, base.fields[f.name][0], attrs))
    return cols


def stream_record_dtype(stream: Any) -> np.dtype[Any]:
    """In-memory dtype of a stream: its record fields + t_dev_s + sample_index."""
    base = stream.dtype
    fields = [(n, base.fields[n][0].str) for n in base.names]
    return np.dtype(fields + EXTRA_FIELDS)

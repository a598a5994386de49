# ruff: noqa: UP031  (MicroPython code: %-formatting, no f-string features beyond 3.5)
"""The HELLO description: streams, record layouts, field units/scale/offset, limits.

Built from the board definition's calibration and limits; the host builds its dtypes and
calibrations from it, so nothing about the layout is assumed on the other side.
"""

from protocol import defs, messages

FIRMWARE_VERSION = (0, 1, 0)


def _field(name, unit, scale=1.0, offset=0.0):
    return {"name": name, "unit": unit, "scale": scale, "offset": offset}


def stream_fields(s, calib, n_gratings):
    t = _field("t_us", "us")
    if s == defs.STREAM_LOAD:
        return [
            t,
            _field(
                "counts", "N", calib.get("load_n_per_count", 1.0), calib.get("load_offset_n", 0.0)
            ),
            _field("status", ""),
        ]
    if s == defs.STREAM_FBG:
        f = [t, _field("status", "")]
        for g in range(n_gratings):
            f.append(_field("g%d" % g, "nm", 1e-6, 0.0))
        return f
    if s == defs.STREAM_ELEC:
        return [
            t,
            _field("voltage", "V", calib["volts_per_count"], calib.get("volts_offset_v", 0.0)),
            _field("current", "A", calib["amps_per_count"], calib.get("amps_offset_a", 0.0)),
            _field("state", ""),
        ]
    return [t, _field("raw", "count"), _field("temp", "degC", 0.001, 0.0)]


def hello_payload(definition, sampler, unique_id, amps_per_lsb):
    from firmware.stream_frames import record_format

    calib = definition["calibration"]
    streams = []
    for s in range(defs.N_STREAMS):
        if not sampler.fitted[s]:
            continue
        streams.append(
            {
                "id": s,
                "name": defs.STREAM_NAMES[s],
                "rate_hz": sampler.rate_hz(s),
                "enabled": sampler.enabled[s],
                "record_format": record_format(s, sampler.n_gratings),
                "fields": stream_fields(s, calib, sampler.n_gratings),
            }
        )
    limits = {}
    for k, v in definition["limits"].items():
        if isinstance(v, (int, float)):
            limits[k] = float(v)
    limits["amps_per_lsb"] = float(amps_per_lsb)
    uid = "".join("%02x" % b for b in unique_id)
    return messages.encode_hello(
        {
            "protocol_version": defs.PROTOCOL_VERSION,
            "firmware_version": FIRMWARE_VERSION,
            "board_id": definition["board_id"],
            "unique_id": uid,
            "streams": streams,
            "limits": limits,
        }
    )

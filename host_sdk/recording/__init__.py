"""Recordings: HDF5 files with one extendable dataset per stream, gaps, events, metadata.

    rec = Recorder.attach(rig, "run.h5", protocol=proto.to_dict())
    ...
    rec.close()
    data = load_recording("run.h5")
    data.streams["elec"].records["v_counts"], data.streams["elec"].t_s

Layout (format version 1):
    /streams/<name>   compound: the board's record fields (raw counts, as sent) +
                      t_dev_s (f8, unwrapped device time) + sample_index (i8)
    /gaps             stream_id, first_index, count (-1 unknown), t_dev_s, kind
    /events           t_dev_s, code, cause, index, value
    /markers          t_dev_s, text (protocol steps, calibration holds)
    attrs             format, hello (JSON), firmware_version, board_id, unique_id,
                      calibration (JSON), protocol (JSON), created_utc, sdk, complete
The writer uses HDF5 SWMR mode and flushes every `flush_interval_s`, so a killed writer
leaves a file that opens and holds everything up to the last flush.
"""

from host_sdk.recording.export import export_recording
from host_sdk.recording.reader import Recording, RecordingError, StreamData, load_recording
from host_sdk.recording.writer import GAP_KINDS, Recorder

__all__ = [
    "GAP_KINDS",
    "Recorder",
    "Recording",
    "RecordingError",
    "StreamData",
    "export_recording",
    "load_recording",
]

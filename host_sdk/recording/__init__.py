"""Recordings: HDF5 files that explain themselves, written so a crash loses at most the
last half second and leaves a file any HDF5 tool opens.

    rec = Recorder.attach(rig, "run.h5", protocol=proto.to_dict())
    ...
    rec.close()
    data = load_recording("run.h5")
    data.streams["elec"].records["voltage"], data.streams["elec"].t_s, data.outcome
    data.to_xarray()                                   # SI units, one time axis per stream
    export_recording(data, "out", "bdf")               # Battery Data Format table + sidecar

Layout (format version 2, host_sdk.recording.layout): a group per stream with one dataset
per field (raw counts with units, scale_factor/add_offset and physical_units), `time` with
its `start` (NeXus NXlog style); events (enum codes and causes), gaps, markers, steps;
/cell (electrode and stack areas), /calibration, /outcome (how the experiment ended).
"""

from host_sdk.recording.export import EXPORT_FORMATS, export_recording
from host_sdk.recording.layout import GAP_KINDS
from host_sdk.recording.reader import Recording, RecordingError, StreamData, load_recording
from host_sdk.recording.salvage import repair_in_place
from host_sdk.recording.writer import Recorder

__all__ = [
    "EXPORT_FORMATS",
    "GAP_KINDS",
    "Recorder",
    "Recording",
    "RecordingError",
    "StreamData",
    "export_recording",
    "load_recording",
    "repair_in_place",
]

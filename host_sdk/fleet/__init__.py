"""Many rigs: board identity, a supervisor, MQTT, a live dashboard, analysis on Dask.

identity    uid -> port: `Rig.open("uid:e711daa69d4c")`, `stressrig ports`
config      FLEET.toml (rigs, protocols, out_dir, [mqtt])
supervisor  `Supervisor`: one RigWorker thread per rig (worker), state files (state),
            takeover of runs a killed supervisor left (resume), the status table (table),
            start/abort commands from the CLI or MQTT (commands)
hub         FleetHub: latest states, live points (live: LiveSampler), events
mqtt        MqttBridge (publish + commands), MqttFeed (subscribe into a hub)
dashboard   DashboardServer + page: `stressrig watch`, `stressrig fleet run --dashboard`
monitor     RigMonitor: one rig watched through the SDK
many        analyze_many: host_sdk.recording.analyze on Dask (many_plots: figures)
testdata    realistic recordings in bulk, for tests and benchmarks
"""

from host_sdk.fleet.config import FleetConfig, FleetError, MqttConfig, RigSpec, load_fleet
from host_sdk.fleet.hub import FleetHub
from host_sdk.fleet.identity import BoardSeen, claim_board, scan_boards
from host_sdk.fleet.supervisor import Supervisor

__all__ = [
    "BoardSeen",
    "FleetConfig",
    "FleetError",
    "FleetHub",
    "MqttConfig",
    "RigSpec",
    "Supervisor",
    "claim_board",
    "load_fleet",
    "scan_boards",
]

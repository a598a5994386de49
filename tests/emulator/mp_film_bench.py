# Cost of the plant's sensor path on the MicroPython unix port: advance(t) + surface_conc()
# at every read of a 5 kHz stream during a 1 s on / 1 s off pulse train (nak50_pulsed,
# 1 mA/cm2). Not a test: run by hand, it prints microseconds per read.
#   MICROPYPATH=boards/emulated:. .nox/tests/bin/micropython -X heapsize=512k \
#       tests/emulator/mp_film_bench.py
# (512k: the emulated board's heap; the old plant's cost grows with the heap size.)
# Arguments: [scenario] [device seconds] [read period us] [jitter us]. With a jitter, reads
# come at irregular times (period +- jitter, a fixed pseudo-random sequence).
import json
import sys
import time

from plant import Plant

args = sys.argv[1:]
name = args[0] if len(args) > 0 else "nak50_pulsed"
seconds = int(args[1]) if len(args) > 1 else 10
period = int(args[2]) if len(args) > 2 else 200
jitter = int(args[3]) if len(args) > 3 else 0

with open("boards/emulated/scenarios/" + name + ".json") as fh:
    sc = json.load(fh)
t0 = time.ticks_us()
plant = Plant(sc, 1)
t_build = time.ticks_diff(time.ticks_us(), t0)
amps = 10.0 * sc["cell"]["area_m2"]  # 1 mA/cm2

reads = 0
spent = 0
t = 0
s = 0x1234
for k in range(seconds):
    plant.set_current(amps if k % 2 == 0 else 0.0, k * 1000000)
    end = (k + 1) * 1000000
    while True:
        if jitter:
            s = (s * 1103515245 + 12345) & 0x3FFFFFFF
            t += period - jitter + (s >> 8) % (2 * jitter + 1)
        else:
            t += period
        if t >= end:
            t = end
            break
        a = time.ticks_us()
        plant.advance(t)
        plant.surface_conc()
        spent += time.ticks_diff(time.ticks_us(), a)
        reads += 1
build_ms = t_build / 1000.0
us_per_read = spent / reads
print(f"build_ms {build_ms:.1f} reads {reads} us_per_read {us_per_read:.2f}")

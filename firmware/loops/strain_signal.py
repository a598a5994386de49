# ruff: noqa: UP031  (MicroPython code: %-formatting)
"""The FBG strain signal the closed loops judge (issue 14): one grating's wavelength, less
the reference grating's scaled to it when there is one, in fm, as a small int.

A Bragg wavelength is ~1.55e9 fm: above 2**30, a big int on a 32-bit board. The drivers keep
each peak as two 16-bit halves (`fbg.peaks`, array "H": low half at 2 g, high at 2 g + 1), so
the signal is taken as the change since a baseline reading, half by half:
    d = (hi - hi0) * 65536 + (lo - lo0)
which stays small (the interrogator's window is a few nm: a few 1e6 fm).

Temperature compensation (a strain-free reference grating r): both gratings shift with
temperature by the same relative amount k_T dT, so lambda_g (1 - p_e) eps =
d_g - d_r * lambda_g / lambda_r. The ratio is taken once, at the command, from the readings
then, as c = (lambda_g / lambda_r - 1) * 4096 (|c| < 512: gratings within 12 % of each other);
per reading d_r * c >> 12 with |d_r| clamped to 2**20 fm (1 nm, ~100 K) keeps every product
under 2**29. Integer arithmetic only; nothing is allocated per reading.

The signal is then lambda_g (1 - p_e) eps in fm: pm_per_ue * 1000 fm per microstrain.
"""

from micropython import const

from protocol import defs

_CLAMP = const(0x100000)  # 2**20 fm
MAX_C = const(511)


def _peak(fbg, g):
    """A grating's wavelength in fm (at the command: may be a big int)."""
    p = fbg.peaks
    return (p[2 * g + 1] << 16) | p[2 * g]


def ratio_c(fbg, g, ref):
    """c = (lambda_g / lambda_r - 1) * 4096 from the latest readings (at the command), or
    None when either grating is lost in them."""
    if ref == defs.REF_NONE:
        return 0
    if fbg.status & ((1 << g) | (1 << ref)):
        return None
    lg = _peak(fbg, g)
    lr = _peak(fbg, ref)
    if lr <= 0 or lg <= 0:
        return None
    return int(round((lg / lr - 1.0) * 4096))


class StrainSignal:
    def __init__(self, g, ref, c):
        self.g = g
        self.ref = ref  # defs.REF_NONE: no compensation
        self.c = c
        self.mask = (1 << g) | (0 if ref == defs.REF_NONE else 1 << ref)
        self.based = False
        self.hi0 = 0
        self.lo0 = 0
        self.rhi0 = 0
        self.rlo0 = 0
        self.x = 0  # the latest signal, fm from the baseline

    def read(self, fbg):
        """The latest FBG reading: True with `x` set, False when a grating it needs is lost."""
        if fbg.status & self.mask:
            return False
        p = fbg.peaks
        i = 2 * self.g
        if not self.based:
            self.based = True
            self.lo0 = p[i]
            self.hi0 = p[i + 1]
            if self.ref != defs.REF_NONE:
                j = 2 * self.ref
                self.rlo0 = p[j]
                self.rhi0 = p[j + 1]
        d = ((p[i + 1] - self.hi0) << 16) + (p[i] - self.lo0)
        if self.ref != defs.REF_NONE:
            j = 2 * self.ref
            dr = ((p[j + 1] - self.rhi0) << 16) + (p[j] - self.rlo0)
            if dr > _CLAMP:
                dr = _CLAMP
            elif dr < -_CLAMP:
                dr = -_CLAMP
            d = d - dr - ((dr * self.c) >> 12)
        self.x = d
        return True


def strain_from(app, name, g, ref, pm_per_ue):
    """A StrainSignal and the fm per microstrain for these command fields, after checks
    (raises commands.Refuse naming the field and its range)."""
    from firmware.commands import Refuse, check_range

    smp = app.sampler
    fbg = smp.fbg
    if not smp.fitted[1] or fbg is None:
        raise Refuse(defs.NACK_UNSUPPORTED, "%s: the FBG stream is not fitted" % name)
    n = smp.n_gratings
    check_range("grating", g, 0, n - 1)
    if ref != defs.REF_NONE:
        if ref >= n or ref == g:
            raise Refuse(
                defs.NACK_OUT_OF_RANGE,
                "ref_grating=%d outside allowed range [0, %d] less grating=%d (or %d: none)"
                % (ref, n - 1, g, defs.REF_NONE),
            )
    lim = app.limits
    if pm_per_ue == 0:
        pm_per_ue = app.calib.get("fbg_pm_per_ue", 0.0)
        if not pm_per_ue:
            raise Refuse(
                defs.NACK_NOT_CONFIGURED,
                "pm_per_ue=0 and the board calibration has no fbg_pm_per_ue: give the "
                "grating's strain sensitivity (about 1.2 pm per microstrain at 1550 nm)",
            )
    check_range(
        "pm_per_ue",
        pm_per_ue,
        lim.get("min_fbg_pm_per_ue", 0.1),
        lim.get("max_fbg_pm_per_ue", 10.0),
        "pm/ue",
    )
    c = ratio_c(fbg, g, ref)
    if c is None:
        raise Refuse(
            defs.NACK_BAD_STATE,
            "%s: grating %d or ref_grating %d is lost in the latest FBG reading (its "
            "wavelength ratio is taken now): try again once both are seen" % (name, g, ref),
        )
    if c > MAX_C or c < -MAX_C:
        raise Refuse(
            defs.NACK_OUT_OF_RANGE,
            "ref_grating=%d: its wavelength is more than 12 %% from grating %d's" % (ref, g),
        )
    return StrainSignal(g, ref, c), pm_per_ue * 1000.0, pm_per_ue

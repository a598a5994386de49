"""FBG strain-rate criteria from protocol files and the SDK (issue 14): a settle's `strain`
table and a `derate` table with signal = "strain" are validated (field, value, range), the
SDK turns them into the commands' strain fields, and `stressrig run` runs them on the
emulated Na-ion pouch (seed 000's cell: a sensing and a reference grating)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from host_sdk import cli
from host_sdk.analysis.rests import rest_decisions
from host_sdk.loops import Settle
from host_sdk.protocols import ProtocolError, parse_protocol
from host_sdk.recording import load_recording
from host_sdk.strain_rate import StrainSettle, grating_index
from protocol import defs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed000_strain_rests.toml"
URL = "emu://naion_fbg_pouch?fbg_hz=50&seed=3"


def _steps(body: str) -> dict:
    return tomllib.loads("[[steps]]\n" + body)


def test_the_example_and_its_defaults() -> None:
    p = parse_protocol(tomllib.loads(EXAMPLE.read_text()))
    step = p.steps[0]
    st = Settle.from_table(step.params["settle"])
    assert st.strain == StrainSettle(
        dedt_ue_per_s=0.2, combine="both", grating="g0", reference="g1", window_s=5.0
    )
    f = st.fields()
    assert (f["strain_mode"], f["grating"], f["ref_grating"]) == (defs.STRAIN_BOTH, 0, 1)
    assert f["pm_per_ue"] == 0.0 and f["strain_window_s"] == 5.0  # the board's calibration
    dr = step.params["derate"]
    assert dr["signal"] == "strain" and dr["resume_ue_per_s"] == 20.0  # half the limit
    # no stack area needed for a strain-rate derating: the example without its stack area
    # still parses
    data = tomllib.loads(EXAMPLE.read_text())
    del data["cell"]["stack_area_m2"]
    assert parse_protocol(data).stack_area_m2 is None
    # a settle without a strain table sends the strain fields off
    assert Settle(dvdt_v_per_s=1e-3).fields()["strain_mode"] == defs.STRAIN_OFF


@pytest.mark.parametrize(
    ("step", "path", "words"),
    [
        (
            'kind = "adaptive_rest"\nsettle = { dvdt_v_per_s = 1e-3, max_s = 10, strain = {} }',
            "steps[0].settle.strain.dedt_ue_per_s",
            "missing",
        ),
        (
            'kind = "adaptive_rest"\nsettle = { dvdt_v_per_s = 1e-3, max_s = 10, '
            "strain = { dedt_ue_per_s = 0 } }",
            "steps[0].settle.strain.dedt_ue_per_s",
            "(0, 10000]",
        ),
        (
            'kind = "adaptive_rest"\nsettle = { dvdt_v_per_s = 1e-3, max_s = 10, '
            'strain = { dedt_ue_per_s = 1, combine = "any" } }',
            "steps[0].settle.strain.combine",
            "both, either, strain_only",
        ),
        (
            'kind = "adaptive_rest"\nsettle = { dvdt_v_per_s = 1e-3, max_s = 10, '
            'strain = { dedt_ue_per_s = 1, grating = "x1" } }',
            "steps[0].settle.strain.grating",
            "field name",
        ),
        (
            'kind = "adaptive_rest"\nsettle = { dvdt_v_per_s = 1e-3, max_s = 10, '
            'strain = { dedt_ue_per_s = 1, grating = "g1", reference = 1 } }',
            "steps[0].settle.strain.reference",
            "sensing grating",
        ),
        (
            'kind = "adaptive_rest"\nsettle = { dvdt_v_per_s = 1e-3, max_s = 10, '
            "strain = { dedt_ue_per_s = 1, pm_per_ue = 50 } }",
            "steps[0].settle.strain.pm_per_ue",
            "[0.1, 10]",
        ),
        (
            'kind = "constant"\ncurrent_a = 1e-3\nderate = { signal = "strain", scale = 0.5 }',
            "steps[0].derate.limit_ue_per_s",
            "missing",
        ),
        (
            'kind = "constant"\ncurrent_a = 1e-3\n'
            'derate = { signal = "strain", limit_ue_per_s = 5, limit_mpa_per_s = 1 }',
            "steps[0].derate.limit_mpa_per_s",
            'not with signal = "strain"',
        ),
        (
            'kind = "constant"\ncurrent_a = 1e-3\n'
            'derate = { signal = "strain", limit_ue_per_s = 5, resume_ue_per_s = 6 }',
            "steps[0].derate.resume_ue_per_s",
            "below limit_ue_per_s = 5",
        ),
        (
            'kind = "constant"\ncurrent_a = 1e-3\n'
            'derate = { signal = "force", limit_mpa_per_s = 1 }',
            "steps[0].derate.signal",
            "pressure, strain",
        ),
        (
            'kind = "constant"\ncurrent_a = 1e-3\nderate = { limit_mpa_per_s = 1, grating = "g0" }',
            "steps[0].derate.grating",
            'only with signal = "strain"',
        ),
    ],
)
def test_bad_strain_settings_name_the_field(step: str, path: str, words: str) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_protocol(_steps(step))
    assert any(err.startswith(path + ":") and words in err for err in e.value.errors), (
        e.value.errors
    )


def test_the_protocols_reference_grating_is_the_default() -> None:
    """[fbg] reference_grating compensates the strain criteria that name none; "none" opts
    out; a criterion on the reference grating itself is left uncompensated."""
    p = parse_protocol(
        tomllib.loads(
            '[fbg]\nreference_grating = "g1"\n'
            '[[steps]]\nkind = "adaptive_rest"\n'
            "settle = { dvdt_v_per_s = 1e-3, max_s = 10, strain = { dedt_ue_per_s = 1 } }\n"
            '[[steps]]\nkind = "adaptive_rest"\nsettle = { dvdt_v_per_s = 1e-3, max_s = 10, '
            'strain = { dedt_ue_per_s = 1, reference = "none" } }\n'
            '[[steps]]\nkind = "constant"\ncurrent_a = 1e-3\ncutoff = { max_duration_s = 5 }\n'
            'derate = { signal = "strain", limit_ue_per_s = 5, grating = "g1" }\n'
        )
    )
    a, b = (Settle.from_table(s.params["settle"]).fields() for s in p.steps[:2])
    assert a["ref_grating"] == 1 and b["ref_grating"] == defs.REF_NONE
    assert "reference" not in p.steps[2].params["derate"]


def test_grating_names() -> None:
    assert grating_index("g3") == 3 and grating_index(2) == 2
    assert grating_index(None) == defs.REF_NONE
    for bad in ("3", "grating0", -1, 255, True):
        with pytest.raises(ValueError):
            grating_index(bad)  # type: ignore[arg-type]


def test_cli_runs_strain_settled_rests_on_the_emulated_pouch(tmp_path: Path) -> None:
    """The example, cut to two pulses, through `stressrig run`: every rest ends on the
    board's decision with both criteria required (each rest_end names the later one), the
    strain criterion needing at least a hold plus two 5 s windows; the strain-rate derating
    is armed for the step (the pouch's strain moves far slower than 40 µε/s: no event)."""
    proto = tmp_path / "strain.toml"
    proto.write_text(EXAMPLE.read_text().replace("count = 10", "count = 2"))
    out = tmp_path / "strain.h5"
    assert cli.main(["run", str(proto), "--port", URL, "--out", str(out), "--no-progress"]) == 0
    rec = load_recording(out)
    rests = rest_decisions(rec)
    assert len(rests) == 2 and rests.settled.all()
    assert all(5.0 + 10.0 <= x < 300.0 for x in rests.length_s), rests.length_s
    ev = rec.events
    ends = ev[ev["code"] == defs.EV_REST_END]
    assert set(int(c) for c in ends["cause"]) <= {defs.CAUSE_SETTLED, defs.CAUSE_STRAIN_SETTLED}
    assert not (ev["code"] == defs.EV_DERATE).any()
    assert [bytes(s["end_cause"]).decode() for s in rec.steps] == ["completed"]

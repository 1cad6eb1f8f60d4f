"""Architecture files: declaration, loader, validation, overrides, generated docs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from hwsim import arch as A
from hwsim.arch import PARAMS, Arch, load_arch, parse_override
from hwsim.errors import InputError
from hwsim.phase import BUS, MESH, Timing

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ROOT / "archs"
SHIPPED = ["pe64", "pe16", "pe256", "seneca"]
PE64 = ARCHS / "pe64.yaml"
PE64_TEXT = PE64.read_text()


def line_of(text: str, pattern: str) -> int:
    """1-based line of the first line matching the regex."""
    for i, line in enumerate(text.splitlines(), 1):
        if re.search(pattern, line):
            return i
    raise AssertionError(f"{pattern!r} not in text")


def write(tmp_path, text: str, name: str = "x.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def err(tmp_path, text: str) -> str:
    p = write(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_arch(p)
    msg = str(e.value)
    assert msg.startswith(str(p)), msg
    return msg


def edit(pattern: str, repl: str, text: str = PE64_TEXT) -> str:
    new, n = re.subn(pattern, repl, text, count=1, flags=re.M)
    assert n == 1, pattern
    return new


# --- the declaration ---------------------------------------------------------------------------


def test_declaration_is_complete_and_ordered():
    assert list(PARAMS)[:4] == ["chip.name", "chip.clock_mhz", "chip.mesh_rows", "chip.mesh_cols"]
    for path, p in PARAMS.items():
        assert p.path == path and p.doc and p.type in (int, float, str, bool, dict)
        if p.type in (int, float):
            assert p.min is not None and p.unit
    defaults = {k for k, p in PARAMS.items() if not p.required}
    assert defaults == {"pe.component", "pe.component_params", "chip.name", "noc.flow_control",
                        "mapping.strategy"}
    assert PARAMS["noc.topology"].choices == ("mesh", "bus")
    assert PARAMS["mapping.mode"].choices == ("op_by_op", "layer_pipelined")
    assert PARAMS["sram.banks"].expected() == "an integer from 1 to 64"


# --- shipped architectures ---------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_archs_load(name):
    a = load_arch(ARCHS / f"{name}.yaml")
    assert a.name == name
    assert a.to_dict()["version"] == 1
    # the file gives every key explicitly, each with a comment
    text = (ARCHS / f"{name}.yaml").read_text()
    for p in PARAMS.values():
        ln = line_of(text, rf"^\s+{p.name}:")
        assert "#" in text.splitlines()[ln - 1], p.path
        assert a.where(p.path) == f"{ARCHS / f'{name}.yaml'}:{ln}"
    for ref in ("Horowitz", "ISSCC 2014"):
        assert ref in text
    assert "assumed" in text


def test_shipped_shapes():
    assert load_arch(ARCHS / "pe16.yaml").n_pe == 16
    assert load_arch(ARCHS / "pe256.yaml").n_pe == 256
    s = load_arch(ARCHS / "seneca.yaml")
    assert s.n_pe == 8 and s.get("noc.topology") == "bus"
    assert s.get("pe.mac_lanes") > load_arch(PE64).get("pe.mac_lanes")
    assert "Tang" in (ARCHS / "seneca.yaml").read_text()
    assert "Davies" in PE64_TEXT


def test_default_and_short_name():
    assert load_arch().get("chip.mesh_rows") == 8
    assert load_arch("pe16").n_pe == 16
    assert A.DEFAULT_ARCH.name == "pe64.yaml"


def test_shipped_archs_match_generated_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = A.json_schema()
    for name in SHIPPED:
        jsonschema.validate(yaml.safe_load((ARCHS / f"{name}.yaml").read_text()), schema)
    bad = yaml.safe_load(PE64_TEXT)
    bad["sram"]["banks"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# --- access ------------------------------------------------------------------------------------


def test_access_and_immutability():
    a = load_arch(PE64)
    assert a.get("sram.banks") == 4 == a["sram"]["banks"]
    a["sram"]["banks"] = 99
    assert a.get("sram.banks") == 4
    assert isinstance(a.get("chip.clock_mhz"), float)  # int in the file, float canonically
    with pytest.raises(KeyError, match="sram.banks"):
        a.get("sram.bank")
    with pytest.raises(KeyError):
        a["nope"]
    import pickle  # sweeps and the process pool ship archs to workers

    b = pickle.loads(pickle.dumps(a.with_overrides({"sram.banks": "8"})))
    assert b.get("sram.banks") == 8 and b.where("sram.banks").startswith("command line")


def test_timing():
    t = load_arch(PE64).timing()
    assert t == Timing(rows=8, cols=8, topology=MESH, queue_depth=64, decode_cycles=1, banks=4,
                       read_latency=1, sharing=1, hop_latency=1, credit_latency=1,
                       barrier_latency=32)
    s = load_arch(ARCHS / "seneca.yaml").timing()
    assert (s.topology, s.rows, s.cols, s.n_pe) == (BUS, 2, 4, 8)
    assert (s.queue_depth, s.decode_cycles, s.banks, s.hop_latency, s.credit_latency,
            s.barrier_latency) == (256, 2, 8, 2, 2, 16)


def test_defaults_filled_and_where_without_line(tmp_path):
    text = PE64_TEXT
    for key in ("  name:", "  component:", "  component_params:", "  flow_control:", "  strategy:"):
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(key)) + "\n"
    a = load_arch(write(tmp_path, text))
    assert a.get("pe.component") == "pe" and a.get("pe.component_params") == {}
    assert a.get("noc.flow_control") == "credit" and a.get("mapping.strategy") == "even"
    assert a.get("chip.name") == "" and a.name == "x"
    assert a.where("chip.name") == str(tmp_path / "x.yaml")


def test_digest():
    a = load_arch(PE64)
    assert a.digest() == load_arch(PE64).digest()
    assert re.fullmatch(r"[0-9a-f]{64}", a.digest())
    b = a.with_overrides({"sram.banks": "8"})
    assert b.digest() != a.digest()
    assert b.with_overrides({"sram.banks": 4}).digest() == a.digest()
    # int vs float spelling of the same value does not change the digest
    assert a.with_overrides({"chip.clock_mhz": "500.0"}).digest() == a.digest()
    assert Arch.from_dict(a.to_dict()).digest() == a.digest() and Arch.from_dict(a.to_dict()) == a


# --- errors ------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.yaml: architecture file not found.*pe64"):
        load_arch(tmp_path / "nope.yaml")


def test_invalid_yaml(tmp_path):
    msg = err(tmp_path, "version: 1\nchip:\n  name: [a, b\n  x: 1\n")
    assert re.search(r"x\.yaml:\d+:\d+: not valid YAML", msg), msg
    msg = err(tmp_path, "version: 1\nchip: a: b\n")
    assert "x.yaml:2:8: not valid YAML: mapping values are not allowed here" in msg


def test_top_level_not_mapping(tmp_path):
    assert "expected a mapping at the top level" in err(tmp_path, "- 1\n- 2\n")
    assert "file is empty" in err(tmp_path, "# nothing\n")


def test_python_tags_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    text = edit(r"^  name: pe64.*$",
                f"  name: !!python/object/apply:os.system ['touch {marker}']")
    msg = err(tmp_path, text)
    ln = line_of(text, "python/object")
    assert f"x.yaml:{ln}:" in msg and "chip.name" in msg and "unsupported YAML tag" in msg
    assert not marker.exists()
    msg = err(tmp_path, edit(r"^  banks: 4.*$", "  banks: !custom 4"))
    assert "sram.banks: unsupported YAML tag '!custom'" in msg


def test_version(tmp_path):
    msg = err(tmp_path, edit(r"^version: 1.*\n", ""))
    assert "version: missing required key" in msg
    msg = err(tmp_path, edit(r"^version: 1", "version: 2"))
    assert f"x.yaml:{line_of(PE64_TEXT, '^version')}: version: unsupported" in msg
    assert "reads version 1" in msg
    assert "unsupported" in err(tmp_path, edit(r"^version: 1", "version: true"))


def test_unknown_section(tmp_path):
    text = edit(r"^sram:", "srm:")
    msg = err(tmp_path, text)
    assert f"x.yaml:{line_of(text, '^srm:')}: srm: unknown section; did you mean sram?" in msg


def test_unknown_key(tmp_path):
    text = edit(r"^  banks:", "  bankz:")
    msg = err(tmp_path, text)
    assert f"x.yaml:{line_of(text, 'bankz')}: sram.bankz: unknown key; did you mean banks?" in msg
    text = edit(r"^  banks:", "  zzzzzz:")
    msg = err(tmp_path, text)
    assert "sram.zzzzzz: unknown key (keys of sram: bank_width_bits, banks" in msg


def test_missing_required_key(tmp_path):
    text = edit(r"^  banks:.*\n", "")
    msg = err(tmp_path, text)
    assert f"x.yaml:{line_of(text, '^sram:')}: sram.banks: missing required key" in msg
    assert "an integer from 1 to 64" in msg
    text = re.sub(r"^sync:\n.*\n", "", PE64_TEXT, flags=re.M)
    assert "sync: missing required section (it needs barrier_latency)" in err(tmp_path, text)


@pytest.mark.parametrize("key,bad,expect", [
    ("banks", "true", "sram.banks: expected an integer from 1 to 64, got a boolean (true)"),
    ("banks", "4.0", "sram.banks: expected an integer from 1 to 64, got a number (4.0)"),
    ("banks", "four", "sram.banks: expected an integer from 1 to 64, got a string ('four')"),
    ("banks", "", "sram.banks: expected an integer from 1 to 64, got nothing (null)"),
    ("clock_mhz", "fast", "chip.clock_mhz: expected a number from 1 to 10000, got a string"),
    ("clock_mhz", ".nan", "chip.clock_mhz: expected a number from 1 to 10000, got a number (nan)"),
    ("multicast", "1", "noc.multicast: expected true or false, got an integer (1)"),
    ("name", "42", "chip.name: expected a string, got an integer (42)"),
    ("component_params", "[1, 2]", "pe.component_params: expected a mapping, got a list"),
])
def test_wrong_type(tmp_path, key, bad, expect):
    text = edit(rf"^  {key}:.*$", f"  {key}: {bad}")
    msg = err(tmp_path, text)
    assert f"x.yaml:{line_of(text, rf'^  {key}:')}: {expect}" in msg, msg


@pytest.mark.parametrize("key,bad,expect", [
    ("banks", "-2", "sram.banks: expected an integer from 1 to 64, got -2"),
    ("banks", "65", "sram.banks: expected an integer from 1 to 64, got 65"),
    ("capacity_kib", "0", "sram.capacity_kib: expected a number > 0 and <= 65536, got 0"),
    ("mac_pj", "-0.1", "energy.mac_pj: expected a number >= 0, got -0.1"),
    ("barrier_latency", "1000001",
     "sync.barrier_latency: expected an integer from 1 to 1000000, got 1000001"),
])
def test_out_of_range(tmp_path, key, bad, expect):
    text = edit(rf"^  {key}:.*$", f"  {key}: {bad}")
    msg = err(tmp_path, text)
    assert f"x.yaml:{line_of(text, rf'^  {key}:')}: {expect}" in msg, msg


def test_bad_choice(tmp_path):
    text = edit(r"^  topology:.*$", "  topology: torus")
    msg = err(tmp_path, text)
    assert (f"x.yaml:{line_of(text, 'topology')}: noc.topology: expected one of mesh, bus, "
            f"got a string ('torus')") in msg
    msg = err(tmp_path, edit(r"^  strategy:.*$", "  strategy: greedy"))
    assert "mapping.strategy: expected one of even, balanced" in msg
    assert "expected credit" in err(tmp_path, edit(r"^  flow_control:.*$", "  flow_control: none"))


def test_duplicate_keys(tmp_path):
    text = edit(r"^  banks: 4.*$", "  banks: 4\n  banks: 8")
    msg = err(tmp_path, text)
    first = line_of(text, "banks: 4")
    assert f"x.yaml:{first + 1}: sram.banks: duplicate key (first given on line {first})" in msg
    text = PE64_TEXT + "sync:\n  barrier_latency: 3\n"
    assert "sync: duplicate key" in err(tmp_path, text)


def test_section_not_mapping(tmp_path):
    text = re.sub(r"^sync:\n.*\n", "sync: 5\n", PE64_TEXT, flags=re.M)
    msg = err(tmp_path, text)
    assert f"x.yaml:{line_of(text, '^sync:')}: sync: expected a mapping" in msg


def test_cross_field_sharing(tmp_path):
    text = edit(r"^  mesh_rows:.*$", "  mesh_rows: 1")
    text = edit(r"^  mesh_cols:.*$", "  mesh_cols: 2", text)
    text = edit(r"^  sharing:.*$", "  sharing: 4", text)
    msg = err(tmp_path, text)
    assert (f"x.yaml:{line_of(text, '^  sharing')}: sram.sharing: expected at most the number of "
            f"PEs (chip.mesh_rows * chip.mesh_cols = 1 * 2 = 2), got 4") in msg
    # broken by an override of another key: the file's line, and the override that broke it
    text = edit(r"^  sharing:.*$", "  sharing: 16")
    a = load_arch(write(tmp_path, text))
    with pytest.raises(InputError) as e:
        a.with_overrides({"chip.mesh_rows": "1"})
    assert str(e.value).startswith(f"{tmp_path / 'x.yaml'}:{line_of(text, '^  sharing')}: "
                                   f"sram.sharing: expected at most the number of PEs")
    assert str(e.value).endswith("= 8), got 16 (after the command-line override chip.mesh_rows=1)")
    with pytest.raises(InputError, match=r"^command line \(override of .*sram\.sharing: expected"):
        load_arch(ARCHS / "pe16.yaml", {"sram.sharing": "32"})


def test_from_dict_errors():
    d = load_arch(PE64).to_dict()
    d["noc"]["hop_latency"] = 0
    with pytest.raises(InputError, match=r"^<dict>: noc.hop_latency: expected an integer"):
        Arch.from_dict(d)


# --- overrides ---------------------------------------------------------------------------------


def test_overrides_parse_strings():
    a = load_arch(PE64)
    b = a.with_overrides({
        "sram.banks": "8", "noc.multicast": "false", "chip.clock_mhz": "1e3",
        "noc.topology": "bus", "mapping.mode": "layer_pipelined", "chip.name": "mine",
        "energy.mac_pj": "0", "pe.component_params": "{a: 1, b: x}",
    })
    assert b.get("sram.banks") == 8 and b.get("noc.multicast") is False
    assert b.get("chip.clock_mhz") == 1000.0 and b.get("noc.topology") == "bus"
    assert b.timing().topology == BUS and b.get("mapping.mode") == "layer_pipelined"
    assert b.name == "mine" and b.get("energy.mac_pj") == 0.0
    assert b.get("pe.component_params") == {"a": 1, "b": "x"}
    assert a.get("sram.banks") == 4  # the original is unchanged
    for text, val in [("true", True), ("Yes", True), ("on", True), ("1", True),
                      ("FALSE", False), ("no", False), ("off", False), ("0", False)]:
        assert a.with_overrides({"noc.multicast": text}).get("noc.multicast") is val
    # Python values are checked strictly; an int is fine for a float
    assert a.with_overrides({"sram.banks": 2, "chip.clock_mhz": 250}).get("chip.clock_mhz") == 250.0
    c = a.with_overrides({"pe.component_params.lanes": "3"})
    assert c.get("pe.component_params") == {"lanes": 3}
    assert c.with_overrides(["pe.component_params.mode=fast"]).get("pe.component_params") == \
        {"lanes": 3, "mode": "fast"}


def test_overrides_where_and_load():
    a = load_arch(PE64, ["sram.banks=16", "noc.multicast=no"])
    assert a.get("sram.banks") == 16 and a.get("noc.multicast") is False
    assert a.where("sram.banks") == f"command line (override of {PE64})"
    assert a.where("sram.sharing") == f"{PE64}:{line_of(PE64_TEXT, '^  sharing')}"


@pytest.mark.parametrize("key,value,expect", [
    ("sram.banks", "-2", "sram.banks: expected an integer from 1 to 64, got -2"),
    ("sram.banks", "2.5", "sram.banks: expected an integer from 1 to 64, got '2.5'"),
    ("sram.banks", True, "sram.banks: expected an integer from 1 to 64, got a boolean (true)"),
    ("noc.multicast", "maybe", "noc.multicast: expected true or false, got 'maybe'"),
    ("noc.topology", "ring", "noc.topology: expected one of mesh, bus, got a string ('ring')"),
    ("chip.clock_mhz", "inf", "chip.clock_mhz: expected a number from 1 to 10000"),
    ("chip.clock_mhz", "fast", "chip.clock_mhz: expected a number from 1 to 10000, got 'fast'"),
    ("pe.component_params", "[1]", "pe.component_params: expected a YAML mapping"),
])
def test_bad_override_value(key, value, expect):
    a = load_arch(PE64)
    with pytest.raises(InputError) as e:
        a.with_overrides({key: value})
    msg = str(e.value)
    assert msg.startswith(f"command line (override of {PE64}): {expect}"), msg
    assert "from the override" in msg


def test_unknown_override_path():
    with pytest.raises(InputError, match=r"^command line .*: sram\.bank: unknown parameter; "
                                         r"did you mean sram\.banks"):
        load_arch(PE64, {"sram.bank": "4"})
    with pytest.raises(InputError, match="unknown parameter"):
        load_arch(PE64, {"sram.banks.x": "4"})


def test_parse_override():
    assert parse_override("sram.banks=4") == ("sram.banks", "4")
    assert parse_override(" noc.topology = bus ") == ("noc.topology", "bus")
    assert parse_override("chip.name=a=b") == ("chip.name", "a=b")
    assert parse_override("chip.name=") == ("chip.name", "")
    for bad in ("sram.banks", "banks=4", "=4", "sram..banks=4", "", "sram.banks:4"):
        with pytest.raises(InputError, match="command line.*SECTION.KEY=VALUE"):
            parse_override(bad)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_int_override_roundtrip(data):
    base = load_arch(PE64)
    p = data.draw(st.sampled_from([p for p in PARAMS.values() if p.type is int]))
    v = data.draw(st.integers(int(p.min), int(p.max)))
    as_text = data.draw(st.booleans())
    a = base.with_overrides({p.path: str(v) if as_text else v})
    assert a.get(p.path) == v and a[p.section][p.name] == v
    assert Arch.from_dict(a.to_dict()).get(p.path) == v
    assert (a.digest() == base.digest()) == (v == base.get(p.path))


# --- generated docs and entry point ------------------------------------------------------------


def test_docs_up_to_date():
    doc = ROOT / "docs" / "architecture.md"
    assert doc.read_text() == A.markdown(), (
        "docs/architecture.md is stale: run `python -m hwsim.arch --markdown > "
        "docs/architecture.md`")
    for p in PARAMS.values():
        assert f"| `{p.name}` |" in doc.read_text()


def test_main_entry_point():
    r = subprocess.run([sys.executable, "-m", "hwsim.arch", "--markdown"], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    assert r.stdout == A.markdown()
    r = subprocess.run([sys.executable, "-m", "hwsim.arch", "archs/pe16.yaml",
                        "--set", "sram.banks=99"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "sram.banks: expected an integer from 1 to 64, got 99" in r.stderr

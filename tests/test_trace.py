"""Trace format v1: round trips, head(), and one test per validation rule."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import InputError
from hwsim.trace import (
    FORMAT_NAME,
    FORMAT_VERSION,
    OP_KINDS,
    OpEvents,
    OpSpec,
    Trace,
    load_trace,
    make_trace,
    save_trace,
    validate_trace,
)

STEPS = 4


def _ops():
    return [
        OpSpec("layers.0.norm", "norm", 8, 8, None, False),
        OpSpec("layers.0.mamba.in_proj", "linear", 8, 16, "layers.0.norm", False, 0.5),
        OpSpec("layers.0.mamba.conv1d", "conv1d", 8, 8, "layers.0.mamba.in_proj", True,
               params={"kernel": 4}),
        OpSpec("layers.0.mamba.scan", "scan", 8, 8, "layers.0.mamba.conv1d", False,
               params={"d_state": 16}),
        OpSpec("layers.0.mamba.gate", "elementwise", 8, 8, "layers.0.mamba.scan", True),
    ]


def _events():
    # op 0 graded; step 1 and 3 empty
    e0 = OpEvents(np.array([0, 3, 3, 5, 5]), np.array([0, 2, 7, 1, 6]),
                  np.array([1.0, -2.5, 3.0, 0.5, 4.0]))
    # op 1 graded, all empty
    e1 = OpEvents(np.zeros(STEPS + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    # op 2 binary
    e2 = OpEvents(np.array([0, 1, 2, 2, 4]), np.array([3, 3, 0, 7]), None)
    # op 3 graded
    e3 = OpEvents(np.array([0, 8, 8, 8, 9]), np.arange(8).tolist() + [5],
                  np.linspace(-1, 1, 9))
    # op 4 binary, every step empty except the last
    e4 = OpEvents([0, 0, 0, 0, 2], [1, 2], None)
    return [e0, e1, e2, e3, e4]


def _trace(**kw):
    args = dict(steps=STEPS, step_ms=10.0, variant="fatrelu", model={"d_model": 8, "n_layer": 1},
                provenance={"synthetic": True, "utterance_id": "u1", "generator": "tests"})
    args.update(kw)
    return make_trace(_ops(), _events(), **args)


def _assert_same(a: Trace, b: Trace):
    assert a.header == b.header
    assert a.ops == b.ops
    assert len(a.events) == len(b.events)
    for ea, eb in zip(a.events, b.events):
        assert eb.indptr.dtype == np.int64 and eb.index.dtype == np.int32
        np.testing.assert_array_equal(ea.indptr, eb.indptr)
        np.testing.assert_array_equal(ea.index, eb.index)
        if ea.value is None:
            assert eb.value is None
        else:
            assert eb.value.dtype == np.float32
            np.testing.assert_array_equal(ea.value, eb.value)


# ------------------------------------------------------------------------------------------
# round trips
# ------------------------------------------------------------------------------------------


def test_round_trip_all_kinds(tmp_path):
    t = _trace()
    assert {op.kind for op in t.ops} == set(OP_KINDS)
    p = tmp_path / "t.npz"
    save_trace(p, t)
    u = load_trace(p)
    _assert_same(t, u)
    assert u.path == str(p)
    assert u.steps == STEPS and u.step_ms == 10.0 and u.variant == "fatrelu" and u.synthetic
    assert u.header["format"] == FORMAT_NAME and u.header["version"] == FORMAT_VERSION
    assert u.header["model"] == {"d_model": 8, "n_layer": 1}
    assert u.n_events() == 5 + 0 + 4 + 9 + 2
    idx, val = u.step(0, 0)
    assert idx.tolist() == [0, 2, 7] and val.tolist() == [1.0, -2.5, 3.0]
    idx, val = u.step(0, 1)
    assert len(idx) == 0 and len(val) == 0
    idx, val = u.step(2, 3)
    assert idx.tolist() == [0, 7] and val is None
    with pytest.raises(IndexError):
        u.step(0, STEPS)
    with np.load(p, allow_pickle=False) as z:
        assert "op2.value" not in z.files and "op4.value" not in z.files
        assert z["header"].dtype == np.uint8


def test_save_writes_exact_name_atomically_and_overwrites(tmp_path):
    p = tmp_path / "trace_no_ext"
    save_trace(p, _trace())
    save_trace(p, _trace(variant="spiking"))
    assert load_trace(p).variant == "spiking"
    assert sorted(os.listdir(tmp_path)) == ["trace_no_ext"]  # no .npz added, no temp left


def test_save_refuses_invalid_trace_and_leaves_nothing(tmp_path):
    t = _trace()
    t.events[0].index[0] = 99
    p = tmp_path / "bad.npz"
    with pytest.raises(InputError, match="bad.npz"):
        save_trace(p, t)
    assert os.listdir(tmp_path) == []


def test_save_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        save_trace(tmp_path / "nope" / "t.npz", _trace())


def test_make_trace_defaults_and_canonical_dtypes():
    t = make_trace([OpSpec("a", "linear", 3, 2, None, True)],
                   [OpEvents([0, 0, 1], np.array([2], np.int64), None)],
                   steps=2, step_ms=np.float64(1), variant="synthetic")
    assert t.synthetic is True and t.header["model"] == {}
    assert isinstance(t.header["step_ms"], float)
    assert t.events[0].indptr.dtype == np.int64 and t.events[0].index.dtype == np.int32
    validate_trace(t)
    t2 = make_trace([dict(name="a", kind="linear", in_width=3, out_width=2, source=None,
                          binary=False)],
                    [OpEvents([0, 1], [1], np.array([2.0], np.float64))],
                    steps=1, step_ms=5, variant="dense")
    assert t2.synthetic is False and t2.events[0].value.dtype == np.float32
    assert t2.ops[0].weight_density == 1.0 and t2.ops[0].params == {}


def test_make_trace_rejects_bad_input():
    with pytest.raises(InputError, match="op 0 'a': kind"):
        make_trace([OpSpec("a", "matmul", 3, 2, None, True)], [OpEvents([0, 0], [], None)],
                   steps=1, step_ms=1, variant="dense")
    with pytest.raises(InputError, match="events"):
        make_trace([OpSpec("a", "linear", 3, 2, None, True)], [], steps=1, step_ms=1,
                   variant="dense")
    with pytest.raises(InputError, match="header"):
        make_trace([OpSpec("a", "linear", 3, 2, None, True)], [OpEvents([0, 0], [], None)],
                   steps=1, step_ms=1, variant="dense", model={"x": object()})


def test_validate_trace_catches_ops_mismatch():
    t = _trace()
    t.ops[1].in_width = 9
    with pytest.raises(InputError, match="op 1 'layers.0.mamba.in_proj'"):
        validate_trace(t, "mem.npz")


def test_head(tmp_path):
    t = _trace()
    h = t.head(2)
    assert h.steps == 2 and t.steps == STEPS
    assert h.header["ops"] == t.header["ops"]
    validate_trace(h)
    assert h.events[0].index.tolist() == [0, 2, 7]
    assert h.events[3].index.tolist() == list(range(8))
    assert len(h.events[4].index) == 0 and h.events[4].value is None
    assert np.shares_memory(h.events[0].index, t.events[0].index)  # cheap: views
    assert t.head(100).steps == STEPS
    p = tmp_path / "h.npz"
    save_trace(p, h)
    _assert_same(h, load_trace(p))
    with pytest.raises(ValueError):
        t.head(0)


@st.composite
def _csr(draw):
    steps = draw(st.integers(1, 12))
    width = draw(st.integers(1, 40))
    binary = draw(st.booleans())
    indptr, index = [0], []
    for _ in range(steps):
        chans = sorted(draw(st.sets(st.integers(0, width - 1), max_size=width)))
        index += chans
        indptr.append(len(index))
    value = None
    if not binary:
        value = draw(st.lists(st.floats(-1e6, 1e6, width=32), min_size=len(index),
                              max_size=len(index)))
    return steps, width, binary, indptr, index, value


@settings(max_examples=40, deadline=None)
@given(_csr())
def test_round_trip_property(csr):
    steps, width, binary, indptr, index, value = csr
    t = make_trace([OpSpec("x.op", "linear", width, 3, None, binary)],
                   [OpEvents(indptr, index, value)], steps=steps, step_ms=2.5, variant="dense")
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "p.npz")
        save_trace(p, t)
        u = load_trace(p)
    _assert_same(t, u)
    assert u.n_events() == len(index)
    for s in range(steps):
        idx, val = u.step(0, s)
        assert idx.tolist() == index[indptr[s]:indptr[s + 1]]
        if not binary:
            assert val.tolist() == value[indptr[s]:indptr[s + 1]]
    k = max(1, steps // 2)
    h = u.head(k)
    assert h.n_events() == indptr[k]


# ------------------------------------------------------------------------------------------
# validation: files built by hand
# ------------------------------------------------------------------------------------------


def _parts():
    """(header dict, arrays dict) of a good trace, for tests to break."""
    t = _trace()
    header = json.loads(json.dumps(t.header))
    arrays = {}
    for i, (op, ev) in enumerate(zip(t.ops, t.events)):
        arrays[f"op{i}.indptr"] = ev.indptr.copy()
        arrays[f"op{i}.index"] = ev.index.copy()
        if ev.value is not None:
            arrays[f"op{i}.value"] = ev.value.copy()
    return header, arrays


def _write(path, header, arrays):
    out = dict(arrays)
    if header is not None:
        out["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **out)


def _expect_error(path, *fragments):
    with pytest.raises(InputError) as ei:
        load_trace(path)
    msg = str(ei.value)
    assert os.path.basename(str(path)) in msg, msg
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


def test_good_hand_written_file_loads(tmp_path):
    header, arrays = _parts()
    p = tmp_path / "good.npz"
    _write(p, header, arrays)
    load_trace(p)


# --- file level ----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "absent.npz", "not found")


def test_folder_not_file(tmp_path):
    d = tmp_path / "dir.npz"
    d.mkdir()
    _expect_error(d, "folder")


def test_not_a_zip(tmp_path):
    p = tmp_path / "text.npz"
    p.write_text("hello, not a zip")
    _expect_error(p, "zip")


def test_single_npy_file(tmp_path):
    p = tmp_path / "arr.npz"
    with open(p, "wb") as f:
        np.save(f, np.arange(3))
    _expect_error(p, "zip", ".npy")


def test_truncated_file(tmp_path):
    p = tmp_path / "cut.npz"
    save_trace(p, _trace())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _expect_error(p, "truncated")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.npz"
    p.write_bytes(b"")
    _expect_error(p, "empty")


def test_corrupt_member(tmp_path):
    # a valid zip directory whose member data is damaged (CRC / zlib error on read)
    p = tmp_path / "corrupt.npz"
    save_trace(p, _trace())
    data = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("op3.value.npy")
    start = info.header_offset + 30 + len(info.filename) + 20
    for k in range(start, start + 20):
        data[k] ^= 0xFF
    p.write_bytes(bytes(data))
    _expect_error(p, "op3.value")


def test_pickled_object_array(tmp_path):
    header, arrays = _parts()
    arrays["op0.value"] = np.array([{"a": 1}, None, 3, 4, 5], dtype=object)
    p = tmp_path / "pickled.npz"
    _write(p, header, arrays)  # np.savez pickles object arrays by default
    _expect_error(p, "op0.value", "pickled", "refused")


# --- header --------------------------------------------------------------------------------


def test_header_missing(tmp_path):
    _, arrays = _parts()
    p = tmp_path / "nohead.npz"
    _write(p, None, arrays)
    _expect_error(p, "header", "missing")


def test_header_not_json(tmp_path):
    _, arrays = _parts()
    arrays["header"] = np.frombuffer(b"{not json", np.uint8)
    p = tmp_path / "badjson.npz"
    np.savez(p, **arrays)
    _expect_error(p, "header", "JSON")


def test_header_not_utf8(tmp_path):
    _, arrays = _parts()
    arrays["header"] = np.frombuffer(b"\xff\xfe{}", np.uint8)
    p = tmp_path / "badutf.npz"
    np.savez(p, **arrays)
    _expect_error(p, "header", "UTF-8")


def test_header_wrong_array_type(tmp_path):
    header, arrays = _parts()
    arrays["header"] = np.array(json.dumps(header))  # 0-d unicode array
    p = tmp_path / "strhead.npz"
    np.savez(p, **arrays)
    _expect_error(p, "header", "uint8")


def _header_case(tmp_path, name, mutate, *fragments):
    header, arrays = _parts()
    mutate(header, arrays)
    p = tmp_path / f"{name}.npz"
    _write(p, header, arrays)
    return _expect_error(p, *fragments)


def test_wrong_format(tmp_path):
    _header_case(tmp_path, "fmt", lambda h, a: h.update(format="other"), "header.format",
                 "'hwsim-trace'", "'other'")


def test_newer_version(tmp_path):
    _header_case(tmp_path, "newer", lambda h, a: h.update(version=2), "header.version",
                 "written by a newer hwsim, version 2; this hwsim reads version 1")


def test_older_version(tmp_path):
    _header_case(tmp_path, "older", lambda h, a: h.update(version=0), "header.version",
                 "version 0", "reads version 1")


def test_version_not_int(tmp_path):
    _header_case(tmp_path, "verstr", lambda h, a: h.update(version="1"), "header.version", "'1'")


def test_version_missing(tmp_path):
    _header_case(tmp_path, "nover", lambda h, a: h.pop("version"), "header.version", "missing")


def test_unknown_header_key(tmp_path):
    _header_case(tmp_path, "hkey", lambda h, a: h.update(extra=1), "header", "'extra'")


def test_missing_header_key(tmp_path):
    _header_case(tmp_path, "nosteps", lambda h, a: h.pop("steps"), "header.steps", "missing")


@pytest.mark.parametrize("steps", [0, -1, 2.0, True, "4"])
def test_bad_steps(tmp_path, steps):
    _header_case(tmp_path, "steps", lambda h, a: h.update(steps=steps), "header.steps",
                 ">= 1", repr(steps))


@pytest.mark.parametrize("ms", [0, -1.0, "10", None])
def test_bad_step_ms(tmp_path, ms):
    _header_case(tmp_path, "ms", lambda h, a: h.update(step_ms=ms), "header.step_ms", "> 0")


def test_bad_variant(tmp_path):
    _header_case(tmp_path, "var", lambda h, a: h.update(variant=""), "header.variant")


def test_bad_model(tmp_path):
    _header_case(tmp_path, "model", lambda h, a: h.update(model=[1]), "header.model")


def test_provenance_synthetic_missing(tmp_path):
    _header_case(tmp_path, "prov", lambda h, a: h["provenance"].pop("synthetic"),
                 "header.provenance.synthetic", "missing")


def test_provenance_synthetic_not_bool(tmp_path):
    _header_case(tmp_path, "prov2", lambda h, a: h["provenance"].update(synthetic="yes"),
                 "header.provenance.synthetic", "'yes'")


def test_provenance_optional_wrong_type(tmp_path):
    _header_case(tmp_path, "prov3", lambda h, a: h["provenance"].update(checkpoint_sha256=5),
                 "header.provenance.checkpoint_sha256")


def test_ops_empty(tmp_path):
    def m(h, a):
        h["ops"] = []
        a.clear()
    _header_case(tmp_path, "noops", m, "header.ops", "non-empty")


# --- op list -------------------------------------------------------------------------------


def _op_case(tmp_path, name, i, changes, *fragments):
    def m(h, a):
        h["ops"][i].update(changes)
    return _header_case(tmp_path, name, m, *fragments)


def test_unknown_kind(tmp_path):
    _op_case(tmp_path, "kind", 1, {"kind": "matmul"},
             "op 1 'layers.0.mamba.in_proj': kind", "'matmul'",
             "linear, conv1d, scan, elementwise, norm")


def test_duplicate_names(tmp_path):
    _op_case(tmp_path, "dup", 2, {"name": "layers.0.norm"}, "op 2 'layers.0.norm': name",
             "duplicate", "op 0")


def test_source_does_not_exist(tmp_path):
    _op_case(tmp_path, "src", 1, {"source": "nowhere"},
             "op 1 'layers.0.mamba.in_proj': source", "no op named 'nowhere'")


def test_source_comes_later(tmp_path):
    _op_case(tmp_path, "later", 1, {"source": "layers.0.mamba.scan"},
             "op 1 'layers.0.mamba.in_proj': source", "comes later", "op 3")


def test_source_self(tmp_path):
    _op_case(tmp_path, "self", 1, {"source": "layers.0.mamba.in_proj"},
             "op 1 'layers.0.mamba.in_proj': source", "itself")


@pytest.mark.parametrize("fld,val", [("in_width", 0), ("out_width", -3), ("in_width", 8.0),
                                     ("out_width", True)])
def test_bad_widths(tmp_path, fld, val):
    _op_case(tmp_path, "width", 1, {fld: val}, f"op 1 'layers.0.mamba.in_proj': {fld}",
             "integer >= 1")


@pytest.mark.parametrize("i,kind", [(0, "norm"), (2, "conv1d"), (3, "scan")])
def test_same_width_kinds(tmp_path, i, kind):
    msg = _op_case(tmp_path, f"w{kind}", i, {"out_width": 9}, f"op {i} ", "out_width",
                   "in_width (8)", "got 9")
    assert kind in msg


def test_conv1d_kernel_missing(tmp_path):
    _op_case(tmp_path, "kmiss", 2, {"params": {}}, "op 2 'layers.0.mamba.conv1d': params.kernel",
             "missing")


@pytest.mark.parametrize("k", [0, 2.5, "4", None])
def test_conv1d_kernel_invalid(tmp_path, k):
    _op_case(tmp_path, "kbad", 2, {"params": {"kernel": k}},
             "op 2 'layers.0.mamba.conv1d': params.kernel", "integer >= 1")


def test_scan_d_state_missing(tmp_path):
    _op_case(tmp_path, "dmiss", 3, {"params": {}}, "op 3 'layers.0.mamba.scan': params.d_state",
             "missing")


def test_scan_d_state_invalid(tmp_path):
    _op_case(tmp_path, "dbad", 3, {"params": {"d_state": -1}},
             "op 3 'layers.0.mamba.scan': params.d_state", "integer >= 1", "-1")


def test_unknown_param(tmp_path):
    _op_case(tmp_path, "pextra", 1, {"params": {"bias": True}},
             "op 1 'layers.0.mamba.in_proj': params", "'bias'")


def test_params_not_dict(tmp_path):
    _op_case(tmp_path, "pnd", 2, {"params": [4]}, "op 2 'layers.0.mamba.conv1d': params")


@pytest.mark.parametrize("wd", [0, 0.0, 1.5, -0.1, "1", None])
def test_weight_density(tmp_path, wd):
    _op_case(tmp_path, "wd", 1, {"weight_density": wd},
             "op 1 'layers.0.mamba.in_proj': weight_density", "(0, 1]")


def test_binary_not_bool(tmp_path):
    _op_case(tmp_path, "bin", 1, {"binary": 0}, "op 1 'layers.0.mamba.in_proj': binary")


def test_op_missing_key(tmp_path):
    def m(h, a):
        del h["ops"][1]["in_width"]
    _header_case(tmp_path, "okey", m, "op 1 'layers.0.mamba.in_proj': in_width", "missing")


def test_op_unknown_key(tmp_path):
    _op_case(tmp_path, "oukey", 1, {"fanout": 3}, "op 1 'layers.0.mamba.in_proj'", "'fanout'")


# --- arrays --------------------------------------------------------------------------------


def _array_case(tmp_path, name, mutate, *fragments):
    return _header_case(tmp_path, name, lambda h, a: mutate(a), *fragments)


def test_missing_array(tmp_path):
    _array_case(tmp_path, "miss", lambda a: a.pop("op1.index"),
                "op 1 'layers.0.mamba.in_proj': op1.index", "missing")


def test_missing_value_for_graded_op(tmp_path):
    _array_case(tmp_path, "noval", lambda a: a.pop("op3.value"),
                "op 3 'layers.0.mamba.scan': op3.value", "missing", "graded")


def test_value_present_for_binary_op(tmp_path):
    def m(a):
        a["op2.value"] = np.ones(4, np.float32)
    _array_case(tmp_path, "binval", m, "op 2 'layers.0.mamba.conv1d': op2.value", "binary",
                "found one")


def test_value_present_for_binary_op_in_memory():
    t = _trace()
    t.events[2].value = np.ones(4, np.float32)
    with pytest.raises(InputError,
                       match=r"mem\.npz: op 2 'layers.0.mamba.conv1d': op2.value.*binary"):
        validate_trace(t, "mem.npz")


def test_extra_array(tmp_path):
    def m(a):
        a["op9.indptr"] = np.zeros(5, np.int64)
    _array_case(tmp_path, "extra", m, "arrays", "unexpected", "op9.indptr")


@pytest.mark.parametrize("part,dtype", [("indptr", np.float64), ("index", np.float32),
                                        ("index", np.bool_), ("value", np.int32)])
def test_wrong_dtype(tmp_path, part, dtype):
    def m(a):
        a[f"op0.{part}"] = a[f"op0.{part}"].astype(dtype)
    msg = _array_case(tmp_path, f"dt{part}", m, f"op 0 'layers.0.norm': op0.{part}", "dtype")
    assert ("integer" if part != "value" else "floating") in msg


def test_integer_dtypes_accepted_and_canonicalised(tmp_path):
    def m(a):
        a["op0.indptr"] = a["op0.indptr"].astype(np.uint32)
        a["op0.index"] = a["op0.index"].astype(np.int64)
        a["op0.value"] = a["op0.value"].astype(np.float64)
        a["op2.index"] = a["op2.index"].astype(np.uint8)
    header, arrays = _parts()
    m(arrays)
    p = tmp_path / "dtypes.npz"
    _write(p, header, arrays)
    t = load_trace(p)
    assert t.events[0].indptr.dtype == np.int64
    assert t.events[0].index.dtype == np.int32 and t.events[2].index.dtype == np.int32
    assert t.events[0].value.dtype == np.float32


@pytest.mark.parametrize("part", ["indptr", "index", "value"])
def test_wrong_ndim(tmp_path, part):
    def m(a):
        a[f"op0.{part}"] = a[f"op0.{part}"][None, :]
    _array_case(tmp_path, f"nd{part}", m, f"op 0 'layers.0.norm': op0.{part}", "1-D")


def test_indptr_wrong_length(tmp_path):
    def m(a):
        a["op0.indptr"] = a["op0.indptr"][:-1]
    _array_case(tmp_path, "iplen", m, "op 0 'layers.0.norm': op0.indptr", "steps+1 = 5", "got 4")


def test_indptr_first_not_zero(tmp_path):
    def m(a):
        a["op1.indptr"] = np.ones(STEPS + 1, np.int64)
    _array_case(tmp_path, "ip0", m, "op 1 'layers.0.mamba.in_proj': op1.indptr",
                "indptr[0] == 0", "got 1")


def test_indptr_not_monotone(tmp_path):
    def m(a):
        a["op0.indptr"] = np.array([0, 3, 2, 5, 5])
    _array_case(tmp_path, "mono", m, "op 0 'layers.0.norm': op0.indptr", "non-decreasing",
                "at step 1")


def test_indptr_last_mismatch(tmp_path):
    def m(a):
        a["op0.index"] = np.append(a["op0.index"], 7)
        a["op0.value"] = np.append(a["op0.value"], 1.0)
    _array_case(tmp_path, "iplast", m, "op 0 'layers.0.norm': op0.indptr", "len(op0.index) = 6",
                "got 5")


@pytest.mark.parametrize("bad", [8, -1])
def test_index_out_of_range(tmp_path, bad):
    def m(a):
        a["op2.index"] = np.array([3, 3, bad, 7], np.int32)  # event 2: step 3 (2 is empty)
    msg = _array_case(tmp_path, "oor", m, "op 2 'layers.0.mamba.conv1d': op2.index",
                      f"channel {bad}", "step 3", "in_width = 8")
    assert "out of range" in msg


def test_index_duplicate_within_step(tmp_path):
    def m(a):
        a["op0.index"] = np.array([0, 2, 2, 1, 6], np.int32)
    _array_case(tmp_path, "dupidx", m, "op 0 'layers.0.norm': op0.index", "duplicate",
                "step 0", "strictly increasing")


def test_index_decreasing_within_step(tmp_path):
    def m(a):
        a["op0.index"] = np.array([0, 2, 7, 6, 1], np.int32)
    _array_case(tmp_path, "decidx", m, "op 0 'layers.0.norm': op0.index", "not increasing",
                "step 2")


def test_index_may_restart_at_step_boundary(tmp_path):
    # op2: step 0 = [3], step 1 = [3], step 3 = [0, 7] -> equal/lower across steps is fine
    header, arrays = _parts()
    p = tmp_path / "boundary.npz"
    _write(p, header, arrays)
    assert load_trace(p).events[2].index.tolist() == [3, 3, 0, 7]


def test_value_length_mismatch(tmp_path):
    def m(a):
        a["op0.value"] = a["op0.value"][:-1]
    _array_case(tmp_path, "vlen", m, "op 0 'layers.0.norm': op0.value", "length", "= 5", "got 4")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_value_not_finite(tmp_path, bad):
    def m(a):
        v = a["op0.value"].copy()
        v[3] = bad  # event 3 is in step 2
        a["op0.value"] = v
    _array_case(tmp_path, "nan", m, "op 0 'layers.0.norm': op0.value", "finite", "step 2")


def test_value_overflows_float32(tmp_path):
    def m(a):
        v = a["op0.value"].astype(np.float64)
        v[0] = 1e300
        a["op0.value"] = v
    _array_case(tmp_path, "ovf", m, "op 0 'layers.0.norm': op0.value", "float32", "step 0")

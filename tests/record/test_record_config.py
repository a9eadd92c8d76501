"""RecorderConfig: one check of every setting, and the run attrs it round-trips through."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st
from testutil import tiny_model

import weightscope as ws
from weightscope import schema
from weightscope.analyze._common import every
from weightscope.config import RecorderConfig
from weightscope.errors import AnalysisError, ConfigError, SchemaError

samples = st.one_of(st.none(), st.integers(1, 2**40),
                    st.floats(0.0, 1.0, exclude_min=True, allow_subnormal=False))
configs = st.builds(
    RecorderConfig, every=st.integers(1, 2**40), sample=samples, track_distance=st.booleans(),
    flush_seconds=st.floats(1e-3, 1e6), buffer_mb=st.floats(1e-3, 1e6),
    compression=st.sampled_from(["none", "lz4", "zstd"]),
    resume=st.one_of(st.booleans(), st.integers(0, 2**40)))
#: what the run stores; the other settings are the Recorder's own
STORED = {"every", "sample"}


@given(configs)
def test_to_dict_round_trips_through_the_run_attrs(config):
    attrs = json.loads(json.dumps(config.to_dict()))  # zarr.json holds them as JSON
    assert set(attrs) == {schema.EVERY, schema.SAMPLE}
    others = {n: getattr(config, n) for n in RecorderConfig.field_names() if n not in STORED}
    back = RecorderConfig.from_dict({**attrs, schema.COMPLETE: True}, **others)
    assert back == config
    assert type(back.sample) is type(config.sample)
    assert RecorderConfig.from_dict(back.to_dict()).to_dict() == attrs


@pytest.mark.parametrize("sample", [None, 5, 0.25])
def test_a_run_stores_exactly_to_dict(tmp_path, sample):
    path = tmp_path / "run.zarr"
    rec = ws.Recorder(path, tiny_model(), every=3, sample=sample, flush_seconds=1.0)
    rec.close()
    assert rec.config == RecorderConfig(every=3, sample=sample, flush_seconds=1.0)
    assert (rec.every, rec.sample) == (3, sample)
    ds = ws.open_run(path)
    assert {k: ds.attrs[k] for k in (schema.EVERY, schema.SAMPLE)} == rec.config.to_dict()
    assert RecorderConfig.from_dict(ds.attrs) == RecorderConfig(every=3, sample=sample)
    assert every(ds) == 3


def test_values_are_normalized():
    config = RecorderConfig(every=np.int64(4), sample=np.float32(0.5), flush_seconds=2,
                            buffer_mb=np.int32(8), track_distance=0, resume=np.int64(3))
    assert (type(config.every), type(config.sample), type(config.flush_seconds)) == (
        int, float, float)
    assert type(config.resume) is int and RecorderConfig(resume=True).resume is True
    assert config.buffer_bytes == 8 * 2**20 and config.track_distance is False
    with pytest.raises(AttributeError):
        config.every = 2  # type: ignore[misc]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"every": 0}, r"every must be an int >= 1 \(snapshot interval in optimizer steps\); "
                   r"got 0\. Pass e\.g\. every=10\."),
    ({"every": True}, r"every must be an int >= 1.*got True"),
    ({"every": 2.0}, r"every must be an int >= 1.*got 2\.0"),
    ({"sample": 0}, r"sample as an int .* >= 1; got 0"),
    ({"sample": 1.5}, r"sample as a float .* \(0, 1\]; got 1\.5"),
    ({"sample": "all"}, r"sample must be None, an int >= 1 or a float in \(0, 1\]; got 'all'"),
    ({"flush_seconds": 0}, r"flush_seconds must be > 0; got 0\. Pass e\.g\. 10\.0\."),
    ({"flush_seconds": float("inf")}, r"flush_seconds must be > 0; got inf"),
    ({"buffer_mb": -1}, r"buffer_mb must be > 0; got -1\. Pass e\.g\. 256\."),
    ({"compression": "gzip"}, r"compression must be one of \('none', 'lz4', 'zstd'\)"),
    ({"overwrite": True, "resume": 3}, "exclude each other"),
    ({"resume": -1}, r"resume must be True, False or a step \(an int >= 0\); got -1"),
    ({"resume": "last"}, r"resume must be True, False or a step.*got 'last'"),
])
def test_each_rule_is_checked_at_construction(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RecorderConfig(**kwargs)


def test_stored_attrs_are_checked_with_the_callers_error():
    with pytest.raises(ConfigError, match=r"the run's 'every' attribute must be an integer >= 1; "
                                          r"got None\. Open runs with weightscope\.open_run\."):
        RecorderConfig.from_dict({})
    ds = xr.Dataset(attrs={schema.EVERY: 0})
    with pytest.raises(AnalysisError, match=r"the run's 'every' attribute must be an integer "
                                            r">= 1; got 0\."):
        every(ds)
    with pytest.raises(SchemaError, match=r"the run's attributes break a rule: sample as a float"):
        RecorderConfig.from_dict({schema.EVERY: 2, schema.SAMPLE: 2.5}, error=SchemaError)


def test_config_module_does_not_import_torch():
    code = "import sys, weightscope.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

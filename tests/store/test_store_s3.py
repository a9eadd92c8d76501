"""Runs in an object store: record to and read from a real S3 server on loopback (moto)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from runs import record_tiny
from s3_server import READ_ONLY, iam_keys, s3, s3_endpoint  # noqa: F401  (fixtures)

import weightscope as ws
from weightscope.analyze import figure1_data, summary
from weightscope.errors import RunExistsError, RunNotFoundError
from weightscope.store import run_size_bytes
from weightscope.store.paths import StorageAccessError, StorageError, exists, last_write

STEPS, EVERY = 36, 3


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    return record_tiny(tmp_path_factory.mktemp("s3") / "run.zarr", steps=STEPS, every=EVERY)


def _same_run(a: xr.Dataset, b: xr.Dataset) -> None:
    xr.testing.assert_identical(a.drop_attrs().compute(), b.drop_attrs().compute())
    skip = {"created"}
    assert {k: v for k, v in a.attrs.items() if k not in skip} == {
        k: v for k, v in b.attrs.items() if k not in skip}


def test_record_to_s3_equals_local_run_and_analyzes_alike(s3, local_run):  # noqa: F811
    url = s3.url("run.zarr")
    record_tiny(url, steps=STEPS, every=EVERY, storage_options=s3.options)
    remote = ws.open_run(url, storage_options=s3.options)
    local = ws.open_run(local_run)
    assert remote.attrs["complete"] is True and remote.sizes["step"] == STEPS // EVERY + 1
    _same_run(remote, local)
    assert summary(figure1_data([remote], bins=4)) == summary(figure1_data([local], bins=4))
    assert run_size_bytes(url, s3.options) > remote.w.nbytes
    assert 0 <= last_write(url, s3.options) < 120


def test_credentials_and_endpoint_from_the_environment(s3, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    url = s3.url("env.zarr")
    record_tiny(url, steps=12, every=3)
    assert ws.open_run(url).sizes["step"] == 5 and exists(url)


def test_existing_run_needs_overwrite_and_overwrite_replaces_it(s3):  # noqa: F811
    url = s3.url("run.zarr")
    record_tiny(url, steps=12, every=3, storage_options=s3.options)
    with pytest.raises(RunExistsError, match="a run already exists at 's3://"):
        record_tiny(url, steps=6, every=3, storage_options=s3.options)
    record_tiny(url, steps=6, every=2, storage_options=s3.options, overwrite=True)
    ds = ws.open_run(url, storage_options=s3.options)
    assert ds.step.values.tolist() == [0, 2, 4, 6] and ds.sizes["iteration"] == 6


def test_reopening_a_growing_run_sees_new_snapshots(s3):  # noqa: F811
    url = s3.url("live.zarr")
    model = __import__("testutil").tiny_model()
    rec = ws.Recorder(url, model, every=1, storage_options=s3.options)
    seen = [ws.open_run(url, storage_options=s3.options).sizes["step"]]
    for _ in range(2):
        rec.step()
        rec.checkpoint()  # writes everything recorded so far
        seen.append(ws.open_run(url, storage_options=s3.options).sizes["step"])
    rec.close()
    assert seen == [0, 2, 3]  # step 0 waits in the buffer for the first flush


def test_missing_bucket_or_path_is_run_not_found(s3):  # noqa: F811
    with pytest.raises(RunNotFoundError, match=r"no run at 's3://no-such-bucket-x/run.zarr': "
                       "the bucket 'no-such-bucket-x' does not exist"):
        ws.open_run("s3://no-such-bucket-x/run.zarr", storage_options=s3.options)
    with pytest.raises(RunNotFoundError, match="the path does not exist"):
        ws.open_run(s3.url("missing.zarr"), storage_options=s3.options)
    with pytest.raises(RunNotFoundError, match=r"cannot create a run at 's3://no-such-bucket-x"
                       r"/run.zarr': the bucket 'no-such-bucket-x' does not exist.*Create the "
                       "bucket"):
        record_tiny("s3://no-such-bucket-x/run.zarr", steps=3, every=1,
                    storage_options=s3.options)


def test_denied_access_is_a_storage_access_error(s3):  # noqa: F811
    from moto.core.authorization import enable_iam_authentication  # heavy: not at collection
    url, new = s3.url("run.zarr"), s3.url("new.zarr")
    record_tiny(url, steps=6, every=3, storage_options=s3.options)
    reader = {**s3.options, **iam_keys(s3.endpoint, READ_ONLY)}
    stranger = {**s3.options, "key": "AKIAUNKNOWN", "secret": "wrong"}
    with enable_iam_authentication():
        assert ws.open_run(url, storage_options=reader).sizes["step"] == 3  # may read
        with pytest.raises(StorageAccessError, match=r"access to 's3://.*/new.zarr' was denied "
                           r"\(PermissionError: Access Denied\)\. Give credentials") as err:
            record_tiny(new, steps=3, every=1, storage_options=reader)
        assert isinstance(err.value, PermissionError) and err.value.exit_code == 2
        with pytest.raises(StorageAccessError, match=r"access to 's3://.*/run.zarr' was denied "
                           r"\(PermissionError: Forbidden\)"):
            ws.open_run(url, storage_options=stranger)
    assert not exists(new, s3.options)  # the denied recording left nothing behind
    np.testing.assert_array_equal(ws.open_run(url, storage_options=s3.options).step, [0, 3, 6])


def test_unreachable_endpoint_is_a_storage_error(s3):  # noqa: F811
    dead = {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9"},
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1}}
    with pytest.raises(StorageError, match=r"the storage of 's3://.*' failed "
                       r"\(EndpointConnectionError: Could not connect") as err:
        ws.open_run(s3.url("run.zarr"), storage_options=dead)
    assert err.value.exit_code == 1


def test_file_and_memory_urls_round_trip(tmp_path, local_run):
    want = ws.open_run(local_run)
    _same_run(ws.open_run(f"file://{local_run}"), want)
    url = "memory://store-s3-test/run.zarr"
    record_tiny(url, steps=STEPS, every=EVERY, overwrite=True)
    _same_run(ws.open_run(url), want)
    assert exists(url) and last_write(url) is not None and run_size_bytes(url) > 0

"""`weightscope analyze` and `info` on runs in S3 (a loopback moto server); bad input exits 2."""

from __future__ import annotations

import json

import pytest
from runs import record_tiny
from s3_server import configure, iam_keys, s3, s3_endpoint  # noqa: F401  (fixtures)
from typer.testing import CliRunner
from weightscope_cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def s3_run(s3_endpoint):  # noqa: F811
    with pytest.MonkeyPatch.context() as mp:
        bucket = configure(s3_endpoint, mp)
        url = bucket.url("run.zarr")
        record_tiny(url, steps=30, every=3, storage_options=bucket.options)
    return url


def _one_error_line(res, code: int, *parts: str) -> None:
    assert res.exit_code == code, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert all(p in lines[0] for p in parts), lines[0]
    assert "Traceback" not in res.output


def test_analyze_and_info_with_storage_options(s3, s3_run, tmp_path):  # noqa: F811
    endpoint = f"client_kwargs.endpoint_url={s3.endpoint}"
    res = runner.invoke(app, ["analyze", s3_run, "--storage-option", endpoint, "--out",
                              str(tmp_path), "--bins", "4"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["runs"] == ["run"] and summary["active_sets"]["step"][-1] == 30
    info = runner.invoke(app, ["info", s3_run, "--storage-option", endpoint])
    assert info.exit_code == 0, info.output
    assert "11 (every 3 steps; 0 .. 30)" in info.stdout and "KB" in info.stdout


def test_info_with_the_endpoint_from_the_environment(s3, s3_run, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    res = runner.invoke(app, ["info", s3_run])
    assert res.exit_code == 0, res.output
    assert f"run {s3_run}" in res.stdout and "yes" in res.stdout


def test_missing_bucket_denied_access_and_bad_option_exit_2(s3, s3_run, tmp_path):  # noqa: F811
    from moto.core.authorization import enable_iam_authentication  # heavy: not at collection
    endpoint = f"client_kwargs.endpoint_url={s3.endpoint}"
    res = runner.invoke(app, ["analyze", "s3://no-such-bucket-y/run.zarr", "--storage-option",
                              endpoint, "--out", str(tmp_path)])
    _one_error_line(res, 2, "no run at 's3://no-such-bucket-y/run.zarr'",
                    "the bucket 'no-such-bucket-y' does not exist")
    keys = iam_keys(s3.endpoint, ["s3:ListBucket"])  # may list, may not read objects
    creds = ["--storage-option", f"key={keys['key']}", "--storage-option",
             f"secret={keys['secret']}"]
    with enable_iam_authentication():
        for cmd in (["analyze", s3_run, "--out", str(tmp_path)], ["info", s3_run]):
            res = runner.invoke(app, [*cmd, "--storage-option", endpoint, *creds])
            _one_error_line(res, 2, f"access to '{s3_run}' was denied", "Give credentials")
    res = runner.invoke(app, ["info", s3_run, "--storage-option", "novalue"])
    _one_error_line(res, 2, "--storage-option must be KEY=VALUE", "got 'novalue'")
    assert not (tmp_path / "summary.json").exists()

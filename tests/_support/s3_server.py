"""A real S3-compatible server on loopback for tests: moto's server mode in a thread.

Test modules import the fixtures: ``from s3_server import s3, s3_endpoint  # noqa: F401``.
``s3_endpoint`` (one server per test module) is the server's URL; ``s3`` (per test) sets fake
credentials in the environment, clears fsspec's cached filesystems (they remember the
endpoint of the environment they were created in), and gives a fresh bucket
(:func:`configure` does the same for module-scoped fixtures).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent/aws-config",
       "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials"}
UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@dataclass(frozen=True)
class S3:
    """A bucket on the loopback server, and how to reach it."""

    endpoint: str
    bucket: str

    @property
    def options(self) -> dict[str, Any]:
        """``storage_options`` naming the endpoint (no environment needed)."""
        return {"client_kwargs": {"endpoint_url": self.endpoint}}

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{name}"

    def env(self) -> dict[str, str]:
        """Environment of a process that reaches the server through ``AWS_ENDPOINT_URL``."""
        return {**ENV, "AWS_ENDPOINT_URL": self.endpoint}


def _clear_fsspec_cache() -> None:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def configure(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    """Fake credentials in the environment, fresh fsspec filesystems, and a new bucket."""
    import s3fs

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    for key in UNSET:
        monkeypatch.delenv(key, raising=False)
    _clear_fsspec_cache()
    bucket = f"ws-{uuid.uuid4().hex[:12]}"  # moto's state is per process: fresh names
    s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir(bucket)
    return S3(endpoint, bucket)


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    yield configure(s3_endpoint, monkeypatch)
    _clear_fsspec_cache()


def iam_keys(endpoint: str, actions: list[str]) -> dict[str, str]:
    """``storage_options`` credentials of a new IAM user allowed only ``actions`` on S3.

    They are checked only inside :func:`moto.core.authorization.enable_iam_authentication`
    (moto accepts any credentials otherwise).
    """
    import json

    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint)
    user = f"user-{uuid.uuid4().hex[:10]}"
    iam.create_user(UserName=user)
    policy = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


READ_ONLY = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]

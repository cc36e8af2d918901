"""moto in server mode on 127.0.0.1, on a free port, as the embedded AWS."""

from __future__ import annotations

import logging
import urllib.request
from typing import Any

import boto3
from botocore.config import Config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class MotoServer:
    """A ``ThreadedMotoServer`` bound to ``127.0.0.1:0`` that really releases its port on ``stop``."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""
        self.port = 0

    def start(self) -> MotoServer:
        """Start serving; ``endpoint`` is then ``http://127.0.0.1:<port>``."""
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        host, self.port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{self.port}"
        # moto's state lives in this process, not in the server: start from nothing, so a second
        # runtime in one process (tests, a second demo) never sees the first one's buckets and tables.
        # One runtime at a time per process, then.
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=30
        ).close()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (moto's own ``stop`` leaves it open)."""
        inner = self._server._server
        if inner is None:
            return
        self._server.stop()
        inner.server_close()
        self._server._server = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def client(service: str, endpoint: str, **kwargs: Any) -> Any:
    """A boto3 client for the embedded service at ``endpoint`` with moto's fake credentials."""
    config = kwargs.pop("config", None) or Config()
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, max_pool_connections=20).merge(config)
    return boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    ).client(
        service,
        endpoint_url=endpoint,
        config=config,
        **kwargs,
    )


def resource(service: str, endpoint: str) -> Any:
    """A boto3 resource (``dynamodb.Table`` and the like) on the embedded service."""
    return boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    ).resource(service, endpoint_url=endpoint)

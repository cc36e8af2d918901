"""The embedded AWS's server: moto's answers, with less work per request."""

from __future__ import annotations

from unittest import mock

from gtaudit_local.aws import MotoServer, client
from moto import backends


def test_the_backend_of_a_host_is_looked_up_once_not_per_request() -> None:
    with MotoServer() as server:
        s3, ddb = client("s3", server.endpoint), client("dynamodb", server.endpoint)
        with mock.patch.object(backends, "list_of_moto_modules", wraps=backends.list_of_moto_modules) as listing:
            s3.create_bucket(Bucket="dispatch-test")
            for i in range(20):
                s3.put_object(Bucket="dispatch-test", Key=f"k{i}", Body=b"x")
                assert s3.get_object(Bucket="dispatch-test", Key=f"k{i}")["Body"].read() == b"x"
                ddb.list_tables()
        assert listing.call_count <= 2  # once per host (S3's, DynamoDB's), not 61 times

"""moto in server mode on 127.0.0.1, on a free port, as the embedded AWS.

``MotoServer(store=AwsStore(project))`` keeps S3 objects and DynamoDB items in the project folder
as they are written (:mod:`gtaudit_local.persist`): moto's WSGI app is served behind the
:class:`~gtaudit_local.persist.journal.Journal` middleware, by werkzeug's threaded server as
moto's own ``ThreadedMotoServer`` serves it.
"""

from __future__ import annotations

import functools
import logging
import threading
import urllib.request
from typing import Any

import boto3
from botocore.config import Config
from moto.core.common_models import BaseModel
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from gtaudit_local import moto_items
from gtaudit_local.moto_buffers import StreamedGets
from gtaudit_local.persist.journal import Journal
from gtaudit_local.persist.store import AwsStore

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class MotoServer:
    """moto's server on ``127.0.0.1:<free port>``, journaling into ``store`` if given.

    Parameters
    ----------
    store
        Keep S3 objects and DynamoDB items there before each write is answered. Restoring them
        is the caller's step, once the template's buckets and tables exist:
        ``store.restore(server)``.
    """

    account_id = ACCOUNT_ID
    region = REGION

    def __init__(self, store: AwsStore | None = None) -> None:
        self.store = store
        self.endpoint = ""
        self.port = 0
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MotoServer:
        """Start serving; ``endpoint`` is then ``http://127.0.0.1:<port>``."""
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        untrack_models()
        moto_items.install()
        dispatcher = _Dispatcher(create_backend_app)
        journal = dispatcher if self.store is None else Journal(dispatcher, self.store, self.account_id, self.region)
        app = StreamedGets(journal, dispatcher, self.account_id)
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=_serve, args=(self._server,), name="moto", daemon=True)
        self._thread.start()
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # moto's state lives in this process, not in the server: start from nothing, so a second
        # runtime in one process (tests, a second demo) never sees the first one's buckets and tables.
        # One runtime at a time per process, then.
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=30
        ).close()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (safe to call twice, never hangs).

        ``shutdown`` waits for the serving loop to acknowledge; a loop that already ended (its
        thread died) never would, so it is asked from a helper thread and waited for 10 s at most.
        """
        server, self._server = self._server, None
        if server is None:
            return
        thread = self._thread
        if thread is not None and thread.is_alive():
            stopper = threading.Thread(target=server.shutdown, name="moto-shutdown", daemon=True)
            stopper.start()
            stopper.join(timeout=10)
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves a host.

    moto finds out by listing its package's folder on disk (a ``stat`` per service) for every
    request: 13% of the embedded AWS's time in a 2,000-object demo, where that process is the
    busiest of the runtime (83% of a core while labeling). The answer depends on the host alone.
    """

    def __init__(self, create_app: Any) -> None:
        super().__init__(functools.partial(_quiet_app, create_app))
        self._backend_of: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        try:
            return self._backend_of[host]
        except KeyError:
            backend = self._backend_of[host] = super().get_backend_for_host(host)
            return backend


def _quiet_app(create_app: Any, backend: str) -> Any:
    """moto's Flask app for ``backend``, out of Flask's debug mode (moto turns it on).

    In debug mode Flask gives every request that is not a form upload a class of its own, made
    on the spot, whose method refers back to the request (``attach_enctype_error_multidict``):
    a reference cycle, so each request and the body it read (a mask, an overlay, a 0.8 GB
    consolidation request) stayed in memory until Python's cycle collector happened to run.
    Measured: eight 16 MB PUTs left moto 170 MB larger until a collection freed it.
    Unhandled errors still answer 500, with the traceback in moto's log.
    """
    app = create_app(backend)
    app.debug = False
    return app


def untrack_models() -> None:
    """Stop moto keeping every model object it ever made (for the dashboard we do not serve).

    moto's ``BaseModel.__new__`` appends each instance to its class's ``instances_tracked``, and
    only a reset empties those lists: every DynamoDB item a query deep-copies into its answer,
    every overwritten S3 key (with its body's file) and every SQS message stayed alive. At 192
    objects that was 5,276 dead items beside 1,883 live ones, most of moto's growth per object.
    Process-wide and idempotent; moto's reset still works (it disposes the buckets' own keys).
    """
    if getattr(BaseModel.__dict__.get("__new__"), "__func__", None) is not _untracked_new:
        BaseModel.__new__ = staticmethod(_untracked_new)  # type: ignore[method-assign]


def _untracked_new(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
    return super(BaseModel, cls).__new__(cls)


def _serve(server: BaseWSGIServer) -> None:
    """The serving loop; if it ever ends by an error, say so (the runtime then cannot answer)."""
    try:
        server.serve_forever()
    except BaseException:
        logging.getLogger(__name__).exception("moto's serving loop ended by an error")
        raise


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

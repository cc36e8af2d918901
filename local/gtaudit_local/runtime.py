"""The embedded runtime: moto + the GT emulator + the Lambda service + the event dispatcher, as one.

```
with LocalRuntime(project_root, work_dir=..., workteams=...) as rt:
    os.environ.update(rt.client_env())   # boto3 in this process now talks to the embedded services
    ...                                  # upload, CreateLabelingJob, rt.wait_idle()
```

Leaving the ``with`` block, by return, exception or Ctrl-C, stops the dispatcher, the emulator,
every Lambda worker process and moto, and closes their ports. Worker processes also die with the
runtime process if it is killed outright (they watch their parent), and leave on stdin EOF.

With ``project_dir`` the runtime keeps its data in that folder and picks up where it was on the
next start on the same folder, even after ``kill -9``: moto's S3 objects and DynamoDB items are
journaled as they are written (:mod:`gtaudit_local.persist`) and restored once the template's
buckets and tables exist; the Ground Truth emulator keeps its jobs in
``state/groundtruth.sqlite``. On such a restart the processing leases a killed orchestrator held
are released (every process that held one died with the runtime), then the emulator resumes its
unfinished jobs and announces its ended ones again, so a step a kill interrupted runs to its end
and a finished one is found ``processed`` and not repeated.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from botocore.exceptions import ClientError

from gtaudit_local.aws import ACCOUNT_ID, CREDENTIALS, REGION, client, resource
from gtaudit_local.dispatch import Dispatcher
from gtaudit_local.groundtruth.emulator import GroundTruthEmulator
from gtaudit_local.lambdas import LambdaApi, LambdaService
from gtaudit_local.moto_process import EmbeddedAws
from gtaudit_local.persist.records import RestoreReport
from gtaudit_local.persist.store import AwsStore
from gtaudit_local.template import Stack, load_template

log = logging.getLogger(__name__)


def find_project_root(start: Path | None = None) -> Path:
    """The folder holding ``template.yaml``: ``start`` or a parent, else the package's checkout."""
    candidates = [start or Path.cwd(), Path(__file__).resolve()]
    for base in candidates:
        for folder in (base, *base.parents):
            if (folder / "template.yaml").is_file() and (folder / "functions").is_dir():
                return folder
    raise FileNotFoundError("no template.yaml with a functions/ folder here or above; pass --project")


class LocalRuntime:
    """Start and stop the whole embedded runtime for one template.

    Parameters
    ----------
    project_root
        The folder with ``template.yaml``, ``functions/``, ``layers/``.
    work_dir
        Where function logs go (``<work_dir>/logs``).
    workteams
        ``{WorkteamArn: [Worker, ...]}`` for the GT emulator.
    parameters
        Template parameter overrides.
    stack_name
        Prefix of local physical names.
    project_dir
        Keep the embedded services' data in this folder and resume from it (see the module's
        docstring); ``None``: everything in memory, gone when the runtime stops.
    task_concurrency
        Data objects of one job offered at a time (a team needs as many as it has seats).
    """

    def __init__(
        self,
        project_root: Path,
        *,
        work_dir: Path,
        workteams: Mapping[str, Sequence[Any]] | None = None,
        parameters: Mapping[str, str] | None = None,
        stack_name: str = "gtaudit",
        lambda_concurrency: int = 2,
        crashes: Mapping[str, int] | None = None,
        project_dir: Path | None = None,
        task_concurrency: int = 2,
    ) -> None:
        self.project_root = Path(project_root)
        self.project_dir = None if project_dir is None else Path(project_dir)
        self.task_concurrency = task_concurrency
        self.work_dir = Path(work_dir)
        self.stack: Stack = load_template(self.project_root / "template.yaml", stack_name=stack_name,
                                          parameters=parameters)  # fmt: skip
        self.workteams = dict(workteams or {})
        self.lambda_concurrency = lambda_concurrency
        self.crashes = dict(crashes or {})  # {function logical ID: invocations that die}: fault drills
        self.store: AwsStore | None = None
        self.moto = EmbeddedAws(project_dir=self.project_dir, work_dir=self.work_dir)
        self.restored: RestoreReport | None = None  # what a start on a project folder found there
        self.resumed_jobs: list[str] = []  # the emulator's jobs that such a start runs again
        self.redriven = 0  # S3 events such a start announced again (gtaudit_local.redrive)
        self.gt: GroundTruthEmulator | None = None
        self.lambdas: LambdaService | None = None
        self.dispatcher: Dispatcher | None = None
        self.lambda_api: LambdaApi | None = None
        self.clients: dict[str, Any] = {}
        self._stack = contextlib.ExitStack()
        self._old_sigterm: Any = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalRuntime:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start moto, deploy the template's resources, start the Lambda service, GT and the dispatcher."""
        if threading.current_thread() is threading.main_thread():
            # `kill <pid>` must clean up like Ctrl-C does: turn SIGTERM into KeyboardInterrupt.
            self._old_sigterm = signal.signal(signal.SIGTERM, _sigterm)
        self.moto.start()
        self._stack.callback(self.moto.stop)
        if self.project_dir is not None:
            # The child journals into the project; this side only reads it (gtaudit_local.redrive).
            self.store = AwsStore(self.project_dir, readonly=True)
            self._stack.callback(self.store.close)
        for name in ("s3", "events", "sqs", "logs", "dynamodb", "sns"):
            self.clients[name] = client(name, self.moto.endpoint_for(name))
        self.deploy()
        if self.project_dir is not None:
            self.restored = self.moto.restore()
        self.gt = GroundTruthEmulator(
            s3=self.clients["s3"],
            events=self.clients["events"],
            logs=self.clients["logs"],
            lambdas=None,  # type: ignore[arg-type]  # set below: the functions need GT's URL first
            workteams=self.workteams,
            concurrency=self.task_concurrency,
            state_path=None if self.project_dir is None else self.project_dir / "state" / "groundtruth.sqlite",
        )
        self.gt.start()
        self._stack.callback(self.gt.stop)  # idempotent; also stopped before the Lambda service below
        endpoints = {**self.moto.endpoints, "SAGEMAKER": self.gt.endpoint}
        faults = {lid: (self.work_dir / "faults" / f"{lid}.crashes", n) for lid, n in self.crashes.items()}
        self.lambdas = LambdaService(
            self.stack.functions,
            endpoints,
            self.work_dir / "logs",
            concurrency=self.lambda_concurrency,
            crashes=faults,
        )
        self._stack.callback(self.lambdas.close)
        # Again after the Lambda service, so that on close jobs stop before the functions they call.
        self._stack.callback(self.gt.stop)
        self.lambda_api = LambdaApi(self.lambdas).start()
        self._stack.callback(self.lambda_api.stop)
        self.lambdas.endpoints["LAMBDA"] = self.lambda_api.endpoint  # workers start lazily, so all see it
        self.gt.lambdas = self.lambdas
        self.dispatcher = Dispatcher(
            self.stack, events=self.clients["events"], sqs=self.clients["sqs"], s3=self.clients["s3"],
            lambdas=self.lambdas,
        )  # fmt: skip
        self.dispatcher.setup()
        self.dispatcher.start()
        self._stack.callback(self.dispatcher.stop)
        if self.project_dir is not None:
            self.release_leases()
            self.resumed_jobs = self.gt.resume()
            self.redriven = self.redrive()

    def close(self) -> None:
        """Stop everything in reverse order of start; safe to call twice."""
        try:
            self._stack.close()
        finally:
            if self._old_sigterm is not None:
                with contextlib.suppress(ValueError):
                    signal.signal(signal.SIGTERM, self._old_sigterm)
                self._old_sigterm = None

    # ------------------------------------------------------------------ resources
    def deploy(self) -> None:
        """Create the template's buckets, tables, queues and log groups on moto."""
        s3, ddb, sqs, logs = (self.clients[n] for n in ("s3", "dynamodb", "sqs", "logs"))
        for lid, res in self.stack.resources.items():
            type_ = res.get("Type")
            name = self.stack.physical[lid]
            props = res.get("Properties") or {}
            if type_ == "AWS::S3::Bucket":
                s3.create_bucket(Bucket=name)
                if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
                    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
                if (props.get("NotificationConfiguration") or {}).get("EventBridgeConfiguration"):
                    s3.put_bucket_notification_configuration(
                        Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
                    )
            elif type_ == "AWS::DynamoDB::Table":
                self.create_table(ddb, name, props)
            elif type_ == "AWS::SQS::Queue":
                sqs.create_queue(QueueName=name)
            elif type_ == "AWS::SNS::Topic":
                self.clients["sns"].create_topic(Name=name)
            elif type_ == "AWS::Logs::LogGroup":
                group = props.get("LogGroupName")
                if isinstance(group, str):
                    with contextlib.suppress(ClientError):
                        logs.create_log_group(logGroupName=group)

    @staticmethod
    def create_table(ddb: Any, name: str, props: Mapping[str, Any]) -> None:
        """Create a table as the template's ``AWS::DynamoDB::Table`` ``props`` define it."""
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if args["BillingMode"] == "PROVISIONED":
            args["ProvisionedThroughput"] = props.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
            if props.get(key):
                args[key] = props[key]
        ddb.create_table(**args)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            with contextlib.suppress(ClientError):
                ddb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
                )

    def release_leases(self) -> int:
        """Release the processing leases of the pipeline table's unfinished jobs; return how many.

        Called only as the runtime starts: every orchestrator that could hold a lease ran in the
        previous runtime's processes, which are gone, and a lease left behind would make the
        re-announced job event find the step ``busy`` for 16 minutes.
        """
        tables = [self.stack.physical["PipelineTable"]] if "PipelineTable" in self.stack.physical else []
        ddb, released = self.clients["dynamodb"], 0
        for table in tables:
            pages = ddb.get_paginator("scan").paginate(
                TableName=table,
                FilterExpression="attribute_exists(lease_owner)",
                ProjectionExpression="pk, sk",
            )
            for page in pages:
                for key in page.get("Items", []):
                    ddb.update_item(TableName=table, Key=key, UpdateExpression="REMOVE lease_owner, lease_until")
                    released += 1
        return released

    def redrive(self) -> int:
        """Announce again the worker-response files the trace table has no record of; return how many."""
        from gtaudit_local.redrive import announce, s3_created_entries, unrecorded_responses

        if self.store is None or "TraceTable" not in self.stack.physical:
            return 0
        missing = unrecorded_responses(self.store, self.bucket, self.stack.physical["TraceTable"])
        return announce(self.clients["events"], s3_created_entries(missing, ACCOUNT_ID))

    # ------------------------------------------------------------------ helpers
    def client_env(self) -> dict[str, str]:
        """The standard settings that point boto3 in this process at the embedded services."""
        assert self.gt is not None
        return {
            **self.moto.environ(),
            "AWS_ENDPOINT_URL_SAGEMAKER": self.gt.endpoint,
            **({"AWS_ENDPOINT_URL_LAMBDA": self.lambda_api.endpoint} if self.lambda_api else {}),
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **CREDENTIALS,
        }

    def client(self, service: str) -> Any:
        """A boto3 client on the embedded service (SageMaker goes to the GT emulator)."""
        assert self.gt is not None
        endpoint = {"sagemaker": self.gt.endpoint, "lambda": self.lambda_api.endpoint if self.lambda_api else ""}
        return client(service, endpoint.get(service) or self.moto.endpoint_for(service))

    def client_resource(self, service: str) -> Any:
        """A boto3 resource on the embedded AWS (e.g. ``client_resource("dynamodb").Table(name)``)."""
        return resource(service, self.moto.endpoint_for(service))

    @property
    def bucket(self) -> str:
        """The data bucket (the template's ``DataBucket``, else its first bucket)."""
        buckets = [lid for lid, r in self.stack.resources.items() if r.get("Type") == "AWS::S3::Bucket"]
        lid = "DataBucket" if "DataBucket" in buckets else buckets[0]
        return self.stack.physical[lid]

    def wait_idle(
        self, timeout: float = 300.0, *, settle: float = 0.4, on_tick: Callable[[], None] | None = None
    ) -> bool:
        """Wait until no job runs, no event waits and no delivery is in flight; ``False`` on timeout."""
        assert self.gt is not None and self.dispatcher is not None
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if on_tick is not None:
                on_tick()
            lambdas_busy = self.lambda_api is not None and self.lambda_api.pending > 0
            quiet = not self.gt.busy and not lambdas_busy and self.dispatcher.idle_for() > 0
            now = time.monotonic()
            # Quiet must hold for `settle` seconds on end: an event published just now sits in its
            # queue until the dispatcher's next poll (every 50 ms), which then makes it busy again.
            quiet_since = (quiet_since or now) if quiet else None
            if quiet_since is not None and now - quiet_since >= settle:
                return True
            time.sleep(0.05)
        return False


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt

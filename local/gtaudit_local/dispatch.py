"""Deliver events to functions the way the template wires them: EventBridge rules on moto.

Each rule of the template (a function's ``EventBridgeRule``/``CloudWatchEvent`` event, or an
``AWS::Events::Rule`` targeting a function) becomes a real rule on moto's EventBridge with the
template's own pattern, targeting an SQS queue. SAM ``S3`` events become a rule on S3's
EventBridge notifications (``Object Created``/``Object Deleted``), and the dispatcher hands the
function S3's notification shape (``Records``). A dispatcher thread drains the queues into the
local Lambda service. So which function runs on which event is decided by the template's patterns
as matched by EventBridge, never by a hand-written call chain.

EventBridge invokes a Lambda target asynchronously, so a function that fails (raises, times out,
or its process dies) is retried as Lambda retries an asynchronous invocation: the function's
``EventInvokeConfig.MaximumRetryAttempts`` times (2 by default), while the event is younger than
``MaximumEventAgeInSeconds``, each on a fresh execution environment when the last one died; then
the event goes to the function's ``DeadLetterQueue`` (an SQS queue on moto). Lambda waits about a
minute, then two, between attempts; locally the waits are ``RETRY_DELAYS`` seconds, since the
local runtime has no throttling to ride out. Every attempt is recorded in ``deliveries``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from botocore.exceptions import ClientError

from gtaudit_local.aws import ACCOUNT_ID, REGION
from gtaudit_local.lambdas import LambdaInvokeError, LambdaService
from gtaudit_local.template import EventRule, S3Trigger, Stack

log = logging.getLogger(__name__)
RETRY_DELAYS = (0.5, 1.0)  # seconds before the 2nd and 3rd attempt (Lambda: about 1 and 2 minutes)


@dataclass
class Delivery:
    """One event delivered to one function, and how it went."""

    rule: str
    function: str
    detail_type: str
    ok: bool
    error: str | None = None
    seconds: float = 0.0
    attempt: int = 1
    gave_up: bool = False  # the last attempt: Lambda retries no more (the event is dead-lettered if it can be)
    dead_lettered: bool = False


@dataclass(frozen=True)
class _Route:
    rule_name: str
    queue_url: str
    function: str
    input_path: str | None = None
    s3: S3Trigger | None = None
    constant: str | None = None


def _apply_input_path(event: Any, path: str | None) -> Any:
    if not path or path == "$":
        return event
    cur = event
    for part in path.removeprefix("$.").split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _s3_pattern(trigger: S3Trigger) -> dict[str, Any]:
    kinds = []
    for ev in trigger.events:
        if ev.startswith("s3:ObjectCreated"):
            kinds.append("Object Created")
        elif ev.startswith("s3:ObjectRemoved"):
            kinds.append("Object Deleted")
    detail: dict[str, Any] = {"bucket": {"name": [trigger.bucket]}}
    if trigger.prefix:
        detail["object"] = {"key": [{"prefix": trigger.prefix}]}
    return {"source": ["aws.s3"], "detail-type": sorted(set(kinds)) or ["Object Created"], "detail": detail}


def _s3_notification(event: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge S3 event in the shape an S3 notification gives a function (``Records``)."""
    detail = event.get("detail") or {}
    obj = detail.get("object") or {}
    bucket = (detail.get("bucket") or {}).get("name", "")
    created = event.get("detail-type") == "Object Created"
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": event.get("region", REGION),
                "eventTime": event.get("time"),
                "eventName": "ObjectCreated:Put" if created else "ObjectRemoved:Delete",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(str(obj.get("key", "")), safe="/"),
                        "size": obj.get("size", 0),
                        "eTag": obj.get("etag", ""),
                        "sequencer": obj.get("sequencer", ""),
                    },
                },
            }
        ]
    }


class Dispatcher:
    """Rules on moto's EventBridge -> SQS queues -> the local Lambda service."""

    def __init__(self, stack: Stack, *, events: Any, sqs: Any, s3: Any, lambdas: LambdaService) -> None:
        self.stack = stack
        self.events = events
        self.sqs = sqs
        self.s3 = s3
        self.lambdas = lambdas
        self.routes: list[_Route] = []
        self.deliveries: list[Delivery] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dispatch")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._quiet_since = time.monotonic()

    def setup(self) -> None:
        """Create the template's rules on moto, each targeting its own queue."""
        for rule in self.stack.rules:
            self._route(rule.name, rule.function, rule.pattern, rule.bus, rule.input_path, None, rule.input)
        for trigger in self.stack.s3_triggers:
            with contextlib.suppress(ClientError):
                self.s3.put_bucket_notification_configuration(
                    Bucket=trigger.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
                )
            self._route(trigger.name, trigger.function, _s3_pattern(trigger), "default", None, trigger)

    def _route(
        self,
        name: str,
        function: str,
        pattern: dict[str, Any],
        bus: str,
        input_path: str | None,
        s3: S3Trigger | None,
        constant: str | None = None,
    ) -> None:
        rule_name = f"local-{name}"[:64]
        if bus != "default":
            with contextlib.suppress(ClientError):
                self.events.create_event_bus(Name=bus)
        self.events.put_rule(Name=rule_name, EventPattern=json.dumps(pattern), State="ENABLED", EventBusName=bus)
        queue_name = f"gtaudit-local-{name}"[:80]
        url = self.sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}"
        self.events.put_targets(Rule=rule_name, EventBusName=bus, Targets=[{"Id": "local-dispatch", "Arn": arn}])
        self.routes.append(_Route(rule_name, url, function, input_path, s3, constant))

    def start(self) -> Dispatcher:
        """Start draining the queues in a background thread."""
        self._thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop draining; wait for deliveries in flight."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def idle_for(self) -> float:
        """Seconds since the last message was seen or the last delivery finished (0 while busy)."""
        with self._lock:
            if self._in_flight:
                return 0.0
            return time.monotonic() - self._quiet_since

    def _loop(self) -> None:
        while not self._stop.is_set():
            got = 0
            for route in self.routes:
                try:
                    msgs = self.sqs.receive_message(
                        QueueUrl=route.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                    ).get("Messages", [])
                except Exception as exc:  # moto stopped under us: end quietly
                    if self._stop.is_set():
                        return
                    log.warning("dispatcher: receive failed: %s", exc)
                    msgs = []
                for msg in msgs:
                    got += 1
                    with self._lock:
                        self._in_flight += 1
                        self._quiet_since = time.monotonic()
                    with contextlib.suppress(ClientError):
                        self.sqs.delete_message(QueueUrl=route.queue_url, ReceiptHandle=msg["ReceiptHandle"])
                    fut: Future[None] = self._pool.submit(self._deliver, route, msg["Body"])
                    fut.add_done_callback(self._done)
            if not got:
                self._stop.wait(0.05)

    def _done(self, _fut: Future[None]) -> None:
        with self._lock:
            self._in_flight -= 1
            self._quiet_since = time.monotonic()

    def _deliver(self, route: _Route, body: str) -> None:
        event = json.loads(body)
        # EventBridge's envelope always names the account; moto's leaves it out.
        event.setdefault("account", ACCOUNT_ID)
        detail_type = str(event.get("detail-type", ""))
        if route.s3 is not None:
            key = str(((event.get("detail") or {}).get("object") or {}).get("key", ""))
            if route.s3.suffix and not key.endswith(route.s3.suffix):
                return
            payload = _s3_notification(event)
        elif route.constant is not None:
            payload = json.loads(route.constant)
        else:
            payload = _apply_input_path(event, route.input_path)
        spec = self.lambdas.spec(route.function)
        received = time.monotonic()
        request_id = str(uuid.uuid4())  # one per event: Lambda's retries of it keep its request ID
        for attempt in range(1, spec.async_retries + 2):
            started = time.perf_counter()
            try:
                self.lambdas.invoke(route.function, payload, request_id=request_id)
                delivery = Delivery(route.rule_name, route.function, detail_type, True, attempt=attempt)
            except LambdaInvokeError as exc:
                log.warning("dispatcher: %s failed on %s (attempt %d): %s", route.function, detail_type, attempt, exc)
                delivery = Delivery(
                    route.rule_name, route.function, detail_type, False, str(exc)[:2000], attempt=attempt
                )
            except Exception as exc:  # the service is shutting down: no retry can help
                delivery = Delivery(
                    route.rule_name, route.function, detail_type, False, f"{type(exc).__name__}: {exc}", attempt=attempt
                )
                delivery.gave_up = True
                self._record(delivery, started)
                return
            self._record(delivery, started)
            if delivery.ok:
                return
            delay = RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)]
            too_old = time.monotonic() - received + delay > spec.async_max_age
            if attempt > spec.async_retries or too_old or self._stop.wait(delay):
                break
        delivery.gave_up = True
        self._dead_letter(spec.dead_letter_arn, payload, delivery)

    def _record(self, delivery: Delivery, started: float) -> None:
        delivery.seconds = time.perf_counter() - started
        with self._lock:
            self.deliveries.append(delivery)

    def _dead_letter(self, arn: str | None, payload: Any, delivery: Delivery) -> None:
        """Send an event Lambda gave up on to the function's dead-letter queue, as Lambda does."""
        if not arn or not arn.startswith("arn:aws:sqs:"):
            return
        name = arn.rsplit(":", 1)[1]
        try:
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = {
                "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                "ErrorMessage": {"DataType": "String", "StringValue": (delivery.error or "")[:250] or "failed"},
            }
            self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(payload), MessageAttributes=attributes)
            delivery.dead_lettered = True
        except ClientError as exc:
            log.warning("dispatcher: could not dead-letter an event of %s: %s", delivery.function, exc)


__all__ = ["Delivery", "Dispatcher", "EventRule"]

"""Labeled work is never discarded: redo a consolidation from the worker-response files.

Ground Truth writes each worker's answer to ``<job>/annotations/worker-response/iteration-N/<index>/``
before it calls the consolidation Lambda (reference section 4). When that call fails for good (the
Lambda crashed, timed out or raised on every retry), Ground Truth lists the object with a
``failure-reason``, but the answers are still there. The labeling step collects such objects, and
``Reconsolidation.run`` builds a consolidation request from their answers, exactly as Ground Truth
builds one, and invokes ``labeling_post`` itself (``RequestResponse``). What comes back is read as a
``ConsolidatedLabel`` like any other: a consolidated object goes on to the audit, one whose answers
are unusable fails with labeling_post's reason.

The request is written under a fixed key (``.../consolidation-request/iteration-1/redo.json``), and
labeling_post names its masks after the request (``<name>_redo.png``), so a retried step redoes the
same work into the same keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from gtaudit import layout
from gtaudit.manifest import BadLine, object_id_of
from gtaudit.models.stages import ConsolidatedLabel
from gtaudit.pipeline import manifests as mf
from gtaudit.pipeline.context import Context
from gtaudit.pipeline.state import Job
from gtaudit.s3io import get_json, put_json
from gtaudit.s3uri import S3Uri, parse_s3_uri

log = logging.getLogger(__name__)
REDO_REQUEST = "redo"  # .../consolidation-request/iteration-1/redo.json; labeling_post names masks <name>_redo.png


@dataclass
class Reconsolidation:
    """The labeled objects of one job whose consolidation failed, and their redo."""

    ctx: Context
    job: Job
    job_root: S3Uri
    attribute: str
    job_arn: str
    candidates: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # oid -> (original, GT's reason)

    def add(self, object_id: str, original: str | None, reason: str) -> None:
        """Remember an object that failed labeling; ``run`` redoes it if workers answered it."""
        self.candidates[object_id] = (original, reason)

    def run(self) -> dict[str, ConsolidatedLabel | str]:
        """``{object id: its redone label, or why it still failed}`` for every candidate."""
        if not self.candidates:
            return {}
        indices = self._indices()
        answers = self._answers({indices[o] for o in self.candidates if o in indices})
        items = []
        for oid, (original, _) in self.candidates.items():
            index = indices.get(oid)
            if index is not None and answers.get(index):
                data_object = {"s3Uri": original} if original else {}
                items.append({"datasetObjectId": index, "dataObject": data_object, "annotations": answers[index]})
        labels = self._consolidate(items) if items else {}
        out: dict[str, ConsolidatedLabel | str] = {}
        for oid, (_, reason) in self.candidates.items():
            index = indices.get(oid)
            got = labels.get(index) if index is not None else None
            out[oid] = got if got is not None else reason
        return out

    def _indices(self) -> dict[str, str]:
        """Object ID -> datasetObjectId (its line number in the job's input manifest, as Ground Truth numbers them)."""
        out = {}
        for n, line in enumerate(mf.read_lines(self.ctx.clients.s3, parse_s3_uri(self.job.manifest))):
            if not isinstance(line, BadLine) and (oid := object_id_of(line)) in self.candidates:
                out[oid] = str(n)
        return out

    def _answers(self, indices: set[str]) -> dict[str, list[dict[str, Any]]]:
        """The annotations of each object, from its worker-response files (one listing for the job)."""
        out: dict[str, list[dict[str, Any]]] = {}
        prefix = self.job_root.join("annotations", "worker-response").key + "/"
        s3 = self.ctx.clients.s3
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.job_root.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                parts = obj["Key"][len(prefix) :].split("/")
                if len(parts) != 3 or parts[1] not in indices or not parts[2].endswith(".json"):
                    continue
                doc = get_json(s3, S3Uri(self.job_root.bucket, obj["Key"]))
                for answer in _answers_of(doc):
                    out.setdefault(parts[1], []).append(answer)
        return out

    def _consolidate(self, items: list[dict[str, Any]]) -> dict[str, ConsolidatedLabel]:
        """Write the request, invoke labeling_post, and read its answer."""
        cfg, s3 = self.ctx.config, self.ctx.clients.s3
        request = layout.consolidation_request(self.job_root, 1, REDO_REQUEST)
        put_json(s3, request, items)
        event = {
            "version": "2018-10-16",
            "labelingJobArn": self.job_arn,
            "labelCategories": self._categories(),
            "labelAttributeName": self.attribute,
            "payload": {"s3Uri": str(request)},
            "outputConfig": str(self.job_root.join("annotations")),
        }
        try:
            resp = self.ctx.clients.lambda_client.invoke(
                FunctionName=cfg.labeling_post_arn, InvocationType="RequestResponse", Payload=json.dumps(event)
            )
            body = json.loads(resp["Payload"].read())
        except (ClientError, BotoCoreError, ValueError, KeyError, AttributeError) as exc:
            log.warning("redo of %d consolidation(s) of %s failed: %s", len(items), self.job.name, exc)
            return {}
        if resp.get("FunctionError") or not isinstance(body, list):
            log.warning("labeling_post refused the redo of %s: %s", self.job.name, str(body)[:300])
            return {}
        out = {}
        for entry in body:
            content = ((entry or {}).get("consolidatedAnnotation") or {}).get("content") or {}
            try:
                out[str(entry["datasetObjectId"])] = ConsolidatedLabel.model_validate(content[self.attribute])
            except (KeyError, TypeError, ValidationError):
                continue
        return out

    def _categories(self) -> list[str] | None:
        run = self.ctx.state.get_run(self.job.run_id) or {}
        uri = run.get("label_category_uri")
        if not uri:
            return None
        try:
            labels = get_json(self.ctx.clients.s3, parse_s3_uri(uri)).get("labels") or []
        except (ClientError, ValueError, AttributeError):
            return None
        return [str(x.get("label")) for x in labels if isinstance(x, dict) and x.get("label")]


def _answers_of(doc: Any) -> Iterable[dict[str, Any]]:
    """A worker-response file's answers as consolidation-request annotations (reference section 6)."""
    for answer in (doc.get("answers") if isinstance(doc, dict) else None) or []:
        if isinstance(answer, dict) and answer.get("workerId") and "answerContent" in answer:
            content = json.dumps(answer["answerContent"], ensure_ascii=False)
            yield {"workerId": answer["workerId"], "annotationData": {"content": content}}

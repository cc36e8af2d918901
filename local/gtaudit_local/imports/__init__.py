"""Read labels that already exist, to start a run at the audit stage (検品 of a delivery).

Three kinds of source, told apart by :func:`detect_kind`:

============ ============================================================ ==============================
kind         what ``--from`` names                                        reader
============ ============================================================ ==============================
groundtruth  a Ground Truth output manifest of the built-in semantic-      ``imports.groundtruth``
             segmentation type (``.manifest``/``.jsonl``, local or s3://)
coco         a COCO instances file (``.json`` with ``images``,             ``imports.coco``
             ``annotations``, ``categories``; local or s3://), or a folder
             holding one as ``annotations.json`` (``gtaudit export``'s)
masks        a folder of index or colour masks beside their images (VOC,   ``imports.folders``
             the ``masks`` export layout, ``images/`` + ``masks/``)
============ ============================================================ ==============================

Each reader yields, per object and in order, a ``gtaudit.pipeline.start_audit.ImportedMask``
(its image and its mask as the run's class indices, matched by class name) or a ``Refusal`` with
the reason (``imports.classes`` has the rules for names, values and colours). Readers are lazy:
one mask is decoded at a time, so an import of any size holds one object in memory. The size and
orientation of each mask against its image are checked where the image is read, by
``start_audit``, which then writes the run: the same code on AWS and on the local runtime.

The readers live in the local wing because COCO needs pycocotools, which the Lambda layer does
not ship; ``gtaudit start`` drives either with the same boto3 calls.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from gtaudit.labels import LabelSet
from gtaudit.pipeline.config import PipelineConfig
from gtaudit.pipeline.start_audit import AuditRunStarted, ImportedMask, Refusal, run_label_set, start_audit_run

from gtaudit_local.imports.coco import load_coco, read_coco
from gtaudit_local.imports.folders import read_folder
from gtaudit_local.imports.groundtruth import read_manifest
from gtaudit_local.imports.sources import Place, SourceError

__all__ = ["SOURCE_KINDS", "SourceError", "detect_kind", "read_source", "start_from_source"]

Kind = Literal["groundtruth", "coco", "masks"]
SOURCE_KINDS: tuple[Kind, ...] = ("groundtruth", "coco", "masks")
COCO_IN_FOLDER = "annotations.json"  # what gtaudit export --format coco writes


def detect_kind(source: str) -> Kind:
    """The kind of source ``--from`` names, from its form (a folder, a file's extension).

    Raises
    ------
    SourceError
        A local path that does not exist, or an extension none of the readers takes.
    """
    place = Place(source)
    if not place.in_s3 and not Path(source).exists():
        raise SourceError(f"--from not found: {source}")
    if place.is_dir():
        return "coco" if (Path(source) / COCO_IN_FOLDER).is_file() else "masks"
    suffix = Path(place.name).suffix.lower()
    if suffix in (".manifest", ".jsonl"):
        return "groundtruth"
    if suffix == ".json":
        return "coco"
    raise SourceError(f"--from {source}: not a folder, a .manifest/.jsonl manifest or a .json COCO file")


def read_source(
    source: str, *, labels: LabelSet, s3: Any, images: str | None = None, attribute: str | None = None
) -> tuple[Kind, Iterator[ImportedMask | Refusal]]:
    """The kind of ``source`` and its objects, read lazily (see the module docstring).

    Parameters
    ----------
    source
        What ``--from`` names: a local path or an ``s3://`` URI.
    labels
        The run's label set (``start_audit.run_label_set``): classes are matched to it by name.
    s3
        A boto3 S3 client, for sources and images in S3.
    images
        Where the images are (a folder or an ``s3://`` prefix), for a COCO file's ``file_name``,
        a manifest's relative image paths and a masks folder.
    attribute
        A Ground Truth manifest's label attribute, if it must be named.

    Raises
    ------
    SourceError
        The source cannot be read at all; nothing is started.
    """
    kind = detect_kind(source)
    given = Place(images) if images else None
    if kind == "groundtruth":
        return kind, read_manifest(Place(source), labels=labels, s3=s3, images=given, attribute=attribute)
    if kind == "coco":
        place = Place(source)
        if place.is_dir():
            place = place.resolve(COCO_IN_FOLDER)
        doc = load_coco(place, s3)
        folder = place.parent
        default = folder.resolve("images") if folder.resolve("images").is_dir() else folder
        return kind, read_coco(doc, labels=labels, images=given or default, what=place.name)
    if given is not None and given.in_s3:
        raise SourceError("a masks folder is local: --images must be a local folder too")
    return kind, read_folder(Path(source), labels=labels, images=Path(images) if images else None)


def start_from_source(
    source: str,
    *,
    s3: Any,
    sagemaker: Any,
    table: Any,
    config: PipelineConfig,
    images: str | None = None,
    attribute: str | None = None,
    labels: Sequence[str] | None = None,
    run_id: str | None = None,
    lambda_client: Any = None,
) -> AuditRunStarted:
    """Read ``source`` and start a run at the audit stage from it (``gtaudit start --from``, ``gtaudit demo --from``).

    Raises
    ------
    SourceError
        The source cannot be read at all.
    ValueError
        As ``start_audit_run``.
    """
    label_set = run_label_set(config, labels)
    kind, objects = read_source(source, labels=label_set, s3=s3, images=images, attribute=attribute)
    return start_audit_run(
        s3=s3,
        sagemaker=sagemaker,
        table=table,
        config=config,
        objects=objects,
        source=f"{kind}:{source}",
        labels=label_set.names,
        run_id=run_id,
        lambda_client=lambda_client,
    )

"""Read a Ground Truth output manifest of the built-in semantic-segmentation task type.

Each line is one object (reference section 5)::

    {"source-ref": "s3://bucket/images/0001.jpg",
     "my-job-ref": "s3://bucket/out/my-job/annotations/consolidated-annotation/output/0_2026-11-24T10:00:00.png",
     "my-job-ref-metadata": {"internal-color-map": {"0": {"class-name": "BACKGROUND", "hex-color": "#ffffff"},
                                                    "1": {"class-name": "house", "hex-color": "#2ca02c"}},
                             "type": "groundtruth/semantic-segmentation", "job-name": "labeling-job/my-job", ...}}

The label attribute is the key ending in ``-ref`` (not ``source-ref``) whose ``-ref-metadata``
holds an ``internal-color-map``, found on each line, or the one ``--attribute`` names (a chained
job's lines carry its parent's label too: then name it). The mask is read by colour through the
colour map (a grey index mask by its values). Our own accepted manifests have this form too.

References that are not ``s3://`` URIs are local paths: an image's relative to where the images
are (``--images``, default the manifest's folder), a mask's relative to the manifest's folder.

A line that is not JSON, has no ``source-ref``, no mask (an object Ground Truth gave up on carries
``failure-reason`` instead), a malformed colour map or a mask that cannot be read or mapped is
refused with the reason; the other lines go on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gtaudit.labels import LabelSet
from gtaudit.manifest import BadLine, iter_manifest
from gtaudit.names import unique_stems
from gtaudit.pipeline.start_audit import IMPORT_LABELER, ImportedMask, Refusal

from gtaudit_local.imports.classes import ClassMap
from gtaudit_local.imports.sources import Place, Refused, open_mask, read_source_file

SOURCE_REF = "source-ref"
COLOR_MAP = "internal-color-map"


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    data: dict[str, Any] | None  # None: not a JSON object (``problem`` says why)
    image: Place | None
    problem: str | None = None


def label_attribute(line: Mapping[str, Any], wanted: str | None) -> str:
    """The key of the line's segmentation mask (``my-job-ref``).

    Raises
    ------
    Refused
        No such label (with Ground Truth's ``failure-reason`` when it gave one), or several.
    """
    if wanted:
        key = wanted if wanted.endswith("-ref") else f"{wanted}-ref"
        meta = line.get(f"{key}-metadata")
        if not isinstance(line.get(key), str):
            why = meta.get("failure-reason") if isinstance(meta, Mapping) else None
            raise Refused(f"no mask: the line has no {key!r}" + (f" (Ground Truth: {why})" if why else ""))
        return key
    metas = {k.removesuffix("-metadata"): v for k, v in line.items() if k.endswith("-ref-metadata")}
    found = [k for k, m in metas.items() if k != SOURCE_REF and isinstance(m, Mapping) and COLOR_MAP in m]
    if len(found) > 1:
        raise Refused(f"several segmentation labels ({', '.join(sorted(found))}): choose one with --attribute")
    if found and isinstance(line.get(found[0]), str):
        return found[0]
    gave_up = [str(m["failure-reason"]) for m in metas.values() if isinstance(m, Mapping) and m.get("failure-reason")]
    if gave_up:
        raise Refused(f"no mask: Ground Truth's failure-reason: {gave_up[0]}")
    raise Refused(f"no mask: no '<attribute>-ref' with '<attribute>-ref-metadata.{COLOR_MAP}' on the line")


def color_map_classes(color_map: Any) -> list[tuple[int, str, str | None]]:
    """``(index, class name, colour)`` of an ``internal-color-map``; raise ``Refused`` if it is malformed."""
    if not isinstance(color_map, Mapping) or not color_map:
        raise Refused(f"the {COLOR_MAP} is missing or empty")
    try:
        return [(int(k), str(v["class-name"]), str(v["hex-color"])) for k, v in color_map.items()]
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused(f"malformed {COLOR_MAP}: {exc!r}") from exc


def read_manifest(
    manifest: Place, *, labels: LabelSet, s3: Any, images: Place | None = None, attribute: str | None = None
) -> Iterator[ImportedMask | Refusal]:
    """Each line of a Ground Truth output manifest as an imported mask or a refusal, in order.

    Raises
    ------
    SourceError
        The manifest cannot be read.
    """
    body = read_source_file(manifest, s3, "manifest")
    folder, base = manifest.parent, images or manifest.parent
    lines: list[_Line] = []
    for item in iter_manifest(body.splitlines()):
        if isinstance(item, BadLine):
            lines.append(_Line(item.number, None, None, f"line {item.number}: {item.reason}"))
            continue
        ref = item.data.get(SOURCE_REF)
        if not isinstance(ref, str) or not ref:
            lines.append(_Line(item.number, None, None, f"line {item.number} has no {SOURCE_REF}"))
            continue
        lines.append(_Line(item.number, item.data, base.resolve(ref)))
    # Names are the images' stems, told apart where they collide: all of them are needed first.
    named = [(str(line.image.ref), line.image.name) for line in lines if line.image is not None]
    names = iter(unique_stems(named))
    for line in lines:
        if line.data is None or line.image is None:
            yield Refusal(f"line-{line.number}", line.problem or "unreadable line")
            continue
        name = next(names)
        try:
            yield _imported(line.data, name, line.image, folder, labels, s3, attribute)
        except Refused as exc:
            yield Refusal(name, f"line {line.number}: {exc}", line.image.ref)


def _imported(
    data: dict[str, Any], name: str, image: Place, folder: Place, labels: LabelSet, s3: Any, attribute: str | None
) -> ImportedMask:
    key = label_attribute(data, attribute)
    meta = data.get(f"{key}-metadata")
    classes = ClassMap(
        color_map_classes(meta.get(COLOR_MAP) if isinstance(meta, Mapping) else None), labels, "the colour map"
    )
    mask = folder.resolve(str(data[key]))
    decoded = classes.decode(open_mask(mask.read(s3, "mask"), mask.ref), palette="colour")
    job = meta.get("job-name") if isinstance(meta, Mapping) else None
    return ImportedMask(name, image.ref, decoded, (str(job),) if job else (IMPORT_LABELER,))

"""Make sure every consolidated mask of a labeling job has its overlay before the audit job starts.

The overlay Lambda normally renders each overlay as its mask is written. At job completion the
orchestrator lists ``<job>/overlays/`` once (1,000 keys a call, kept as a bitmap of dataset
object indices, so 100,000 objects cost 12.5 KB) and collects the masks without an overlay:

* up to ``inline_limit`` of them are rendered right here (``gtaudit.overlay.jobs.render_mask_overlays``);
* more are sent to the overlay Lambda asynchronously in chunks of ``chunk`` masks
  (``gtaudit.overlay.fanout.fan_out``), and the orchestrator re-lists until they exist or its time
  is nearly up; then it raises ``StepPendingError`` and the retry of the same event resumes
  (rendering is idempotent).

An overlay that can never be rendered (the original is gone, truncated or unreadable, or the mask
does not fit it) leaves a ``<id>.failed.json`` marker with its reason (``gtaudit.overlay.jobs``); the
ensurer reports those objects in ``failures`` so the step lists them as failed and audits the rest,
instead of waiting for them forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from gtaudit import layout
from gtaudit.exceptions import S3ObjectUnavailableError, StepPendingError
from gtaudit.overlay.fanout import fan_out, iter_overlay_entries
from gtaudit.s3io import get_json, get_metadata
from gtaudit.s3uri import S3Uri

log = logging.getLogger(__name__)


def inline_renderer(s3: Any) -> Callable[[list[str]], None]:
    """A ``render_inline`` for ``OverlayEnsurer`` that renders the masks' overlays in this process."""

    def render(masks: list[str]) -> None:
        # Imported here: Pillow and numpy cost the orchestrator's cold start, and most job events
        # find every overlay already rendered by the overlay Lambda.
        from gtaudit.overlay.jobs import render_mask_overlays, settings_from_env

        report = render_mask_overlays(s3, masks, settings_from_env())
        log.info("overlays rendered inline: %d written, %d failed", report.count("written"), report.count("failed"))

    return render


class IdSet:
    """A set of dataset object IDs: a bitmap for GT's integer indices, a set for anything else."""

    def __init__(self) -> None:
        self.bits = bytearray()
        self.other: set[str] = set()

    def add(self, oid: str) -> None:
        """Add one ID."""
        if oid.isdigit() and len(oid) < 9:
            i = int(oid)
            if i >= len(self.bits) * 8:
                self.bits.extend(b"\0" * (i // 8 + 1 - len(self.bits)))
            self.bits[i // 8] |= 1 << (i % 8)
        else:
            self.other.add(oid)

    def __contains__(self, oid: str) -> bool:
        if oid.isdigit() and len(oid) < 9:
            i = int(oid)
            return i < len(self.bits) * 8 and bool(self.bits[i // 8] & (1 << (i % 8)))
        return oid in self.other


def existing_overlays(s3: Any, job_root: S3Uri) -> tuple[IdSet, set[str]]:
    """The dataset object IDs under ``<job>/overlays/`` that have an overlay, and those whose overlay failed."""
    rendered, failed = IdSet(), set()
    for oid, _, is_failure in iter_overlay_entries(s3, job_root):
        if is_failure:
            failed.add(oid)
        else:
            rendered.add(oid)
    return rendered, failed


class OverlayEnsurer:
    """Collects the masks that lack an overlay while the manifest streams past, then renders them."""

    def __init__(
        self,
        s3: Any,
        lambda_client: Any,
        job_root: S3Uri,
        *,
        function: str = "",
        inline_limit: int = 20,
        chunk: int = 25,
        render_inline: Callable[[list[str]], Any] | None = None,
        time_left: Callable[[], float] | None = None,
        poll_seconds: float = 15.0,
        reserve_seconds: float = 120.0,
    ) -> None:
        self.s3, self.lambda_client, self.job_root = s3, lambda_client, job_root
        self.function, self.inline_limit, self.chunk = function, inline_limit, chunk
        self.render_inline, self.time_left = render_inline, time_left
        self.poll_seconds, self.reserve_seconds = poll_seconds, reserve_seconds
        self.existing, self.failed = existing_overlays(s3, job_root)
        self.missing: list[tuple[str, str]] = []  # (dataset object id, mask URI); few in practice
        self.failures: dict[str, str] = {}  # mask URI -> why its overlay cannot be rendered
        self.checked = 0

    def overlay_for(self, mask: S3Uri) -> S3Uri:
        """The overlay URI of a mask; remember the mask if its overlay does not exist yet."""
        oid = layout.dataset_object_id_of_mask(mask)
        if oid is None:
            oid = unquote(get_metadata(self.s3, mask).get("dataset-object-id", mask.name.rsplit(".", 1)[0]))
        self.checked += 1
        if oid not in self.existing:
            self.missing.append((oid, str(mask)))
        return layout.overlay(self.job_root, oid)

    def finish(self) -> dict[str, int]:
        """Render the missing overlays (inline or through the overlay Lambda); raise if still pending.

        Afterwards ``failures`` maps each mask whose overlay can never be rendered to the reason.
        """
        masks = [m for oid, m in self.missing if oid not in self.failed]
        if not masks:
            self._collect_failures()
            return {"checked": self.checked, "missing": 0, "failed": len(self.failures)}
        if len(masks) <= self.inline_limit and self.render_inline is not None:
            self.render_inline(masks)
        elif self.function:
            fan_out(self.lambda_client, self.function, masks, chunk_size=self.chunk)
            self._wait()
        elif self.render_inline is not None:
            self.render_inline(masks)
        still = self._still_missing()
        if still:
            raise StepPendingError(f"{still} of {len(masks)} overlays are not rendered yet")
        self._collect_failures()
        return {"checked": self.checked, "missing": len(masks), "failed": len(self.failures)}

    def _still_missing(self) -> int:
        self.existing, self.failed = existing_overlays(self.s3, self.job_root)
        return sum(1 for oid, _ in self.missing if oid not in self.existing and oid not in self.failed)

    def _collect_failures(self) -> None:
        for oid, mask in self.missing:
            if oid in self.failed and oid not in self.existing:
                try:
                    marker = get_json(self.s3, layout.overlay_failure(self.job_root, oid))
                    reason = str(marker.get("reason") or "unknown") if isinstance(marker, dict) else "unknown"
                except (S3ObjectUnavailableError, ValueError):
                    reason = "unknown"
                self.failures[mask] = f"overlay cannot be rendered: {reason}"

    def _wait(self) -> None:
        while self._still_missing():
            if self.time_left is None or self.time_left() < self.reserve_seconds + self.poll_seconds:
                return
            time.sleep(self.poll_seconds)

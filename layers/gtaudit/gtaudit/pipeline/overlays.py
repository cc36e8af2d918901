"""Make sure every consolidated mask of a labeling job has its overlay before the audit job starts.

The overlay Lambda normally renders each overlay as its mask is written. At job completion the
orchestrator lists ``<job>/overlays/`` once (1,000 keys a call, names only:
``gtaudit.overlay.fanout.overlay_names``) into a set of names, and collects the masks without an
overlay; a mask's overlay is ``<job>/overlays/<mask_name>.jpg`` (``gtaudit.layout.mask_name``),
known from its key alone. Names are the images' own, so the set holds strings: 100,000 of them
take about 10 MB (4 MB of hash table, the rest the strings), against the orchestrator's 1,769 MB.

The listing is the check because it is the cheapest correct one: S3 itself says what exists, so
retried and duplicate overlay events, re-renders and the failure markers need no bookkeeping, and
100,000 names cost 100 requests ($0.0005). A ledger the overlay Lambda keeps would cost a request
or a DynamoDB write per overlay (more than the listing by two orders of magnitude) and still
need this listing for what it missed. Waiting for renders re-checks only the names still missing:
one HEAD each while they are few (``RECHECK_BY_HEAD``), the listing again otherwise.

* up to ``inline_limit`` of the missing are rendered right here (``gtaudit.overlay.jobs.render_mask_overlays``);
* more are sent to the overlay Lambda asynchronously in chunks of ``chunk`` masks
  (``gtaudit.overlay.fanout.fan_out``), and the orchestrator re-lists until they exist or its time
  is nearly up; then it raises ``StepPendingError`` and the retry of the same event resumes
  (rendering is idempotent).

An overlay that can never be rendered (the original is gone, truncated or unreadable, or the mask
does not fit it) leaves a ``<name>.failed.json`` marker with its reason (``gtaudit.overlay.jobs``); the
ensurer reports those objects in ``failures`` so the step lists them as failed and audits the rest,
instead of waiting for them forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from gtaudit import layout
from gtaudit.exceptions import S3ObjectUnavailableError, StepPendingError
from gtaudit.overlay.fanout import fan_out, overlay_names
from gtaudit.s3io import exists, get_json
from gtaudit.s3uri import S3Uri

log = logging.getLogger(__name__)

# While at most this many overlays are awaited, a re-check asks for each (overlay, then failure
# marker) instead of listing the job's overlays: 100 x 2 HEADs cost what 200 pages of listing do.
RECHECK_BY_HEAD = 100


def inline_renderer(s3: Any) -> Callable[[list[str]], None]:
    """A ``render_inline`` for ``OverlayEnsurer`` that renders the masks' overlays in this process."""

    def render(masks: list[str]) -> None:
        # Imported here: Pillow and numpy cost the orchestrator's cold start, and most job events
        # find every overlay already rendered by the overlay Lambda.
        from gtaudit.overlay.jobs import render_mask_overlays, settings_from_env

        report = render_mask_overlays(s3, masks, settings_from_env())
        log.info("overlays rendered inline: %d written, %d failed", report.count("written"), report.count("failed"))

    return render


def existing_overlays(s3: Any, job_root: S3Uri) -> tuple[set[str], set[str]]:
    """The names under ``<job>/overlays/`` that have an overlay, and those whose overlay failed."""
    return overlay_names(s3, job_root)


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
        self.missing: list[tuple[str, str]] = []  # (name, mask URI); few in practice
        self.failures: dict[str, str] = {}  # mask URI -> why its overlay cannot be rendered
        self.checked = 0

    def overlay_for(self, mask: S3Uri) -> S3Uri:
        """The overlay URI of a mask; remember the mask if its overlay does not exist yet."""
        name = layout.mask_name(mask)
        self.checked += 1
        if name not in self.existing:
            self.missing.append((name, str(mask)))
        return layout.overlay(self.job_root, name)

    def finish(self) -> dict[str, int]:
        """Render the missing overlays (inline or through the overlay Lambda); raise if still pending.

        Afterwards ``failures`` maps each mask whose overlay can never be rendered to the reason.
        """
        masks = [m for name, m in self.missing if name not in self.failed]
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
        awaited = {name for name, _ in self.missing if name not in self.existing and name not in self.failed}
        if len(awaited) > RECHECK_BY_HEAD:
            self.existing, self.failed = existing_overlays(self.s3, self.job_root)
            return sum(1 for name in awaited if name not in self.existing and name not in self.failed)
        for name in sorted(awaited):
            if exists(self.s3, layout.overlay(self.job_root, name)):
                self.existing.add(name)
            elif exists(self.s3, layout.overlay_failure(self.job_root, name)):
                self.failed.add(name)
        return sum(1 for name in awaited if name not in self.existing and name not in self.failed)

    def _collect_failures(self) -> None:
        for name, mask in self.missing:
            if name in self.failed and name not in self.existing:
                try:
                    marker = get_json(self.s3, layout.overlay_failure(self.job_root, name))
                    reason = str(marker.get("reason") or "unknown") if isinstance(marker, dict) else "unknown"
                except (S3ObjectUnavailableError, ValueError):
                    reason = "unknown"
                self.failures[mask] = f"overlay cannot be rendered: {reason}"

    def _wait(self) -> None:
        while self._still_missing():
            if self.time_left is None or self.time_left() < self.reserve_seconds + self.poll_seconds:
                return
            time.sleep(self.poll_seconds)

"""Overlays: pure rendering of original + mask (``render``), rendering masks stored in S3 (``jobs``),
and finding the masks without overlays to send to the overlay Lambda in chunks (``fanout``)."""

"""Overlays: pure rendering of original + mask (``render``) and its S3 jobs (``jobs``)."""

"""The chain labeling -> overlay -> audit -> rework, driven by Ground Truth's job state events.

``orchestrator.handle_job_event`` is the one entry point of the orchestrator Lambda;
``start.start_run`` creates a run and its first labeling job (``gtaudit start`` and the demo).
"""

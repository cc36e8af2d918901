"""A Ground Truth emulator: SageMaker's labeling-job API over HTTP, and a job runner that acts as GT does.

API (JSON 1.1, ``X-Amz-Target: SageMaker.<Operation>``, so an unmodified boto3 ``sagemaker`` client
with ``AWS_ENDPOINT_URL_SAGEMAKER`` talks to it): ``CreateLabelingJob``, ``DescribeLabelingJob``,
``ListLabelingJobs``, ``StopLabelingJob``. ``CreateLabelingJob`` applies GT's validation: name and
label attribute name rules, required fields, value ranges, S3 URIs, role and workteam ARNs, Lambda
ARNs that exist in the local Lambda service, and job names unique case-insensitively.

A runner thread per job does what GT does with it, from the input manifest through the workers
and the consolidation Lambda to the output manifest and the job state change event
(:mod:`~gtaudit_local.groundtruth.runner`, which also lists the choices made where GT's behaviour
is not documented). The same HTTP server serves the pages' ``grant_read_access`` links
(:mod:`~gtaudit_local.groundtruth.server`).

Modules, one responsibility each:

==============  ==========================================================================
``emulator``    ``GroundTruthEmulator``: the job records, lifecycle, and the wiring below
``server``      the HTTP server and the signed ``grant_read_access`` links
``api``         the JSON 1.1 operations and ``CreateLabelingJob``'s validation
``record``      ``LabelingJobRun`` and ``ObjectRun``: what the emulator keeps of a job
``store``       the job records in SQLite (``state/groundtruth.sqlite``), for a restart
``runner``      one job from manifest to state change event, consolidation included
``workforce``   offering tasks to workers, the self-audit rule, the time limit, WorkerActivity
==============  ==========================================================================

The worker interface (``Task``, ``Answer``, ``Worker``) lives in :mod:`gtaudit_local.workers.base`,
which depends on nothing here: the emulator imports the workers' interface, never the reverse.
"""

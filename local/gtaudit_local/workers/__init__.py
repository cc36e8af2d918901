"""Scripted workers for the local Ground Truth emulator: labelers and auditors that never sleep.

The emulator hands each worker a :class:`~gtaudit_local.workers.base.Task` (the rendered page and
its ``task.input``) and gets back an :class:`~gtaudit_local.workers.base.Answer` whose ``content``
is exactly what the worker UI would submit: for the segmentation template,
``{"crowd-semantic-segmentation": {"inputImageProperties", "labelMappings", "labeledImage":
{"pngImageData"}, "initialValueModified"?}}`` with an RGBA PNG painted in the task's label colours;
for the audit template, the radio buttons, one checkbox per reason code, a comment and
``region-notes`` (a JSON string of pins at fractions of the image).

Workers know the truth from **reference masks** (``samples/reference/<image stem>.png``: 8-bit
indexed, index *i* = label *i* of ``reference_labels``, by default ``DEFAULT_LABELS``), looked up
by the image file's stem in a local folder or under an ``s3://`` prefix given at construction.
Reference classes are matched to the task's labels by name; a class the task does not ask for is
background.

* :class:`~gtaudit_local.workers.labeler.ScriptedLabeler` starts from the reference and makes
  seeded, profile-dependent mistakes: boundaries pushed out or pulled in along stretches of the
  outline (dilate/erode under a smooth random field), a missed small region, a region given the
  wrong class, a stray extra blob, and anti-aliased edges with intermediate colours and partial
  alpha as a browser canvas paints them. It sometimes returns or abandons a task. In a rework
  (``initialValue`` + ``feedback``) it starts from the previous mask and fixes each wrong region
  with the profile's ``rework_fix`` probability (more likely where an auditor pinned a note), then
  touches up the boundaries. Without a reference it paints a central ellipse of the first label.
* :class:`~gtaudit_local.workers.auditor.ScriptedAuditor` reads the consolidated mask (the task's
  ``mask`` URI) and compares it with the reference (:func:`~gtaudit_local.workers.auditor.assess`):
  whole regions missing, of the wrong class or extra, and loose boundaries. It approves when the
  labeled-pixel IoU reaches ``threshold`` and no region-level problem exists; otherwise it rejects
  with the matching reason codes, a short comment and one to three pins on the largest error
  regions. Without a reference it approves any non-empty mask.

Everything is deterministic: the pixels and the simulated times of an answer depend only on the
seed, the worker and the task. Times are simulated, never slept: each worker keeps its own
timeline (it accepts a task when both the clock and the worker are free), so one worker's tasks
never overlap and ``submitted_at - accepted_at`` (wall time) is at least ``active_seconds``.

Modules, one responsibility each:

========================  ====================================================================
``base``                  the emulator's worker interface: ``Task``, ``Answer``, ``Worker``
``simulation``            seeded identities, per-task random generators, simulated timelines
``morphology``            binary image tools (``scipy.ndimage``): dilate, erode, components
``references``            the task's labels, reference masks, reading mask PNGs
``painting``              the labeler's mistakes and the answer PNG as GT's canvas paints it
``labeler``               skill profiles and ``ScriptedLabeler``
``auditor``               ``assess`` (mask against reference) and ``ScriptedAuditor``
``crew``                  ``default_crew``: the demo's labelers and auditor
========================  ====================================================================

``base`` imports nothing heavier than the standard library, so the emulator and the browser worker
can share the interface without loading numpy, SciPy or Pillow.
"""

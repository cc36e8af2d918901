"""A project's embedded AWS on disk: S3 objects as plain files, the rest in ``state/aws.sqlite``.

- :mod:`~gtaudit_local.persist.keys`: where a key lives on disk, and the keys refused.
- :mod:`~gtaudit_local.persist.store`: :class:`~gtaudit_local.persist.store.AwsStore`, the files
  and the database, the restore, and the readers tools use on a stopped project.
- :mod:`~gtaudit_local.persist.journal`: the WSGI middleware that keeps each write before moto
  answers it.
- :mod:`~gtaudit_local.persist.moto_state`: the one module that reads and fills moto's models.

Why this design, and the figures: docs/local-runtime.md, "Where a project keeps its data".
"""

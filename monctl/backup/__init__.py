"""``monctl backup`` and ``monctl restore``: the stack's data, copied out and put back.

- ``create.py``: one backup run — every service's data made consistent
  (``consistency.py``: snapshot, or pause with an optional flush, as the
  service's declaration says), streamed through ``archive.py`` (compression
  and hashing) to the destination; ``report.py`` is its report;
- ``restore.py``: verify, confirm, then put a backup back through the runtime;
- ``repository.py``: the backups at a destination: list, verify, prune;
- ``destination.py``: where backups go (``--to``/``--from``, ``.env``), and
  opening it (``monctl.adapters.storage``: local directories and S3 — where
  backup talks to S3 is ``monctl/adapters/storage/s3.py``);
- ``manifest.py``: backup ids, the layout of a backup and its manifest;
- ``tar_safety.py``: what a restore may extract;
- ``lock.py``: one backup or restore at a time.

Heartbeats, notifications and the textfile metrics are the monitoring hooks:
``monctl/monitoring/``.
"""

"""``monctl backup`` and ``monctl restore``: the verbs over the stack's data, copied out
and put back.

- ``create.py``: one backup run — every service's data made consistent
  (``consistency.py``: snapshot, or pause with an optional flush, as the
  service's declaration says), read by ``ingest.py`` (what to read, what is already
  stored) and written through the repository (``monctl/repository/``); ``report.py``
  is its report;
- ``restore.py``: verify, confirm, then put a backup back through the runtime
  (``restore_stream.py``: the checked stream into the staged volume);
- ``repository.py``: the backups at a destination: list, prune; ``verify.py`` and
  ``verify_all.py``: verify one or all;
- ``drill.py``: a restore drill (``drill_report.py``, ``drill_record.py``);
  ``export.py``: a backup as a plain archive.

Where backups go (``--to``/``--from``, ``.env``) and opening it is
``monctl/repository/__init__.py`` (``monctl.adapters.storage``: local
directories and S3 — where backup talks to S3 is ``monctl/adapters/storage/s3.py``).

The format engine (manifests, objects, index, tars, gc, retention, leases, locks) is
``monctl/repository/``; heartbeats, notifications and the textfile metrics are the
monitoring hooks, ``monctl/monitoring/``.
"""

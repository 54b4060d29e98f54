"""``monctl backup`` and ``monctl restore``: the verbs over the stack's data, copied out
and put back. One module per verb; each reaches stored backups only through the
repository's door (``monctl/repository/__init__.py::Repository``), never the storage
adapters (``tests/core/test_repository_door.py``).

- ``create.py``: one backup run — every service's data made consistent
  (``consistency.py``: snapshot, or pause with an optional flush, as the service's
  declaration says; and what the drill will compare with, recorded just before), read
  by ``ingest.py`` (what to read, what is already stored) and written through the
  repository;
- ``restore.py``: verify, confirm, then put a backup back through the runtime
  (``restore_stream.py``: the checked stream into the staged volume), or straight into
  the volume's directory on this host (``restore_direct.py``, ``restore_files.py``);
- ``listing.py`` (``backup list``) and ``prune.py`` (``backup prune``, and retention
  after a backup); ``verify.py`` and ``verify_all.py``: verify one or all;
- ``drill.py``: a restore drill;
- ``export.py``: a backup as a plain archive (``export_sink.py``: where it is written);
- ``reports.py``: what a backup run, a verify and a drill report.

Each verb takes the lock it needs itself (``monctl/repository/__init__.py::project_lock``):
backup, restore and prune the project's, the drill its own. Where backups go
(``--repo``, ``.env``) and opening it is ``Repository.open``; where backup talks to S3 is
``monctl/adapters/storage/s3.py``. Heartbeats, notifications and the textfile metrics are
the monitoring hooks, ``monctl/monitoring/``.
"""

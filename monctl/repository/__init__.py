"""The repository format engine: how backups are laid out and kept at a destination
(docs/repository-format.md), apart from the verbs that use it (``monctl/backup/``).

- ``manifest.py``: backup ids, the layout of a backup and its manifest;
- ``filelist.py``: a service's file list (which files, which objects hold them);
- ``objects.py``: the one place stored bytes are made and read (compressed, encrypted,
  hashed to their id); ``archive.py``: codecs and hashing;
- ``store.py`` and ``index.py``: writing objects once, and what the repository holds;
- ``tar_stream.py`` and ``tar_safety.py``: reading untrusted tars, and what may be extracted;
- ``gc.py``: garbage collection; ``retention.py``: which backups retention keeps;
- ``lease.py`` (a backup in use on any host) and ``lock.py`` (one run at a time on a host);
- ``versions.py``: the downgrade check; ``keys.py``: which keys, and whether they open a
  backup; ``strict_json.py``: JSON parsed strictly.

Everything here reaches storage only through ``monctl.adapters.storage.Storage``.
"""

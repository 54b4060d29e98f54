"""``monctl validate`` and ``monctl reload``: the stack's configuration files.

- ``validate.py``: check every file without a running stack (the pull-request
  check): each service's declared checks, with its own tools in one-off
  containers (or from the host PATH with ``--local``);
- ``reload.py`` + ``reload_kinds.py``: apply a change to the running stack —
  check first, then reload the way the service's declaration says, then
  confirm the new configuration is active; ``reload_report.py`` is the report;
- ``problems.py``: a problem's file and line, read out of the tools' output.

Which checks a service has, and how it reloads, are part of its declaration
(``monctl.services``).
"""

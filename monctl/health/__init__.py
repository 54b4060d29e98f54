"""``monctl health``: is every service of the stack alive, ready and well?

- ``check.py``: one round of probes, every service at once, and ``wait`` (also
  used by ``up``, ``reload`` and ``restore`` to wait until a service is ready);
- ``endpoints.py``: where each service answers (override, runtime, ``.env``);
- ``probes.py``: the HTTP request of a probe, where no answer is an answer;
- ``report.py``: the findings, and the exit code they mean (drawn by
  ``monctl.cli.render.health``; ``--junit`` writes them with ``monctl.cli.render.junit``).

How each service's answers are read, and its deep checks, are part of its
declaration (``monctl.services``), not of this package.
"""

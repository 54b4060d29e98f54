"""The stack's lifecycle verbs: what ``monctl up``, ``down``, ``status``, ``init
--upgrade`` and ``credentials rotate`` do. One module per verb, each returning a result
with its exit code (drawn by ``monctl/cli/render/stack.py``):

- ``up.py``: start the stack and wait until it is ready;
- ``down.py``: stop it (and, asked, delete its data);
- ``status.py``: one row per service, as the runtime reports it;
- ``upgrade.py``: bring a copy written by ``monctl init`` up to the shipped files;
- ``rotate.py``: new credentials, handed to the running services.

The runtime (``monctl/runtime/``) does the starting and stopping; the health check
(``monctl/health/``) says when the stack is ready.
"""

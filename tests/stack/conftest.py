"""tests/stack: the stack's configuration proven by the upstream tools.

Helpers live in stack_support.py (a unique module name: tests/conftest.py is
another conftest on sys.path). Missing tools skip a test on a laptop and fail
it under CI=true (stack_support.need_binary).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

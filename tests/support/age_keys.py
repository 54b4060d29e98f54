"""age identities for the encryption tests, written as `age-keygen -o FILE` writes them."""

from __future__ import annotations

from pathlib import Path


def write_identity(path: Path) -> str:
    """A fresh X25519 identity in ``path`` (comments and all, mode 0600); its recipient."""
    import pyrage  # the extra monctl[age], part of monctl[test]

    ident = pyrage.x25519.Identity.generate()
    recipient = str(ident.to_public())
    path.write_text(f"# created: 2026-11-30T00:00:00Z\n# public key: {recipient}\n{ident}\n")
    path.chmod(0o600)
    return recipient

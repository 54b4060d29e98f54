"""Every backup verb is callable without click (issue 18, item 2): a request in (the
project, the destination, the services, the keys as given, the options), a result out
that carries its exit code. The verb reads the keys, opens the destination, resolves
`latest` and takes the lock itself: the command only builds the request."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from support import repo

from monctl.backup import create, export, listing, prune, verify
from monctl.errors import ExitCode, LockHeld
from monctl.repository import project_lock
from monctl.repository.retention import Policy


def test_the_verbs_take_a_request_and_return_a_result_with_its_exit_code(tmp_path: Path) -> None:
    proj, rt = repo.project(tmp_path / "stack"), repo.runtime()
    dest = str(tmp_path / "backups")
    request = create.BackupRequest(proj, rt, dest, (repo.TSDB, repo.LEDGER))
    first = create.perform(request)
    second = create.perform(request)
    assert (first.error, second.error) == (None, None)
    assert first.exit_code == second.exit_code == ExitCode.OK

    listed = listing.perform(listing.ListRequest(proj, dest))
    assert [e.backup_id for e in listed.entries] == [second.backup_id, first.backup_id]

    latest = verify.perform(verify.VerifyRequest(proj, dest, "latest", ("ledger",)))
    assert latest.exit_code == ExitCode.OK
    assert (latest.backup_id, [c.service for c in latest.checks]) == (second.backup_id, ["ledger"])
    everything = verify.perform(verify.VerifyRequest(proj, dest, None))
    assert everything.exit_code == ExitCode.OK and len(everything.backups) == 2

    output = tmp_path / "ledger.tar"
    exported = export.perform(
        export.ExportRequest(proj, dest, first.backup_id, ("ledger",), output=str(output))
    )
    assert exported.exit_code == ExitCode.OK and exported.backup_id == first.backup_id
    with tarfile.open(output) as tar:
        assert "ledger/ledger.db" in tar.getnames()

    pruned = prune.perform(prune.PruneRequest(proj, dest, Policy(keep_last=1)))
    assert pruned.exit_code == ExitCode.OK and pruned.deleted == [first.backup_id]


def test_prune_takes_the_project_lock_itself(tmp_path: Path) -> None:
    """The lock is taken in one place, the verb, for prune as for backup and restore."""
    proj, rt = repo.project(tmp_path / "stack"), repo.runtime()
    dest = str(tmp_path / "backups")
    create.perform(create.BackupRequest(proj, rt, dest, (repo.LEDGER,)))
    request = prune.PruneRequest(proj, dest, Policy(keep_last=1))
    with project_lock(proj, "backup"), pytest.raises(LockHeld):
        prune.perform(request)
    with project_lock(proj, "restore"), pytest.raises(LockHeld):
        create.perform(create.BackupRequest(proj, rt, dest, (repo.LEDGER,)))
    assert prune.perform(request).exit_code == ExitCode.OK  # released: it runs

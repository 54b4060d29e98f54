"""monctl: run, check, reload and back up the Residency Scheduler monitoring stack."""

__version__ = "0.1.0"

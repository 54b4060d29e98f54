"""monctl: run, check, reload and back up the Residency Scheduler monitoring stack."""

__version__ = "0.1.0"

# How the stack can run, declared once: name -> the Runtime class that runs it
# (imported on use; --runtime, MONCTL_RUNTIME and open_runtime read this). The
# first is the default.
RUNTIME_CLASSES: dict[str, str] = {
    "compose": "monctl.runtime.compose:ComposeRuntime",
    "swarm": "monctl.runtime.swarm:SwarmRuntime",
}
RUNTIMES: tuple[str, ...] = tuple(RUNTIME_CLASSES)

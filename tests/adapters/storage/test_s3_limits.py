"""How long an S3 call may take, and what its failure says: an endpoint that accepts
connections and never answers is given up within the time budget (MONCTL_S3_TIMEOUT)
and named as a timeout; an invalid bucket name is not a network error; a bare 403
(HEAD has no error body) says both possible causes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import REPO

from monctl import project
from monctl.adapters.storage import S3Options, open_storage
from monctl.adapters.storage.s3 import S3Storage
from monctl.errors import ConfigError, ExitCode, StorageError


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An "S3 endpoint" on 127.0.0.1 that accepts every connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # kept open, never read, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def stack(root: Path, env: str = "") -> Path:
    (root / "compose").mkdir(parents=True)
    shutil.copy2(REPO / project.COMPOSE_FILE, root / project.COMPOSE_FILE)
    (root / ".env").write_text(env, encoding="utf-8")
    return root


def monctl(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONCTL_"))}
    full.update(
        AWS_ACCESS_KEY_ID="AKIDMONCTLTEST",
        AWS_SECRET_ACCESS_KEY="monctl-test-secret-key-0123456789",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        NO_COLOR="1",
        COLUMNS="300",
    )
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "monctl", "--project-dir", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=full,
        check=False,
    )


LIMITS = {"MONCTL_S3_TIMEOUT": "3", "MONCTL_S3_CONNECT_TIMEOUT": "1", "MONCTL_S3_READ_TIMEOUT": "1"}


@pytest.mark.timeout(90)  # a guard only: unbounded, this took 5 x 60 s
@pytest.mark.parametrize("where", ["environment", ".env"])
def test_an_endpoint_that_never_answers_is_given_up_within_the_budget(
    tmp_path: Path, silent_endpoint: str, where: str
) -> None:
    settings = "".join(f"{k}={v}\n" for k, v in LIMITS.items())
    root = stack(tmp_path / "stack", settings if where == ".env" else "")
    env = {"AWS_ENDPOINT_URL": silent_endpoint, **(LIMITS if where == "environment" else {})}
    result = monctl(root, "backup", "list", "--from", "s3://some-bucket/x", env=env)
    message = " ".join(result.stderr.split())
    assert result.returncode == ExitCode.STORAGE, result.stderr
    assert "did not answer within 1 s" in message, message
    assert "MONCTL_S3_READ_TIMEOUT" in message and "MONCTL_S3_TIMEOUT" in message
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(60)
def test_the_budget_bounds_every_call_of_the_storage(silent_endpoint: str, aws_env: str) -> None:
    """The same bound on each kind of call: HEAD, GET, PUT, listing."""
    storage = S3Storage(
        "some-bucket",
        "p",
        S3Options(
            endpoint_url=silent_endpoint,
            time_budget=1,
            connect_timeout=0.3,
            read_timeout=0.3,
            backoff=0.01,
        ),
    )
    calls: list[Callable[[], object]] = [
        lambda: storage.exists("k"),
        lambda: storage.size("k"),
        lambda: storage.open("k"),
        lambda: storage.put("k", [b"x"]),
        storage.check_writable,
    ]
    for call in calls:
        with pytest.raises(StorageError) as err:
            call()
        assert "did not answer within 0.3 s" in err.value.message


@pytest.fixture
def stalling_endpoint() -> Iterator[str]:
    """An "S3 endpoint" that answers every GET with the first 10 of 100 bytes, then
    stalls: a download that stops moving halfway."""
    import http.server

    release = threading.Event()

    class Stall(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(206 if "Range" in self.headers else 200)
            self.send_header("Content-Length", "100")
            self.send_header("ETag", '"abc"')
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            release.wait(60)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stall)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    release.set()
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(40)  # a guard only: resuming without the budget took 50 x 1 s
def test_a_download_that_stops_moving_is_given_up_within_the_budget(
    stalling_endpoint: str, aws_env: str
) -> None:
    options = S3Options(
        endpoint_url=stalling_endpoint, attempts=50, read_timeout=1, time_budget=2, backoff=0.01
    )
    storage = S3Storage("some-bucket", "", options)
    with pytest.raises(StorageError) as err, storage.open("k") as stream:
        stream.read()
    assert "did not answer within 1 s" in err.value.message


@pytest.mark.parametrize(
    "name",
    ["MONCTL_S3_TIMEOUT", "MONCTL_S3_CONNECT_TIMEOUT", "MONCTL_S3_READ_TIMEOUT"],
)
@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf", "1e9"])
def test_time_settings_are_checked_and_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        S3Options.from_settings(lambda n, d="": value if n == name else d)
    assert name in err.value.message


def test_time_settings_have_documented_defaults() -> None:
    options = S3Options.from_settings(lambda n, d="": d)
    assert (options.time_budget, options.connect_timeout, options.read_timeout) == (60, 10, 30)
    readme = (REPO / "docs" / "backup-and-restore.md").read_text(encoding="utf-8")
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    for name in ("MONCTL_S3_TIMEOUT", "MONCTL_S3_CONNECT_TIMEOUT", "MONCTL_S3_READ_TIMEOUT"):
        assert name in readme and name in example, name


@pytest.mark.parametrize("bucket", ["Not!Valid", "under_score_but_also space", "a" * 300])
def test_an_invalid_bucket_name_is_named_not_a_network_error(aws_env: str, bucket: str) -> None:
    storage = open_storage(f"s3://{bucket}/x", s3_options=S3Options(attempts=3, backoff=0.01))
    with pytest.raises(StorageError) as err:
        storage.list()
    assert "invalid bucket name" in err.value.message
    assert "reach" not in err.value.message and "attempt" not in err.value.message
    assert err.value.exit_code == ExitCode.STORAGE
    assert err.value.hint and "lowercase" in err.value.hint


def test_an_invalid_bucket_name_on_the_command_line_exits_8(tmp_path: Path, aws_env: str) -> None:
    result = monctl(
        stack(tmp_path / "stack"),
        "backup",
        "list",
        "--from",
        "s3://Not!Valid/x",
        env={"AWS_ENDPOINT_URL": aws_env},
    )
    assert result.returncode == ExitCode.STORAGE, result.stderr
    assert "invalid bucket name" in result.stderr


def test_a_bare_403_on_head_names_both_causes(
    make_s3: Callable[..., S3Storage],
    moto_auth: Callable[[bool], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HEAD answers carry no body, so a 403 says neither AccessDenied nor
    InvalidAccessKeyId: the message must not claim the credentials work."""
    storage = make_s3(prefix="")
    storage.put("k", [b"data"])
    moto_auth(True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDNOBODYKNOWS")
    for call in (lambda: make_s3(prefix="").exists("k"), lambda: make_s3(prefix="").size("k")):
        with pytest.raises(StorageError) as err:
            call()
        assert "access denied, or the credentials are wrong" in err.value.message
        assert "credentials work" not in f"{err.value.message} {err.value.hint}"

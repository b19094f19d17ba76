"""Session fixtures for the streaming integration tests: the real broker and Redis.

``scripts/services.sh start`` installs and starts both on loopback (idempotent, so an already running
pair is reused).  If they cannot be started the tests FAIL with the script's message: CI must provide
them, a silent skip would hide a broken set-up.  Services are left running after the session.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "scripts" / "services.sh"


@dataclass(frozen=True)
class Services:
    bootstrap: str
    redis_url: str
    script: Path

    def run(self, *args: str, timeout: float = 120) -> str:
        """Run services.sh with args; fail the test with its output when it fails."""
        proc = subprocess.run([str(self.script), *args], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            pytest.fail(f"scripts/services.sh {' '.join(args)} failed (rc {proc.returncode}):\n"
                        f"{proc.stdout}\n{proc.stderr}")
        return proc.stdout


def _parse_env(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line.startswith("QUANTEDGE_") and "=" in line]
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture(scope="session")
def services() -> Services:
    """Start (or reuse) the broker and Redis; yields where they listen."""
    try:
        proc = subprocess.run([str(SERVICES), "start"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not run {SERVICES} start: {exc}")
    if proc.returncode != 0:
        pytest.fail(f"scripts/services.sh start failed (rc {proc.returncode}); the streaming tests need a "
                    f"real broker and Redis:\n{proc.stdout}\n{proc.stderr}")
    env = _parse_env(proc.stdout)
    return Services(env["QUANTEDGE_KAFKA_BOOTSTRAP"], env["QUANTEDGE_REDIS_URL"], SERVICES)


@pytest.fixture(scope="session")
def bootstrap(services: Services) -> str:
    return services.bootstrap


@pytest.fixture(scope="session")
def redis_url(services: Services) -> str:
    return services.redis_url


@pytest.fixture
def run_id() -> str:
    """Unique suffix so topics, groups and Redis keys never collide between tests or runs."""
    return uuid.uuid4().hex[:10]

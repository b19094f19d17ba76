"""Browser-test fixtures: Chromium (installed by scripts/install_chromium.sh), a catalog of two real
LOBSTER days (AMZN 5 levels, AAPL 1 level, 2012-06-21) and a dashboard server on an ephemeral port."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "out" / "test-artifacts" / "dashboard"


@pytest.fixture(scope="session")
def chromium() -> str:
    script = REPO / "scripts" / "install_chromium.sh"
    try:
        r = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"Chromium could not be installed ({e}); browser tests need /usr/bin/chromium")
    if r.returncode != 0:
        pytest.skip(f"Chromium could not be installed: {r.stderr.strip()[-400:]}")
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def lobster_catalog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from quantedge.catalog.importing import import_paths
    from quantedge.catalog.store import Catalog

    root = tmp_path_factory.mktemp("dash-catalog")
    cat = Catalog(root)
    zips = [
        shared_data / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip",
        shared_data / "lobster" / "LOBSTER_SampleFile_AAPL_2012-06-21_1.zip",
    ]
    import_paths(cat, "lobster", zips)
    return root


@pytest.fixture(scope="session")
def dash(lobster_catalog: Path, tmp_path_factory: pytest.TempPathFactory):
    from quantedge.dashboard.app import build_config, serve_in_thread
    from quantedge.dashboard.session import DetectorStage, ReplaySession

    out = tmp_path_factory.mktemp("dash-out")
    cfg = build_config(catalog=lobster_catalog, date="2012-06-21", output=out)
    session = ReplaySession(cfg, signal_stage=DetectorStage())
    srv = serve_in_thread(session)
    yield srv
    srv.stop()


@pytest.fixture()
def browser(chromium: str, dash, request: pytest.FixtureRequest):
    from quantedge.dashboard.cdp import Browser

    b = Browser(chromium)
    yield b
    try:
        b.screenshot(ARTIFACTS / f"{request.node.name}.png")
    finally:
        b.close()

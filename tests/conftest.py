"""Shared fixtures: tiny random checkpoints saved to disk (loaded the way users load models) and
generated clips whose frames carry their own index."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers_models import make_clip, make_siglip, make_xclip

#: Real sample footage: ACTIONZS_SAMPLE_VIDEOS, else a `shared/videos` folder beside the clone.
SAMPLE_VIDEOS = Path(os.environ.get("ACTIONZS_SAMPLE_VIDEOS") or Path(__file__).resolve().parents[2] / "shared" / "videos")


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def siglip_dir(tmp_path_factory) -> Path:
    return make_siglip(tmp_path_factory.mktemp("tiny-siglip"))


@pytest.fixture(scope="session")
def xclip_dir(tmp_path_factory) -> Path:
    return make_xclip(tmp_path_factory.mktemp("tiny-xclip"))


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    """The sample footage folder; tests using it skip where it is absent."""
    if not SAMPLE_VIDEOS.is_dir() or not any(SAMPLE_VIDEOS.iterdir()):
        pytest.skip(f"sample footage folder {SAMPLE_VIDEOS} is absent")
    return SAMPLE_VIDEOS

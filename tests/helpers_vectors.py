"""Generated frame embeddings shaped like a video library, and queries like a user's searches.

Random unit vectors are the easy case for a nearest-neighbour index: every point is about as far
from every other. Frame embeddings are not like that: frames of one shot are near-duplicates, shots
of the same kind of scene (a kitchen, a pitch) resemble each other across videos, and every image
embedding shares a common direction (CLIP's image embeddings have cosine ~0.5 to each other). The
generator builds each frame as

    common + scene centre + shot offset + a smooth random walk

(weights below), normalised to unit length. A video is cut into shots (a cut every `shot_frames`
frames on average); each shot picks a scene centre out of `scenes` shared by all videos and an offset
of its own; within a shot the walk is an AR(1) process, so consecutive frames at 1 frame/s have cosine
~0.995. The benchmark imports this module, so the tests and the benchmark measure the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Weights of the four parts of a frame vector (each part has unit norm before weighting).
COMMON, SCENE, SHOT, WALK = 0.55, 0.5, 0.45, 0.3
#: Correlation of the walk from one frame to the next.
WALK_CORRELATION = 0.95


@dataclass
class VideoLibrary:
    vectors: np.ndarray  # float16 [videos * frames_per_video, dim], unit rows, video-major
    scene_centres: np.ndarray  # float32 [scenes, dim], unit
    common: np.ndarray  # float32 [dim], unit
    frames_per_video: int


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def video_library(videos: int, frames_per_video: int, dim: int, *, scenes: int = 200, shot_frames: float = 60.0,
                  seed: int = 0) -> VideoLibrary:
    """`videos` x `frames_per_video` unit frame vectors (float16), frame `t` of video `v` at row
    `v * frames_per_video + t`. Generated one time step at a time for all videos at once, so memory
    is the float16 output plus a few [videos, dim] arrays."""
    rng = np.random.default_rng(seed)
    common = _unit(rng.standard_normal(dim, dtype=np.float32))
    centres = _unit(rng.standard_normal((scenes, dim), dtype=np.float32))
    out = np.empty((videos, frames_per_video, dim), np.float16)
    scale = np.float32(1 / np.sqrt(dim))
    scene = rng.integers(0, scenes, videos)
    shot = rng.standard_normal((videos, dim), dtype=np.float32) * scale
    walk = rng.standard_normal((videos, dim), dtype=np.float32) * scale
    innovation = np.float32(np.sqrt(1 - WALK_CORRELATION**2)) * scale
    for t in range(frames_per_video):
        cut = np.flatnonzero(rng.random(videos) < 1 / shot_frames)
        if cut.size:
            scene[cut] = rng.integers(0, scenes, cut.size)
            shot[cut] = rng.standard_normal((cut.size, dim), dtype=np.float32) * scale
        walk *= np.float32(WALK_CORRELATION)
        walk += rng.standard_normal((videos, dim), dtype=np.float32) * innovation
        frame = COMMON * common + SCENE * centres[scene] + SHOT * shot + WALK * walk
        out[:, t] = _unit(frame)
    return VideoLibrary(out.reshape(videos * frames_per_video, dim), centres, common, frames_per_video)


def moment_queries(library: VideoLibrary, count: int, *, cosine: float = 0.9, seed: int = 1) -> np.ndarray:
    """"More like this moment": stored frames moved off themselves to cosine ~`cosine` (float32)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(library.vectors), count)
    dim = library.vectors.shape[1]
    noise = _unit(rng.standard_normal((count, dim), dtype=np.float32))
    spread = np.sqrt(1 / cosine**2 - 1)
    return _unit(library.vectors[rows].astype(np.float32) + np.float32(spread) * noise).astype(np.float32)


def text_queries(library: VideoLibrary, count: int, *, seed: int = 2) -> np.ndarray:
    """Like a text query: a random direction mixed toward one scene centre (and a little toward the
    common direction), so the best frames have cosine ~0.3 to it, as text-image cosines are, and the
    top of the ranking is decided by small differences (float32)."""
    rng = np.random.default_rng(seed)
    dim = library.vectors.shape[1]
    scene = rng.integers(0, len(library.scene_centres), count)
    direction = _unit(rng.standard_normal((count, dim), dtype=np.float32))
    return _unit(0.45 * library.scene_centres[scene] + 0.2 * library.common + direction).astype(np.float32)

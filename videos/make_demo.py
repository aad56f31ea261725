"""Write a 30-second demo clip and a labels file for it, to try actionzs without your own footage.

    python videos/make_demo.py            # writes videos/demo/demo.mp4 and videos/demo/labels.txt
    actionzs classify videos/demo/demo.mp4 --labels-file videos/demo/labels.txt --segments

The clip has three 10-second scenes a zero-shot model can tell apart: a red ball bouncing on grass,
waves on a blue sea, and snow falling on a dark night. Only OpenCV (an actionzs dependency) is used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS, SCENE_SECONDS = 640, 360, 25, 10

LABELS = """\
# Labels for the demo clip; "name: description" embeds the description, reports the name.
bouncing ball: a red ball bouncing on green grass
sea: waves on a blue sea
snow: snow falling at night
cooking: a person cooking in a kitchen
"""


def _ball(t: float) -> np.ndarray:
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    frame[:] = (60, 170, 70)  # grass (BGR)
    frame[: HEIGHT // 3] = (235, 200, 150)  # sky
    x = int((t * 120) % (WIDTH - 80)) + 40
    y = int(HEIGHT - 60 - abs(np.sin(t * 3)) * 180)
    cv2.circle(frame, (x, y), 32, (30, 30, 220), -1)
    return frame


def _sea(t: float) -> np.ndarray:
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    frame[:] = (140, 70, 10)
    xs = np.arange(WIDTH)
    for row in range(HEIGHT // 3, HEIGHT, 18):
        ys = (row + 6 * np.sin(xs / 40 + t * 2 + row)).astype(np.int32)
        cv2.polylines(frame, [np.stack([xs, ys], 1)], False, (230, 220, 200), 2)
    frame[: HEIGHT // 3] = (235, 200, 150)
    return frame


_FLAKES = np.random.default_rng(1).random((300, 2))


def _snow(t: float) -> np.ndarray:
    frame = np.full((HEIGHT, WIDTH, 3), (40, 20, 15), np.uint8)
    for fx, fy in _FLAKES:
        x, y = int(fx * WIDTH), int((fy * HEIGHT + t * 60) % HEIGHT)
        cv2.circle(frame, (x, y), 3, (255, 255, 255), -1)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "demo", help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    video = args.out / "demo.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write {video}")
    for i in range(3 * SCENE_SECONDS * FPS):
        t = i / FPS
        scene = (_ball, _sea, _snow)[int(t // SCENE_SECONDS)]
        writer.write(scene(t))
    writer.release()
    (args.out / "labels.txt").write_text(LABELS, encoding="utf-8")
    print(f"wrote {video} (30 s: ball 0-10 s, sea 10-20 s, snow 20-30 s) and {args.out / 'labels.txt'}")


if __name__ == "__main__":
    main()

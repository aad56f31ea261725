"""What test_ray.py sends to Ray's workers by reference (they import it: the cluster's PYTHONPATH
holds this folder)."""

from __future__ import annotations

import os

from actionzs.embed import Opener


class CrashingOpener(Opener):
    """Opens videos as `Opener` does, except that a file named `*poison*` ends the process that
    opens it at once (as a decoder crashing on it would): a video that kills its worker every time."""

    def __call__(self, source):
        if "poison" in os.path.basename(os.fspath(source)):
            os._exit(1)
        return super().__call__(source)

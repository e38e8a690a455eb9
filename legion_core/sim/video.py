"""Writing episode videos and stills (imageio + the ffmpeg binary shipped in imageio-ffmpeg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_video(frames: Sequence[np.ndarray], path: str | Path, fps: int = 40) -> Path:
    """MP4 (H.264) for .mp4, GIF for .gif. Meta-World runs at 80 Hz; 40 fps plays at half speed."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise ValueError("no frames to write")
    if path.suffix == ".gif":
        imageio.mimsave(path, list(frames), duration=1.0 / fps)
    else:
        with imageio.get_writer(path, fps=fps, codec="libx264", quality=6, macro_block_size=8) as w:
            for f in frames:
                w.append_data(np.asarray(f))
    return path


def write_still(frame: np.ndarray, path: str | Path) -> Path:
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, frame)
    return path

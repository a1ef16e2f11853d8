"""Change-detection latency, for apps whose outputs lose the frame-ID marker, and "did the app change anything?".

In scene mode the camera switches between a dark and a bright scene at known frames
(`VirtualCamera.scene_switches`). Whatever an app does to a frame, it does the same to
every frame of one scene, so its outputs fall into two groups, one per scene; which
one an output belongs to needs no knowledge of the transform. The latency of a switch
is from the capture of the new scene's first frame to the arrival of the first output
of the new scene's group.

A signature is a 16 x 12 colour thumbnail, area-averaged so codec noise and small
motion (the camera's moving bar) average out. The two groups are found by 2-means
over all of one user's outputs; they count only when clearly apart (their distance
many times the spread inside them along it), so outputs that drift or jitter without
following the scenes yield no change at all, never an invented one.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

SIGNATURE_SIZE = (16, 12)  # width, height of the signature thumbnail
MIN_SEPARATION = 6.0  # the groups' distance over their RMS spread along it: a linear drift split in two scores 3.5
MIN_DISTANCE = 8.0  # grey levels RMS per thumbnail value; blur, resize, edges, cartoon put the scenes 40-125 apart
LLOYD_ROUNDS = 8
LAGS_TRIED = 60  # lags over one switch period at which the groups are matched to the camera's scenes
COMPARE_SIZE = (64, 48)  # finer than the signature: a cartoon filter's thin dark outlines must count as a change
UNCHANGED_PSNR_DB = 30.0  # identity via JPEG, WebP, VP8 twice: >= 34 dB; flip, edges, cartoon: <= 23 dB


def signature(image: np.ndarray) -> np.ndarray:
    """A cheap fingerprint of one returned image (H x W x 3 uint8): its 16 x 12 area-averaged thumbnail."""
    return cv2.resize(image, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32).ravel()


def first_changes(
    arrivals: Sequence[float],
    signatures: Sequence[np.ndarray],
    switches: Sequence[tuple[float, int]],
) -> list[float | None]:
    """For each scene switch (capture time, new scene), the arrival of the first output that changed to it.

    `arrivals` / `signatures` are one user's outputs in any order. A switch gets None when no output of the new
    scene's group arrived before the next switch, when the output before that one was not of the old scene's
    group (the previous switch had not shown yet), or when the outputs do not form two clear groups.
    """
    if len(arrivals) < 4 or not switches:
        return [None] * len(switches)
    order = np.argsort(arrivals)
    times = np.asarray(arrivals, dtype=float)[order]
    points = np.stack([np.asarray(signatures[i], dtype=np.float32) for i in order])
    groups = _two_groups(points, times, switches)
    if groups is None:
        return [None] * len(switches)
    ends = [t for t, _ in switches[1:]] + [np.inf]
    return [_first_change(times, groups, start, end, scene) for (start, scene), end in zip(switches, ends, strict=True)]


def _scene_at(times: np.ndarray, switches: Sequence[tuple[float, int]]) -> np.ndarray:
    """The scene the camera showed at each time (before the first switch: the other one)."""
    starts = np.array([t for t, _ in switches])
    scenes = np.array([s for _, s in switches])
    index = np.searchsorted(starts, times, side="right") - 1
    return np.where(index >= 0, scenes[np.maximum(index, 0)], 1 - scenes[0])


def _two_groups(points: np.ndarray, times: np.ndarray, switches: Sequence[tuple[float, int]]) -> np.ndarray | None:
    """Each output's group (the scene it shows), or None when the outputs do not split clearly in two.

    2-means from the two most distant outputs (no assumption about the latency); the groups are then named
    after the scenes by how well they follow the camera's scene some lag earlier, at the best lag below one
    switch period - a slow app's outputs lag the camera by up to that much.
    """
    first = int(np.argmax(((points - points.mean(axis=0)) ** 2).sum(axis=1)))
    second = int(np.argmax(((points - points[first]) ** 2).sum(axis=1)))
    centre = np.stack([points[first], points[second]])
    labels = np.zeros(len(points), dtype=int)
    for _ in range(LLOYD_ROUNDS):
        labels = np.argmin(((points[:, None, :] - centre[None]) ** 2).sum(axis=2), axis=1)
        if np.bincount(labels, minlength=2).min() == 0:
            return None
        centre = np.stack([points[labels == k].mean(axis=0) for k in (0, 1)])
    axis = centre[1] - centre[0]
    distance = float(np.sqrt((axis**2).mean()))
    if distance < MIN_DISTANCE:
        return None
    # spread along the axis between the groups, in units of their distance: motion elsewhere in the picture
    # (the camera's moving bar) is no doubt about the scene
    position = (points - centre[0]) @ axis / float(axis @ axis)
    spread = float(np.sqrt(((position - labels) ** 2).mean()))
    if spread * MIN_SEPARATION >= 1:
        return None
    starts = np.array([t for t, _ in switches])
    period = float(np.median(np.diff(starts))) if len(starts) > 1 else 1.0
    agreement = max(
        float(np.mean(labels == _scene_at(times - lag, switches))) for lag in np.linspace(0, period, LAGS_TRIED)
    )
    disagreement = max(
        float(np.mean(labels != _scene_at(times - lag, switches))) for lag in np.linspace(0, period, LAGS_TRIED)
    )
    return labels if agreement >= disagreement else 1 - labels


def _first_change(times: np.ndarray, groups: np.ndarray, start: float, end: float, scene: int) -> float | None:
    """The first output in [start, end) of the new scene's group right after one of the old scene's."""
    after = np.flatnonzero((times >= start) & (times < end))
    for index in after:
        if groups[index] == scene:
            return float(times[index]) if index > 0 and groups[index - 1] != scene else None
    return None


def unchanged(output: np.ndarray, sent: np.ndarray) -> bool:
    """Did the app return the frame it was sent, within codec noise? PSNR of grey 64 x 48 thumbnails."""
    return _psnr_db(output, sent) > UNCHANGED_PSNR_DB


def _psnr_db(output: np.ndarray, sent: np.ndarray) -> float:
    a, b = (_grey_thumbnail(image) for image in (output, sent))
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _grey_thumbnail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, COMPARE_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)

"""Frame-ID marker: which camera frame does a returned image show?

A block of 8 x 10 cells near the bottom-left corner, placed in fractions of
the image size so a server-side resize does not move it. Each of the 40 bits
(24-bit ID + CRC-16 of it) is a Manchester pair of cells: (striped, flat) for
1 and (flat, striped) for 0. Decoding compares the horizontal-gradient energy
of the two cells of each pair, so it needs no global threshold and survives
flips, Canny edges, cartoon filtering and lossy codecs. The four orientations
(identity, left-right, up-down, both) are tried, which also tells the caller
whether a flip transform really ran. A reading is returned only when every
pair has a clear winner and the CRC matches: a wrong ID is never reported.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

ID_BITS = 24
CRC_BITS = 16
BITS = ID_BITS + CRC_BITS
ROWS, COLS = 8, 10  # cells; COLS is even so each row holds whole pairs
GRID_W, GRID_H = 16, 24  # the image is cut into 16 x 24 cell slots
ORIGIN = (1, GRID_H - ROWS - 1)  # block origin in slots: one slot from the left and bottom edges
FLAT, DARK, LIGHT = 128, 16, 240
MIN_RATIO = 1.5  # the striped cell of a pair must carry this much more gradient energy...
MIN_ENERGY = 6.0  # ...and at least this mean |dI/dx| (grey levels per pixel)
MAX_ERASURES = 2  # pairs without a clear winner that the CRC may resolve (CRC-16 detects any 3-bit error)
CRC_SALT = 0x5A3C  # an all-flat or all-striped block must not pass the check
ORIENTATIONS = ("identity", "flip_lr", "flip_ud", "rotate_180")
MAX_ID = (1 << ID_BITS) - 1
LIMITED_RANGE_GAIN = 255 / 219  # a limited-range (video) luma step per RGB grey step, inverted


@dataclass(frozen=True)
class MarkerReading:
    frame_id: int
    orientation: str


@dataclass(frozen=True)
class _Layout:
    xs: np.ndarray  # COLS + 1 cell edges in pixels
    ys: np.ndarray  # ROWS + 1 cell edges in pixels
    stripe: int
    col_index: np.ndarray  # inner column ranges, interleaved start/stop, for reduceat
    row_index: np.ndarray
    areas: np.ndarray  # (ROWS, COLS) pixels per inner cell
    stripes: np.ndarray  # one line of the striped pattern across the block
    cell_of_column: np.ndarray  # which cell each block column belongs to
    row_heights: np.ndarray


@lru_cache(maxsize=16)
def _layout(height: int, width: int) -> _Layout:
    cell_w, cell_h = width / GRID_W, height / GRID_H
    xs = np.round((ORIGIN[0] + np.arange(COLS + 1)) * cell_w).astype(int)
    ys = np.round((ORIGIN[1] + np.arange(ROWS + 1)) * cell_h).astype(int)
    x0 = int(xs[0])
    y0 = int(ys[0])

    def inner(edges: np.ndarray, origin: int, size: float) -> tuple[np.ndarray, np.ndarray]:
        pad = max(1, round(size * 0.25))
        starts = edges[:-1] + pad - origin
        stops = np.maximum(edges[1:] - pad - origin, starts + 1)
        return starts, stops

    col_starts, col_stops = inner(xs, x0, cell_w)
    row_starts, row_stops = inner(ys, y0, cell_h)
    stripe = max(2, round(cell_w / 4))
    columns = np.arange(int(xs[-1]) - x0)
    return _Layout(
        xs=xs,
        ys=ys,
        stripe=stripe,
        col_index=np.ravel(np.column_stack([col_starts, col_stops])),
        row_index=np.ravel(np.column_stack([row_starts, row_stops])),
        areas=np.outer(row_stops - row_starts, col_stops - col_starts).astype(float),
        stripes=np.where((columns // stripe) % 2 == 0, DARK, LIGHT).astype(np.uint8),
        cell_of_column=np.searchsorted(xs[1:] - x0, columns, side="right"),
        row_heights=np.diff(ys),
    )


def _check(frame_id: int) -> int:
    return binascii.crc_hqx(frame_id.to_bytes(3, "big"), 0xFFFF) ^ CRC_SALT


def _bits(frame_id: int) -> np.ndarray:
    value = (frame_id << CRC_BITS) | _check(frame_id)
    return np.unpackbits(np.frombuffer(value.to_bytes(BITS // 8, "big"), dtype=np.uint8)).astype(bool)


def encode_marker(image: np.ndarray, frame_id: int) -> None:
    """Draw the marker for `frame_id` into `image` (H x W x 3 uint8) in place."""
    if not 0 <= frame_id <= MAX_ID:
        raise ValueError(f"frame_id must be in 0..{MAX_ID}, got {frame_id}")
    height, width = image.shape[:2]
    layout = _layout(height, width)
    bits = _bits(frame_id)
    striped = np.empty(ROWS * COLS, dtype=bool)
    striped[0::2] = bits
    striped[1::2] = ~bits
    lines = np.where(striped.reshape(ROWS, COLS)[:, layout.cell_of_column], layout.stripes, FLAT).astype(np.uint8)
    # expand to the channels before repeating rows: a broadcast write into RGB is ~50x slower
    block = np.repeat(
        np.repeat(lines[:, :, None], image.shape[2] if image.ndim == 3 else 1, axis=2), layout.row_heights, axis=0
    )
    image[layout.ys[0] : layout.ys[-1], layout.xs[0] : layout.xs[-1]] = block if image.ndim == 3 else block[:, :, 0]
    _draw_border(image, layout)


def _draw_border(image: np.ndarray, layout: _Layout) -> None:
    """A flat frame one thin band wide, so scene texture cannot leak into edge cells."""
    height, width = image.shape[:2]
    pad_x, pad_y = max(2, width // 64), max(2, height // 60)
    x0, x1, y0, y1 = int(layout.xs[0]), int(layout.xs[-1]), int(layout.ys[0]), int(layout.ys[-1])
    image[max(0, y0 - pad_y) : y0, max(0, x0 - pad_x) : x1 + pad_x] = FLAT
    image[y1 : y1 + pad_y, max(0, x0 - pad_x) : x1 + pad_x] = FLAT
    image[y0:y1, max(0, x0 - pad_x) : x0] = FLAT
    image[y0:y1, x1 : x1 + pad_x] = FLAT


def decode_marker(image: np.ndarray, gain: float = 1.0) -> MarkerReading | None:
    """The frame ID and orientation of the marker in `image`, or None if no valid marker is there.

    `image` is RGB or one grey channel; `gain` scales its grey steps to RGB's: a decoded video frame's
    limited-range luma plane (Y = 16 + 219 / 255 * grey) is read as is, without converting the frame,
    with `gain` = 255 / 219 (`LIMITED_RANGE_GAIN`).
    """
    luma = _luma(image)
    height, width = luma.shape
    if height < GRID_H * 4 or width < GRID_W * 4:
        return None
    layout = _layout(height, width)
    for orientation in ORIENTATIONS:
        frame_id = _read(_oriented(luma, orientation), layout, gain)
        if frame_id is not None:
            return MarkerReading(frame_id, orientation)
    return None


def _luma(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return image[..., 1]  # green carries most of the luminance; all channels are equal after edges


def _oriented(luma: np.ndarray, orientation: str) -> np.ndarray:
    """Undo a flip by viewing the image the other way round (no copy)."""
    if orientation == "flip_lr":
        return luma[:, ::-1]
    if orientation == "flip_ud":
        return luma[::-1, :]
    if orientation == "rotate_180":
        return luma[::-1, ::-1]
    return luma


def _read(luma: np.ndarray, layout: _Layout, gain: float = 1.0) -> int | None:
    first_row = _pair_bits(luma, layout, 0, 1, gain)  # cheap rejection where there is no marker
    if first_row is None:
        return None
    rest = _pair_bits(luma, layout, 1, ROWS, gain)
    if rest is None:
        return None
    bits = np.concatenate([first_row[0], rest[0]])
    unsure = np.flatnonzero(np.concatenate([first_row[1], rest[1]]))
    if len(unsure) > MAX_ERASURES:
        return None
    found = set()
    for guess in range(1 << len(unsure)):  # a codec glitch may blur a pair or two: let the CRC decide
        bits[unsure] = [(guess >> k) & 1 for k in range(len(unsure))]
        value = int.from_bytes(np.packbits(bits).tobytes(), "big")
        frame_id, check = value >> CRC_BITS, value & ((1 << CRC_BITS) - 1)
        if _check(frame_id) == check:
            found.add(frame_id)
    return found.pop() if len(found) == 1 else None


def _pair_bits(
    luma: np.ndarray, layout: _Layout, row_start: int, row_stop: int, gain: float = 1.0
) -> tuple[np.ndarray, np.ndarray] | None:
    """Bits of cell rows [row_start, row_stop) and which pairs lack a clear winner (None if too many)."""
    y0 = int(layout.ys[row_start])
    block = np.ascontiguousarray(luma[y0 : layout.ys[row_stop], layout.xs[0] : layout.xs[-1] + 1])
    # |dI/dx| summed over each cell's inner area from an integral image: 4 lookups per cell, all SIMD in OpenCV
    total = cv2.integral(cv2.absdiff(block[:, 1:], block[:, :-1]))
    rows = layout.row_index[2 * row_start : 2 * row_stop] - (y0 - layout.ys[0])
    top, bottom = rows[0::2, None], rows[1::2, None]
    left, right = layout.col_index[0::2], layout.col_index[1::2]
    sums = total[bottom, right] - total[top, right] - total[bottom, left] + total[top, left]
    energy = sums * gain / layout.areas[row_start:row_stop]
    pairs = energy.reshape(-1, 2)
    first, second = pairs[:, 0], pairs[:, 1]
    strong = np.maximum(first, second)
    unsure = (strong < MIN_ENERGY) | (strong < MIN_RATIO * np.minimum(first, second))
    if np.count_nonzero(unsure) > MAX_ERASURES:
        return None
    return first > second, unsure

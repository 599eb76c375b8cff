"""Head coordinates, the sampling grid and the soft painter the anatomy is drawn with.

Head coordinates (mm): x to the patient's left, y anterior, z superior; the origin sits
near the floor of the anterior cranial fossa on the midline. The scanner grid is DICOM
LPS-like: columns run to the patient's left, rows run posterior, planes run superior.
A pose (scale, rotation, shift) maps one to the other, so a seed can tilt and move the
head inside the field of view while every structure stays consistent in 3D.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Rotation head -> scanner: yaw about z (in-plane), pitch about x (chin), roll about y."""
    a, b, c = np.radians([yaw_deg, pitch_deg, roll_deg])
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])
    return rz @ rx @ ry


@dataclass
class Pose:
    """scanner = rot @ (scale * head) + shift, with scanner y anterior (flipped to rows later)."""

    scale: np.ndarray
    """(3,) per-axis head scale."""
    rot: np.ndarray
    shift: np.ndarray

    def head_to_scanner(self, p: np.ndarray) -> np.ndarray:
        return self.rot @ (self.scale * np.asarray(p, float)) + self.shift

    def scanner_to_head_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(M, c) with head = M @ scanner + c."""
        m = np.diag(1.0 / self.scale) @ self.rot.T
        return m, -m @ self.shift

    def to_dict(self) -> dict:
        return {"scale": self.scale.tolist(), "rot": self.rot.tolist(), "shift": self.shift.tolist()}


@dataclass
class Grid:
    """Sample points: ``z`` plane heights (mm) and a square in-plane grid of ``size`` pixels."""

    z: np.ndarray
    size: int
    pixel_mm: float
    pose: Pose

    def __post_init__(self) -> None:
        offsets = ((np.arange(self.size) - (self.size - 1) / 2.0) * self.pixel_mm).astype(np.float32)
        self.x = offsets  # columns, patient left positive
        self.y_ant = -offsets  # rows run posterior, so anterior is up in the image
        m, c = self.pose.scanner_to_head_matrix()
        zz = self.z.astype(np.float32)[:, None, None]
        xx = self.x[None, None, :]
        yy = self.y_ant[None, :, None]
        self.hx = (m[0, 0] * xx + m[0, 1] * yy + (m[0, 2] * zz + c[0])).astype(np.float32)
        self.hy = (m[1, 0] * xx + m[1, 1] * yy + (m[1, 2] * zz + c[1])).astype(np.float32)
        self.hz = (m[2, 0] * xx + m[2, 1] * yy + (m[2, 2] * zz + c[2])).astype(np.float32)
        self.shape = self.hx.shape
        # the scanner's own anterior coordinate per voxel (gravity acts along it: supine patient)
        self.scan_y_ant = np.broadcast_to(yy, self.shape)

    def box(self, centre_head, radius_mm: float) -> tuple[slice, slice, slice] | None:
        """Index ranges of the grid that can hold a head-space ball (None if outside)."""
        centre = self.pose.head_to_scanner(centre_head)
        r = radius_mm * float(self.pose.scale.max()) + self.pixel_mm
        planes = np.nonzero(np.abs(self.z - centre[2]) <= r)[0]
        cols = np.nonzero(np.abs(self.x - centre[0]) <= r)[0]
        rows = np.nonzero(np.abs(self.y_ant - centre[1]) <= r)[0]
        if not (len(planes) and len(cols) and len(rows)):
            return None
        return (
            slice(int(planes[0]), int(planes[-1]) + 1),
            slice(int(rows[0]), int(rows[-1]) + 1),
            slice(int(cols[0]), int(cols[-1]) + 1),
        )

    def coords(self, box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.hx[box], self.hy[box], self.hz[box]


class Region:
    """A set of grid voxels (flat indices) with their head coordinates, for sparse work.

    The brain fills well under half of the grid; computing its many fields only where it
    is keeps a 512 x 512 study within its time budget.
    """

    def __init__(self, idx: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, scan_y: np.ndarray) -> None:
        self.idx, self.x, self.y, self.z, self.scan_y = idx, x, y, z, scan_y

    @classmethod
    def of_grid(cls, grid: "Grid") -> "Region":
        n = int(np.prod(grid.shape))
        return cls(np.arange(n), grid.hx.reshape(-1), grid.hy.reshape(-1), grid.hz.reshape(-1),
                   np.ascontiguousarray(grid.scan_y_ant).reshape(-1))

    def select(self, keep: np.ndarray) -> "Region":
        return Region(self.idx[keep], self.x[keep], self.y[keep], self.z[keep], self.scan_y[keep])

    def near(self, centre, radius: float) -> tuple["Region", np.ndarray]:
        """The voxels within a cube around ``centre`` (and the boolean used, to slice fields)."""
        cx, cy, cz = (float(c) for c in centre)
        keep = (np.abs(self.x - cx) < radius) & (np.abs(self.y - cy) < radius) & (np.abs(self.z - cz) < radius)
        return self.select(keep), keep

    def __len__(self) -> int:
        return len(self.idx)


class Canvas:
    """HU and tissue-class volumes painted with soft edges (anti-aliased partial volume)."""

    def __init__(self, shape: tuple[int, ...], pixel_mm: float) -> None:
        self.hu = np.full(shape, -1000.0, np.float32)
        self.tissue = np.zeros(shape, np.uint8)
        self._hu = self.hu.reshape(-1)
        self._tissue = self.tissue.reshape(-1)
        self.edge_mm = float(pixel_mm)

    def alpha(self, sd: np.ndarray) -> np.ndarray:
        """Occupancy of a voxel from the signed distance (mm, positive inside) of a shape."""
        return np.clip(0.5 + sd / self.edge_mm, 0.0, 1.0)

    def tissue_of(self, region: Region) -> np.ndarray:
        return self._tissue[region.idx]

    def paint(self, region: Region, sd: np.ndarray, value, code: int, where: np.ndarray | None = None) -> np.ndarray:
        """Blend ``value`` into the region's voxels where the shape is; return its occupancy."""
        a = self.alpha(sd)
        if where is not None:
            a = a * where
        hu = self._hu[region.idx]
        hu += a * (value - hu)
        self._hu[region.idx] = hu
        self._tissue[region.idx[a >= 0.5]] = code
        return a


def ellipsoid_sd(x, y, z, centre, axes) -> np.ndarray:
    """Approximate signed distance (mm, positive inside) to an axis-aligned ellipsoid."""
    centre = [float(c) for c in centre]
    axes = [float(v) for v in axes]
    u = (x - centre[0]) / axes[0]
    v = (y - centre[1]) / axes[1]
    w = (z - centre[2]) / axes[2]
    q = u * u + v * v + w * w
    grad = np.sqrt((u / axes[0]) ** 2 + (v / axes[1]) ** 2 + (w / axes[2]) ** 2) + 1e-6
    return (1.0 - q) / (2.0 * grad)


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)

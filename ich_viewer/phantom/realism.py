"""Scanner realism: slice-thickness averaging, blur, upsampling, correlated noise, streaks.

Blur, upsampling and noise share one inverse FFT per slice: the anatomy is drawn on a
coarse in-plane grid, its spectrum is shaped by the system's blur, zero-padded to the
output matrix, and CT-like coloured noise is added in the same spectrum. That is what
keeps a 512 x 512 study fast on two cores.
"""
from __future__ import annotations

import numpy as np

from ich_viewer.phantom.geometry import smoothstep


def add_streaks(canvas, fields, rng: np.random.Generator, strength: float) -> None:
    """Beam-hardening streaks near dense bone: the dark band between the petrous bones in the
    posterior fossa (a Hounsfield bar) and a few faint bright/dark lines from the skull base."""
    if strength <= 0:
        return
    low = fields.region.z < -5.0
    r = fields.region.select(low)
    x, y, z = r.x, r.y, r.z
    level = smoothstep((z + 48.0) / 8.0) * smoothstep((-8.0 - z) / 8.0)
    inside = np.clip(fields.depth[low] / 2.0, 0, 1) * level
    delta = -strength * 14.0 * np.exp(-(((y + 14.0 + 0.005 * x * x) / 4.0) ** 2)) * (np.abs(x) < 45.0)
    for _ in range(int(rng.integers(2, 5))):
        angle = rng.uniform(0, np.pi)
        ox, oy = rng.choice([-1.0, 1.0]) * rng.uniform(25, 40), rng.uniform(-20, 0)
        dist = np.abs((x - ox) * np.sin(angle) - (y - oy) * np.cos(angle))
        delta += rng.choice([-1.0, 1.0]) * strength * 9.0 * np.exp(-((dist / 1.2) ** 2))
    flat = canvas.hu.reshape(-1)
    flat[r.idx] += delta * inside


def average_subplanes(volume: np.ndarray, n_sub: int) -> np.ndarray:
    """Mean over the sub-planes of each slice: the partial volume of a thick slice."""
    if n_sub == 1:
        return volume
    n = volume.shape[0] // n_sub
    return volume.reshape(n, n_sub, *volume.shape[1:]).mean(axis=1)


def _frequencies(size: int, pixel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    fy = np.fft.fftfreq(size, d=pixel_mm).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(size, d=pixel_mm).astype(np.float32)[None, :]
    return fy, fx


UPSAMPLING_TAPER_FROM = 0.5
"""Share of the drawing grid's Nyquist frequency where the taper of ``_upsampling_taper`` starts."""


def _upsampling_taper(radial: np.ndarray, work_pixel_mm: float) -> np.ndarray:
    """A raised-cosine roll-off of the drawing grid's spectrum to zero at its Nyquist frequency.

    A series finer than the grid the anatomy is drawn on (512 from 256) is the grid's spectrum
    padded with zeros. With the scanner's blur alone (about 0.45 mm) the bone's edge still has
    energy at the grid's Nyquist, and cutting it off abruptly rings: stripes parallel to the
    inner table in the brain window. Rolling it off smoothly, as a CT kernel does, removes them.
    """
    nyquist = 0.5 / work_pixel_mm
    start = UPSAMPLING_TAPER_FROM * nyquist
    x = np.clip((radial - start) / (nyquist - start), 0.0, 1.0)
    return (0.5 * (1.0 + np.cos(np.pi * x))).astype(np.float32)


def blur_upsample_noise(
    volume: np.ndarray,
    out_size: int,
    work_pixel_mm: float,
    blur_sigma_mm: float,
    noise_sd: float,
    rng: np.random.Generator,
    chunk: int = 8,
) -> np.ndarray:
    """Blur (Gaussian PSF), band-limited upsampling to ``out_size`` and coloured noise."""
    n, size, _ = volume.shape
    out_pixel = work_pixel_mm * size / out_size
    fy_w, fx_w = _frequencies(size, work_pixel_mm)
    psf = np.exp(-2.0 * (np.pi * blur_sigma_mm) ** 2 * (fy_w**2 + fx_w**2)).astype(np.float32)
    if out_size > size:
        psf *= _upsampling_taper(np.sqrt(fy_w**2 + fx_w**2), work_pixel_mm)
    fy, fx = _frequencies(out_size, out_pixel)
    fr = np.sqrt(fy**2 + fx**2)
    # noise power spectrum of filtered back projection: rises with frequency, rolls off at the kernel
    f0 = 0.45 / (2.0 * out_pixel)
    nps = (fr / f0) * np.exp(-((fr / f0) ** 2))
    weights = np.full(fr.shape[1], 2.0, np.float32)
    weights[0] = 1.0
    if out_size % 2 == 0:
        weights[-1] = 1.0
    # variance of irfft2 output for unit complex noise filtered by nps: 2 * sum(w |H|^2) / N^4 * N^2
    var_unit = 2.0 * float((weights[None, :] * nps**2).sum()) / float(out_size) ** 4
    noise_gain = np.float32(noise_sd / np.sqrt(var_unit) / out_size) if noise_sd > 0 else np.float32(0)
    scale = np.float32((out_size / size) ** 2)
    half = size // 2
    out = np.empty((n, out_size, out_size), np.float32)
    for start in range(0, n, chunk):
        block = volume[start:start + chunk]
        spec = np.fft.rfft2(block) * psf
        big = np.zeros((block.shape[0], out_size, out_size // 2 + 1), np.complex64)
        if out_size == size:
            big[:] = spec
        else:
            big[:, :half, : half + 1] = spec[:, :half, : half + 1]
            big[:, -half:, : half + 1] = spec[:, -half:, : half + 1]
            big *= scale
        if noise_sd > 0:
            noise = rng.standard_normal((2, *big.shape), dtype=np.float32)
            big += (noise[0] + 1j * noise[1]) * (nps * noise_gain * out_size)
        out[start:start + chunk] = np.fft.irfft2(big, s=(out_size, out_size))
    return out


def upsample_labels(volume: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling of a class or mask volume."""
    if factor == 1:
        return volume
    return np.repeat(np.repeat(volume, factor, axis=1), factor, axis=2)

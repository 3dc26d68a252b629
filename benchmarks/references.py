"""How accurate the packaged reference solutions are: the numbers quoted in the
docstrings of ``jno/problems/burgers.py`` and ``jno/problems/allen_cahn.py`` and in
``docs/problems.md``.

Burgers (``nu = 0.01 / pi``), Cole-Hopf by Gauss-Hermite quadrature
(:func:`jno.problems.burgers.cole_hopf`), on the 256 x 100 grid of ``t > 0``:

- 100, 150 and 200 nodes against 300 (largest difference);
- 200 nodes against an independent rule: the trapezoidal rule with 20 001 points over
  ``|s| <= 40`` (the integrands decay as ``exp(-s^2)``);
- the steepest slope at ``x = 0``: ``u_x`` by a central difference, its extremum in
  ``t`` by golden-section search (Basdevant et al. 1986 give -152.00516 at
  ``t = 1.6037 / pi``).

Allen-Cahn, Fourier spectral in space and ETDRK4 in time
(:func:`jno.problems._etdrk4.etdrk4_periodic`), on ``t = 0, 0.1, ..., 1``:

- space: 512, 1024 and 2048 nodes against 4096, all at ``dt = 5e-4`` (largest and
  relative L2 differences, on the 512 nodes every grid shares);
- time: 512 nodes at ``dt = 1e-3`` against ``dt = 1.25e-4``.

Run::

    .venv/bin/python benchmarks/references.py > benchmarks/results/references.txt
"""

from __future__ import annotations

import time

import numpy as np

from jno.problems._etdrk4 import etdrk4_periodic
from jno.problems.burgers import cole_hopf

NU = 0.01 / np.pi


def trapezoid_cole_hopf(x: np.ndarray, t: np.ndarray, points: int = 20001) -> np.ndarray:
    """The same two integrals by the trapezoidal rule in ``s`` over ``[-40, 40]``."""
    s = np.linspace(-40.0, 40.0, points)
    out = np.empty_like(x)
    for start in range(0, x.size, 64):
        xs, ts = x[start : start + 64, None], t[start : start + 64, None]
        y = xs - np.sqrt(4.0 * NU * ts) * s
        expo = -(s**2) - np.cos(np.pi * y) / (2.0 * np.pi * NU)
        kernel = np.exp(expo - expo.max(axis=1, keepdims=True))
        out[start : start + 64] = -np.sum(np.sin(np.pi * y) * kernel, 1) / np.sum(kernel, 1)
    return out


def burgers() -> None:
    x, t = np.meshgrid(np.linspace(-1, 1, 256), np.linspace(0, 1, 101)[1:])
    x, t = x.ravel(), t.ravel()
    best = cole_hopf(x, t, NU, nodes=300)
    print("Burgers, Cole-Hopf quadrature, 256 x 100 grid of t > 0")
    for nodes in (100, 150, 200):
        diff = np.abs(cole_hopf(x, t, NU, nodes=nodes) - best).max()
        print(f"  {nodes:3d} Gauss-Hermite nodes vs 300: max difference {diff:.1e}")
    trap = trapezoid_cole_hopf(x, t)
    diff = np.abs(cole_hopf(x, t, NU, nodes=200) - trap).max()
    print(f"  200 nodes vs trapezoidal rule (20001 points, |s| <= 40): {diff:.1e}")

    def slope(tt: float, h: float = 1e-6) -> float:
        u = cole_hopf(np.array([-h, h]), tt, NU)
        return float((u[1] - u[0]) / (2 * h))

    lo, hi = 0.4, 0.6  # the extremum is near t = 0.51
    golden = (np.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
        if slope(a) < slope(b):
            hi = b
        else:
            lo = a
    tt = (lo + hi) / 2
    print(f"  steepest slope at x = 0: u_x = {slope(tt):.5f} at t = {tt * np.pi:.4f} / pi")


def allen_cahn() -> None:
    def solve(nodes: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
        return etdrk4_periodic(
            lambda x: x**2 * np.cos(np.pi * x), lambda v: 5 * v - 5 * v**3, 1e-4,
            (-1.0, 1.0), nodes, np.linspace(0.0, 1.0, 11), dt,
        )  # fmt: skip

    def compare(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        step = b.shape[1] // 512  # the 512 nodes every grid shares
        a = a[:, :: a.shape[1] // 512]
        b = b[:, ::step]
        return float(np.abs(a - b).max()), float(np.linalg.norm(a - b) / np.linalg.norm(b))

    print("Allen-Cahn, Fourier / ETDRK4, t = 0, 0.1, ..., 1")
    start = time.perf_counter()
    _, best = solve(4096, 5e-4)
    print("   nodes   max difference   relative L2   (against 4096 nodes, dt = 5e-4)")
    for nodes in (512, 1024, 2048):
        big, rel = compare(solve(nodes, 5e-4)[1], best)
        print(f"  {nodes:6d}   {big:.1e}           {rel:.1e}")
    big, rel = compare(solve(512, 1e-3)[1], solve(512, 1.25e-4)[1])
    print(f"  512 nodes, dt = 1e-3 vs 1.25e-4: max {big:.1e}, relative L2 {rel:.1e}")
    print(f"  ({time.perf_counter() - start:.0f} s)")


def main() -> None:
    burgers()
    allen_cahn()


if __name__ == "__main__":
    main()

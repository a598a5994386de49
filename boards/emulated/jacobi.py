"""Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations.

Plain Python (`math`, `array`) so it runs on MicroPython too; O(n**3) per sweep and a few
sweeps, fine for the few dozen states of the plant's film, once at construction. Jacobi is
chosen over QR for its accuracy on graded matrices (entries spanning many decades, as a
diffusion operator on a geometric grid has): off-diagonal entries are dropped only when
negligible against their own diagonal entries, so small eigenvalues keep their relative
accuracy.
"""

import math
from array import array


def jacobi_eigen(a, n, max_sweeps=100):
    """Eigen-decomposition of the symmetric n x n matrix `a` (flat array, row-major,
    destroyed). Returns (eigenvalues, vectors) with vectors[r * n + i] the r-th component of
    eigenvector i. Cyclic Jacobi: slow (n**3 per sweep) but accurate on graded matrices,
    and it runs anywhere."""
    v = array("d", [0.0] * (n * n))
    for i in range(n):
        v[i * n + i] = 1.0
    for _ in range(max_sweeps):
        rotated = False
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = a[p * n + q]
                if apq == 0.0:
                    continue
                app = a[p * n + p]
                aqq = a[q * n + q]
                # negligible against both diagonal entries: set it to zero (keeps the
                # relative accuracy of small eigenvalues, unlike a norm-wise threshold)
                if abs(apq) <= 1e-18 * math.sqrt(abs(app * aqq)) or abs(apq) < 1e-300:
                    a[p * n + q] = 0.0
                    a[q * n + p] = 0.0
                    continue
                theta = (aqq - app) / (2.0 * apq)
                if abs(theta) > 1e150:
                    t = 0.5 / theta
                else:
                    t = 1.0 / (abs(theta) + math.sqrt(theta * theta + 1.0))
                    if theta < 0.0:
                        t = -t
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                for r in range(n):
                    if r != p and r != q:
                        arp = a[r * n + p]
                        arq = a[r * n + q]
                        vp = c * arp - s * arq
                        vq = s * arp + c * arq
                        a[r * n + p] = vp
                        a[p * n + r] = vp
                        a[r * n + q] = vq
                        a[q * n + r] = vq
                a[p * n + p] = app - t * apq
                a[q * n + q] = aqq + t * apq
                a[p * n + q] = 0.0
                a[q * n + p] = 0.0
                for r in range(n):
                    vrp = v[r * n + p]
                    vrq = v[r * n + q]
                    v[r * n + p] = c * vrp - s * vrq
                    v[r * n + q] = s * vrp + c * vrq
                rotated = True
        if not rotated:
            break
    lam = array("d", [a[i * n + i] for i in range(n)])
    return lam, v

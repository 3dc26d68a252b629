"""The packaged problems on CSG domains: exact solutions solve their residuals (and a
wrong one does not), Neumann data through the domain's normals, the L-shape's exactly
imposed data, evaluation on the grid points inside the domain."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jno import ops
from jno.app.demo import plot_problem
from jno.problems import LaplaceLShape2D, PoissonCavity3D, PoissonHoles2D, corner_solution
from jno.problems.laplace_lshape import boundary_extension

KEY = jax.random.key(0)


def batch_of(trainer, n=256):
    keys = jax.random.split(KEY, len(trainer.points))
    return {k: ps.sample(key)[:n] for key, (k, ps) in zip(keys, trainer.points.items())}


@pytest.mark.parametrize("problem", [PoissonHoles2D, LaplaceLShape2D, PoissonCavity3D])
def test_the_exact_solution_solves_the_residuals_and_a_wrong_one_does_not(problem):
    with jax.enable_x64(True):
        trainer = problem.default(hidden=[8], progress=False)
        batch = batch_of(trainer)
        exact = trainer.reference
        wrong = lambda x: exact(x) * 1.01 + 0.01 * x[:, 0]  # noqa: E731
        # One compiled program for both: eagerly, each operation compiles on its own.
        both = jax.jit(lambda b: (trainer.residuals(exact, b), trainer.residuals(wrong, b)))
        at_exact, at_wrong = both(batch)
        for name, r in at_exact.items():
            # The corner singularity's Laplacian is zero away from the corner only.
            scale = 1e-7 if problem is LaplaceLShape2D and name == "pde" else 1e-9
            assert float(jnp.max(jnp.abs(r))) < scale, name
        worst = max(float(jnp.max(jnp.abs(r))) for r in at_wrong.values())
        assert worst > 1e-3


def test_the_neumann_data_follow_the_normals_into_the_holes():
    trainer = PoissonHoles2D.default(hidden=[8], progress=False)
    x = trainer.points["holes"].sample(KEY)
    centres = np.array([(-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5)])
    nearest = centres[np.argmin(np.linalg.norm(x[:, None] - centres[None], axis=2), axis=1)]
    inward = -(np.asarray(x) - nearest) / 0.2  # out of the plate: towards the hole's centre
    np.testing.assert_allclose(trainer.domain.normal(x), inward, atol=1e-4)
    outer = np.asarray(trainer.points["outer"].sample(KEY))
    assert np.all(np.isclose(np.abs(outer), 1.0, atol=1e-6).any(axis=1))


def test_the_corner_solution_and_the_lshape_extension():
    # Compiled whole: eagerly, each of their many small operations compiles per shape.
    corner, extension = jax.jit(corner_solution), jax.jit(boundary_extension)
    with jax.enable_x64(True):
        r = jnp.linspace(0.1, 1.0, 10)
        on_edges = jnp.concatenate([jnp.stack([r, 0 * r], 1), jnp.stack([0 * r, -r], 1)])
        np.testing.assert_allclose(corner(on_edges), 0.0, atol=1e-15)
        # (r, theta) = (0.5, pi / 2): 0.5^(2/3) sin(pi / 3)
        value = corner(jnp.array([[0.0, 0.5]]))[0]
        np.testing.assert_allclose(value, 0.5 ** (2 / 3) * np.sin(np.pi / 3), rtol=1e-14)
        domain = LaplaceLShape2D.domain
        xb = domain.boundary(400).sample(KEY)
        np.testing.assert_allclose(extension(xb), corner(xb), atol=1e-12)
        xi = domain.interior(400).sample(KEY)
        assert float(jnp.max(jnp.abs(extension(xi) - corner(xi)))) > 0.05
        vertices = jnp.asarray(np.array(domain.vertices))
        np.testing.assert_allclose(extension(vertices), corner(vertices))
        # exact=True: the data hold on the boundary to rounding, and "bc" leaves the loss.
        trainer = LaplaceLShape2D.default(hidden=[8], exact=True, progress=False)
        np.testing.assert_allclose(trainer.predict(xb), corner(xb), atol=1e-12)
        assert trainer.check() == ("pde",)
        # The recipes read the network inside the transform.
        recipe = LaplaceLShape2D.recipes["quasi-newton"].phases()
        assert recipe.replace(hidden=(8,)).contradictions(trainer) == []
        assert "(8,)" in recipe.replace(hidden=(9,)).contradictions(trainer)[0]
        lap = jax.jit(lambda x: ops.laplacian(trainer.nets[0].module, x))(xi)
        assert bool(jnp.all(jnp.isfinite(lap)))


def test_errors_are_measured_inside_the_domain_and_drawn(tmp_path):
    trainer = PoissonHoles2D.default(hidden=[8], progress=False, log_every=5)
    x = trainer.evaluation_points()
    assert bool(trainer.domain.contains(x).all())
    grid, inside = trainer.domain.masked_grid(list(trainer.grid_shape))
    assert x.shape[0] == int(inside.sum()) < 201 * 201
    np.testing.assert_array_equal(np.asarray(grid)[inside], np.asarray(x))
    before = trainer.relative_l2()
    history = trainer.fit(10)
    assert history["error/u"][-1] == pytest.approx(trainer.relative_l2(), rel=1e-5)
    assert trainer.relative_l2() != before
    assert plot_problem(trainer, tmp_path / "holes.png").stat().st_size > 0

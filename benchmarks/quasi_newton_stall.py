"""Line-search evaluations of an SSBroyden run past its rounding floor.

A float64 least-squares fit ``mean((tanh(X p) - y)^2)`` (``--samples`` x ``--params``,
normal data from ``--seed``) runs ``--iterations`` compiled ``jno.optim.ssbroyden``
updates from ``p = 0``. Once a steepest-descent search from the identity fails, the
optimizer is stalled and skips the searches it would repeat. The script prints, per
block of iterations, the evaluations spent and the iterations skipped, and at the end
what the skipped iterations would have cost: each would have repeated the failed search
trial for trial, so that cost is the skipped count times the evaluations of that search
(checked here by running the search once more at the final point).

Usage:
    .venv/bin/python benchmarks/quasi_newton_stall.py > benchmarks/results/quasi_newton_stall.log
"""

from __future__ import annotations

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jno.optim import ssbroyden, strong_wolfe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--params", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-linesearch-steps", type=int, default=20)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    x = jnp.asarray(rng.normal(size=(args.samples, args.params)))
    y = jnp.asarray(rng.normal(size=args.samples))

    def f(p):
        return jnp.mean((jnp.tanh(x @ p) - y) ** 2)

    tx = ssbroyden(max_linesearch_steps=args.max_linesearch_steps)

    def one(carry, _):
        params, state = carry
        value, grad = optax.value_and_grad_from_state(f)(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
        params = optax.apply_updates(params, updates)
        return (params, state), (state.value, state.evaluations, state.stalled)

    run = jax.jit(lambda p: jax.lax.scan(one, (p, tx.init(p)), length=args.iterations))
    (params, _), (values, evaluations, stalled) = run(jnp.zeros(args.params))
    values, evaluations, stalled = map(np.asarray, (values, evaluations, stalled))

    print("| iterations | value at the end | evaluations | skipped searches |")
    print("|---|---|---|---|")
    for start in range(0, args.iterations, args.block):
        end = start + args.block
        skipped = int(np.sum(stalled[start:end] & (evaluations[start:end] == 0)))
        print(
            f"| {start + 1}-{end} | {values[end - 1]:.17g} | "
            f"{int(evaluations[start:end].sum())} | {skipped} |"
        )
    first = int(np.argmax(stalled)) if stalled.any() else None
    total = int(evaluations.sum())
    print(f"evaluations in all: {total}")
    if first is None:
        print("the run did not stall")
        return
    value, grad = jax.value_and_grad(f)(params)
    again = jax.jit(strong_wolfe, static_argnums=0, static_argnames="max_evaluations")(
        lambda p: (f(p), None),
        params,
        -grad,
        value,
        grad,
        None,
        init_step=jnp.minimum(1.0, 1.0 / jnp.linalg.norm(grad)),
        max_evaluations=args.max_linesearch_steps,
    )
    skipped = args.iterations - first - 1
    print(
        f"stalled at iteration {first + 1} after a failed search of "
        f"{int(evaluations[first])} evaluations; the same search at the final point: "
        f"failed={bool(again.failed)}, {int(again.evaluations)} evaluations"
    )
    print(
        f"{skipped} searches skipped; repeating them would have cost "
        f"{skipped * int(again.evaluations)} more evaluations "
        f"({total + skipped * int(again.evaluations)} in all instead of {total})"
    )


if __name__ == "__main__":
    main()

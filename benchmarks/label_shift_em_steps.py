"""EM steps to the label-shift estimate: plain EM against mmnpe's SQUAREM
with backtracking, on the cases that make EM slow.

    python benchmarks/label_shift_em_steps.py [--n 4000] [--ref-steps 200000]

Cases (4 Gaussian classes with exact posteriors, the boundary and flat
ones those of tests/functional/test_label_shift_fn.py): overlapping classes
and a target of two of them (the maximum-likelihood prior on the simplex's
boundary), barely separated classes (a flat likelihood, EM's contraction
rate near 1), and well separated classes with one or two absent from the
target. For each: the EM steps of
:func:`mmnpe.functional.em_prior` (tol 1e-6 on the estimated distance to
the fixed point), the steps plain EM needs to the same criterion, and the
L1 distance of each to a long plain-EM reference (--ref-steps steps).
Deterministic (seeded data, float64, one thread); prints a markdown
table.
"""
import argparse
import warnings

import torch

from mmnpe.functional import em_prior
from mmnpe.functional.label_shift import LabelShiftConvergenceWarning

MEANS = torch.tensor([[0., 0.], [2.2, 0.], [0., 2.2], [2.2, 2.2]])
UNIFORM = torch.full((4, ), 0.25, dtype=torch.float64)
CASES = (
    ('boundary optimum (means x 0.5, target classes 0 and 1)', 0.5,
     [0.5, 0.5, 0.0, 0.0]),
    ('flat likelihood (means x 0.25)', 0.25, [0.4, 0.3, 0.2, 0.1]),
    ('one class absent', 1.0, [0.5, 0.3, 0.2, 0.0]),
    ('two classes absent', 1.0, [0.6, 0.4, 0.0, 0.0]),
)


def sample(prior, n: int, seed: int, spread: float) -> torch.Tensor:
    """Exact logits of n points (class means ``MEANS * spread``, unit
    variance)."""
    means = MEANS * spread
    g = torch.Generator().manual_seed(seed)
    y = torch.multinomial(
        torch.as_tensor(prior, dtype=torch.float64), n, True, generator=g)
    x = means[y] + torch.randn(n, 2, generator=g)
    return -((x[:, None] - means[None])**2).sum(-1).double() / 2


def plain_em(z: torch.Tensor, steps: int, tol: float = 0.0):
    """Plain EM from the uniform prior; with ``tol`` it stops on the same
    criterion as em_prior (step * rate / (1 - rate) < tol). Returns the
    prior and the steps."""
    post = torch.softmax(z, dim=1)
    p, last = UNIFORM.clone(), None
    for k in range(1, steps + 1):
        w = p / UNIFORM
        nxt = w * ((post @ w).reciprocal() @ post) / len(post)
        step = float((nxt - p).abs().sum())
        p = nxt
        if tol and last:
            rate = step / last
            if step == 0 or (rate < 1 and step * rate / (1 - rate) < tol):
                return p, k
        last = step
    return p, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--n', type=int, default=4000)
    parser.add_argument('--ref-steps', type=int, default=200000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print('| case | SQUAREM steps | its L1 to the reference | plain EM steps '
          '| its L1 to the reference |')
    print('|---|---|---|---|---|')
    for name, spread, prior in CASES:
        z = sample(prior, args.n, 5, spread)
        ref, _ = plain_em(z, args.ref_steps)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', LabelShiftConvergenceWarning)
            est, info = em_prior(z, UNIFORM, tol=1e-6, max_iter=100000)
        em, em_steps = plain_em(z, 100000, tol=1e-6)
        print(f'| {name} | {info["iterations"]} | '
              f'{float((est - ref).abs().sum()):.2g} | {em_steps} | '
              f'{float((em - ref).abs().sum()):.2g} |')


if __name__ == '__main__':
    main()

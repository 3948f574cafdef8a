"""The marketing-goal regulariser and its gradient estimators (all in torch).

The goal of a batch of RCT samples is the Lagrangian value of the policy that
the model's own predictions define::

    a_i = argmax_k s_ik,   s_ik = r_hat_ik - lam * c_hat_ik   (control: s_i0 = 0)
    G   = mean_i  [a_i = t_i] * (revenue_i - lam * cost_i - b) / p_{t_i}

an inverse-propensity (Horvitz-Thompson) estimate of the policy's mean
``revenue - lam * cost`` on RCT data; ``b`` (the batch mean of
``revenue - lam * cost``) is a control variate that leaves the gradient's
expectation unchanged. The Lagrangian form cannot be gamed by under-stating
costs: a cheaper-looking allocation that overspends pays ``lam`` per unit of
its real cost. With the model's detached predictions the same value is
estimated doubly robustly (every arm of every user carries the model's
value, matched users add their weighted residual; ``gain_matrix``'s
``predicted``). The alternative form, "revenue at the budget, overspend
penalised" (:func:`penalised_gains`), allocates at the multiplier that meets
the budget on the *predicted* costs and charges RCT-estimated overspend.

``G`` is piecewise constant in the scores, so its gradient is estimated:

``"es"``
    Gaussian smoothing (evolution strategies) with antithetic pairs, per user:
    all users are perturbed at once, and each user's own change of ``G_i`` is
    correlated with that user's own noise (valid because ``G`` is a sum over
    users; this decoupling is what makes the estimator usable).
``"fd"``
    Per-user finite differences (Zhou et al., DFCL, KDD 2024): for each user
    and each alternative arm, the score margin to that arm and the exact
    change of ``G_i`` if the user took it; their ratio is the slope along
    the move (a level-to-level move shifts both scores by half the margin, a
    move to control only the chosen level's score). With three or more arms
    such a move can pass a third arm first; the slope still credits the
    target arm's change (a surrogate of the gradient, like the others);
    O(n K) per batch.
``"softmax"``
    A relaxation: ``pi = softmax(s / (tau * std(s)))`` replaces the argmax and
    is differentiated directly.

The estimate with respect to the scores is turned into a backward pass by a
custom :class:`torch.autograd.Function`, then back-propagated through the
network.
"""

from __future__ import annotations

import torch

__all__ = ["GOAL_FORMS", "GRADIENT_ESTIMATORS", "decide", "gain_matrix", "marketing_goal",
           "penalised_gains"]

GRADIENT_ESTIMATORS = ("fd", "es", "softmax")
GOAL_FORMS = ("lagrangian", "penalty")


def decide(scores):
    """Arm per user from level scores (n, K): argmax, control unless a score is > 0."""
    best, idx = scores.max(dim=-1)
    return torch.where(best > 0, idx + 1, torch.zeros_like(idx))


def gain_matrix(arm, revenue, cost, weight, multiplier, predicted=None):
    """(n, K+1) value each user adds to ``G`` if the policy gives them arm ``k``.

    Without ``predicted`` (inverse propensity, IPW): non-zero only in the
    column of the arm the user was randomised to, centred by the batch mean.
    With ``predicted`` (n, K+1), the model's (detached) expected
    ``revenue - multiplier * cost`` of every arm, the doubly robust value:
    ``predicted[i, k]`` plus, in the randomised arm's column, the weighted
    residual ``weight_i * (value_i - predicted[i, t_i])``; unbiased for any
    fixed ``predicted``, and every arm of every user carries a value.
    """
    value = revenue - multiplier * cost
    if predicted is not None:
        predicted = predicted.detach().to(value.dtype)
        residual = (value - predicted.gather(1, arm[:, None])[:, 0]) * weight
        return predicted.scatter_add(1, arm[:, None], residual[:, None])
    value = (value - value.mean()) * weight
    n_cols = int(arm.max()) + 1 if arm.numel() else 1
    gains = torch.zeros(arm.shape[0], n_cols, dtype=value.dtype, device=value.device)
    return gains.scatter(1, arm[:, None], value[:, None])


def penalised_gains(arm, revenue, cost, weight, decisions, budget, penalty, n_arms):
    """Gains of the "revenue at the budget, overspend penalised" goal.

    The goal is ``G = R - penalty * max(0, C - budget)`` with ``R`` the
    (control-variate centred) inverse-propensity estimate of the policy's
    mean revenue and ``C`` the estimate of its incremental cost per user. It
    is not a sum over users, so the returned (n, K+1) matrix holds, for every
    user and arm, the user's revenue gain minus ``n`` times the exact change
    of the penalty if that user alone switched from ``decisions`` to the arm:
    differences along a row are the exact changes of ``n * G`` that
    ``"fd"`` needs (``"es"``/``"softmax"`` use them as per-user gains).

    Returns
    -------
    gains : torch.Tensor of shape (n, n_arms)
    overspend : float
        ``max(0, C - budget)`` of ``decisions``.
    """
    n = arm.shape[0]
    g_rev = _pad(gain_matrix(arm, revenue, torch.zeros_like(cost), weight, 0.0), n_arms)
    w_cost = torch.zeros(n, n_arms, dtype=cost.dtype, device=cost.device)
    w_cost = w_cost.scatter(1, arm[:, None], (weight * cost)[:, None])
    control_cost = w_cost[:, 0].mean()  # the control policy's cost estimate
    current = w_cost.gather(1, decisions[:, None])
    spend = current.mean() - control_cost
    over_now = (spend - budget).clamp_min(0.0)
    over_new = (spend + (w_cost - current) / n - budget).clamp_min(0.0)
    return g_rev - penalty * n * (over_new - over_now), float(over_now)


def _pad(gains, n_arms):
    if gains.shape[1] < n_arms:
        gains = torch.nn.functional.pad(gains, (0, n_arms - gains.shape[1]))
    return gains


def _es_gradient(scores, gains, n_perturbations, scale, generator):
    n, k = scores.shape
    sigma = (scale * scores.std()).clamp_min(1e-8) if n > 1 else torch.tensor(scale)
    eps = torch.randn((n_perturbations, n, k), generator=generator, device=scores.device,
                      dtype=scores.dtype)
    g_plus = gains.gather(1, decide(scores + sigma * eps).T).T  # (M, n)
    g_minus = gains.gather(1, decide(scores - sigma * eps).T).T
    return ((g_plus - g_minus)[..., None] * eps).mean(0) / (2 * sigma) / n


def _fd_gradient(scores, gains, margin_floor):
    n, k = scores.shape
    full = torch.cat([torch.zeros_like(scores[:, :1]), scores], 1)
    arm = decide(scores)
    s_a = full.gather(1, arm[:, None])
    floor = (margin_floor * scores.std()).clamp_min(1e-8) if n > 1 else margin_floor
    margin = (s_a - full).clamp_min(floor)  # score change that flips to each arm
    slope = (gains - gains.gather(1, arm[:, None])) / margin
    slope = slope.scatter(1, arm[:, None], 0.0)
    # a flip between two levels moves both scores (half each); a flip to or
    # from control moves only the level's score (control's is fixed at 0)
    grad = torch.zeros_like(full)
    involves_control = (arm[:, None] == 0) | (torch.arange(k + 1, device=arm.device) == 0)
    share = torch.where(involves_control, slope, slope / 2)
    grad += share
    grad.scatter_add_(1, arm[:, None], -share.sum(1, keepdim=True))
    return grad[:, 1:] / n


class _HardGoal(torch.autograd.Function):
    """``G`` in the forward pass, a zeroth-order estimate of dG/ds in the backward."""

    @staticmethod
    def forward(ctx, scores, gains, estimator, n_perturbations, scale, generator):
        with torch.no_grad():
            value = gains.gather(1, decide(scores)[:, None]).mean()
            if estimator == "es":
                grad = _es_gradient(scores, gains, n_perturbations, scale, generator)
            else:
                grad = _fd_gradient(scores, gains, scale)
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad_output * grad, None, None, None, None, None


def marketing_goal(revenue_uplift, cost_uplift, gains, multiplier, *, estimator="fd",
                   n_perturbations=16, perturbation_scale=0.1, temperature=0.3,
                   generator=None):
    """Differentiable surrogate of the batch's Lagrangian goal and its exact value.

    Parameters
    ----------
    revenue_uplift, cost_uplift : torch.Tensor of shape (n, K)
        Predicted uplifts (with autograd history).
    gains : torch.Tensor of shape (n, K+1)
        From :func:`gain_matrix`.
    multiplier : float
        ``lam`` of the Lagrangian.
    estimator : {"fd", "es", "softmax"}
    n_perturbations : int
        Antithetic pairs for ``"es"``.
    perturbation_scale : float
        ``"es"``: noise std relative to the scores' std; ``"fd"``: floor of the
        flip margin relative to the scores' std.
    temperature : float
        ``"softmax"``: temperature relative to the scores' std.
    generator : torch.Generator, optional
        Source of the ``"es"`` perturbations (determinism).

    Returns
    -------
    surrogate : torch.Tensor (scalar)
        Its gradient is the estimator's; its value equals ``value`` for the
        hard estimators.
    value : float
        The goal ``G`` of the argmax policy.
    """
    scores = revenue_uplift - multiplier * cost_uplift
    gains = _pad(gains, scores.shape[1] + 1)
    with torch.no_grad():
        value = float(gains.gather(1, decide(scores)[:, None]).mean())
    if estimator == "softmax":
        full = torch.cat([torch.zeros_like(scores[:, :1]), scores], 1)
        # (one user and one level: no spread to scale by; std() would be NaN)
        tau = ((temperature * scores.detach().std()).clamp_min(1e-8) if scores.numel() > 1
               else torch.tensor(temperature, dtype=scores.dtype, device=scores.device))
        surrogate = (torch.softmax(full / tau, dim=1) * gains).sum(1).mean()
        return surrogate, value
    if estimator not in ("fd", "es"):
        raise ValueError(f"Unknown gradient estimator {estimator!r}; use one of "
                         f"{GRADIENT_ESTIMATORS}.")
    surrogate = _HardGoal.apply(scores, gains, estimator, n_perturbations, perturbation_scale,
                                generator)
    return surrogate, value

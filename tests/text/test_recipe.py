"""The budgeted recipe of ``train text --max-time``: the widest model that gets enough tokens
per parameter in the budget, dropout by passes over the text, lr by width; against a brute
force over the widths with a stand-in speed (the real one is measured)."""

from __future__ import annotations

import math

import pytest

from rnnkit.text.recipe import (
    TOKENS_PER_PARAM,
    USABLE,
    WIDTHS,
    model_params,
    plan_budget,
)


def _speed(flops_per_s: float):
    """A stand-in machine: a training token costs 6 x parameters FLOPs."""
    measured: list[int] = []

    def rate(hidden, vocab, *, cell, layers, embed, batch, bptt, device):
        measured.append(hidden)
        return flops_per_s / (6 * model_params(hidden, vocab, cell=cell, layers=layers,
                                               embed=embed))
    return rate, measured


@pytest.mark.parametrize("flops,budget", [(2e9, 240), (2e10, 240), (2e10, 900), (1e12, 60)])
def test_the_widest_width_with_enough_tokens_per_parameter(flops, budget):
    rate, measured = _speed(flops)
    plan = plan_budget(budget, 1_000_000, 90, rate_fn=rate)
    speed, _ = _speed(flops)
    fits = [h for h in WIDTHS if speed(h, 90, cell="lstm", layers=1, embed=64, batch=16,
                                       bptt=64, device="cpu") * budget * USABLE
            >= TOKENS_PER_PARAM * model_params(h, 90)]
    assert plan.hidden_size == (max(fits) if fits else WIDTHS[0])
    assert plan.params == model_params(plan.hidden_size, 90)
    assert plan.lr == pytest.approx(min(4e-3, 4e-3 * math.sqrt(256 / plan.hidden_size)))
    assert plan.tokens == pytest.approx(plan.rate * (budget - plan.calibration_s) * USABLE)
    assert measured[0] == WIDTHS[0] and measured == sorted(measured)  # stops at the first miss


@pytest.mark.parametrize("passes,dropout", [(1.0, 0.0), (3.0, 0.1), (7.0, 0.2), (20.0, 0.3)])
def test_dropout_grows_with_the_passes_over_the_text(passes, dropout):
    rate, _ = _speed(2e10)
    tokens = plan_budget(240, 10**12, 90, hidden_size=256, rate_fn=rate).tokens
    plan = plan_budget(240, int(tokens / passes), 90, hidden_size=256, rate_fn=rate)
    assert plan.epochs == pytest.approx(passes, rel=0.05)
    assert plan.dropout == dropout, plan.epochs


def test_a_given_width_is_the_only_one_measured_and_the_plan_says_what_it_picked():
    rate, measured = _speed(1e9)
    plan = plan_budget(60, 50_000, 30, hidden_size=48, num_layers=2, rate_fn=rate)
    assert measured == [48] and plan.hidden_size == 48 and plan.num_layers == 2
    text = plan.describe()
    assert text.startswith("recipe: 2x48 LSTM") and "passes over the text" in text
    with pytest.raises(ValueError, match="positive"):
        plan_budget(0, 10, 30, rate_fn=rate)

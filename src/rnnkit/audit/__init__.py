"""Responsibility: what a model cost, whom its data and answers favour, what breaks it.

One module per concept, imported on first use (``rnnkit.audit.count_flops`` loads only
:mod:`~rnnkit.audit.flops`):

* :mod:`~rnnkit.audit.flops`: exact FLOPs, a formula per cell plus ``FlopCounterMode``.
* :mod:`~rnnkit.audit.energy`: energy and CO2 through codecarbon, labelled measured/estimated.
* :mod:`~rnnkit.audit.compute`: the Trainer's compute meter (``compute.json``) and ``measure``.
* :mod:`~rnnkit.audit.terms`: documented identity word lists and exact counterfactual swaps.
* :mod:`~rnnkit.audit.data`: bias in data (text corpora, labelled texts, series coverage).
* :mod:`~rnnkit.audit.fairness`: group metrics through fairlearn with bootstrap intervals.
* :mod:`~rnnkit.audit.probes`: counterfactual probes and robustness scans, any model.
* :mod:`~rnnkit.audit.bias`: the audit of a trained text model (``rnnkit audit model``).
* :mod:`~rnnkit.audit.compare`: quality against energy and FLOPs, the Pareto front.
* :mod:`~rnnkit.audit.card`: model cards (Mitchell et al. 2019).

>>> import rnnkit.audit as audit
>>> audit.swap("She thanked her father.")[0]
'He thanked his mother.'
"""

from __future__ import annotations

from .._lazy import lazy_names

_NAMES = {
    "count_flops": "flops", "recurrent_flops": "flops", "FlopMeter": "flops",
    "register_flops": "flops", "EnergyMeter": "energy", "ComputeMeter": "compute",
    "measure": "compute", "swap": "terms", "find_groups": "terms", "GENDER": "terms",
    "NAMES_GENDER": "terms", "NAMES_RACE": "terms", "RELIGION": "terms",
    "audit_text": "data", "audit_series": "data", "group_metrics": "fairness",
    "counterfactual_probe": "probes", "robustness_scan": "probes",
    "series_robustness": "probes", "audit_classifier": "bias", "pareto_front": "compare",
    "build_card": "card", "write_model_card": "card", "render_report": "card",
}

__all__ = sorted(_NAMES)


__getattr__, __dir__ = lazy_names(__name__, _NAMES)

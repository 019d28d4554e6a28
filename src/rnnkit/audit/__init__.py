"""Responsibility: compute and energy reports, bias in data and models, robustness scans,
model cards."""

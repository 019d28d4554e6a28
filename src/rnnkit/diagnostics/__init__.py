"""Views into a trained or training RNN: gradient flow through time, hidden states.

>>> from rnnkit.diagnostics import gradient_flow, plot_gradient_flow, GradientFlow
"""

from .gradient_flow import GradientFlow, gradient_flow, plot_gradient_flow

__all__ = ["GradientFlow", "gradient_flow", "plot_gradient_flow"]

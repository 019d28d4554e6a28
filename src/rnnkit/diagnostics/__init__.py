"""Views into a trained or training RNN: gradient flow through time, hidden states."""

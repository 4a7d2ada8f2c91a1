"""Thin front ends: the CLI, the console, the IPython magics and widgets."""

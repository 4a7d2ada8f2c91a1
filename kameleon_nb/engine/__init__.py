"""Side effects: context shells, commands, checkpoints, the builder."""

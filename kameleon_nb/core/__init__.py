"""The pure recipe core: model, parsing, variables, resolution, ids, plan."""

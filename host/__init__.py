"""Host side of dpegen: golden model, layout, planner and drivers."""

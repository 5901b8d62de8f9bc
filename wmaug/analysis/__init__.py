"""Measurements behind paper B's analysis figures (Fig 1a, Fig 4a, Fig 4b)."""

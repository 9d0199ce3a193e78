"""day-0 release: recipes, the PTQ/run/compare gates' thin layers, and the conductor."""

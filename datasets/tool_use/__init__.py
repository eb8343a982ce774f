"""Trajectory2Task tool-use benchmark: domains, environment, task generation and the bundled splits."""

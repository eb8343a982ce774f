"""Tool-use evaluation (Trajectory2Task): user simulators, the episode runner, verification, export."""

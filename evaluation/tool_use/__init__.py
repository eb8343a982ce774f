"""Tool-use evaluation (Trajectory2Task on tau2's environments): the scripted user, the episode runner, the family."""

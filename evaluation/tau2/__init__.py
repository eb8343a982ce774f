"""tau2-bench format tool-use benchmarks: task files, environments, episodes and grading."""

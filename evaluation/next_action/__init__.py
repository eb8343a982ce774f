"""OPeRA next-action prediction: prompt builder, reply parser and the evaluator."""

"""The OPeRA next-action dataset: loader for the real Hub layout, a seeded simulator and the bundled copy."""

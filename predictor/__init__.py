"""Predictor service: datasets → run one unit of work each, in a process pool → predictions."""

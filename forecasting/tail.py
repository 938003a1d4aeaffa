"""How much of a series' history an answer carries: a leaf, so forecasting.limits (which sizes records with
it) and forecasting.historical (which bounds the points it predicts by it) both import it downward."""

# The end of the history an answer (and the validator's state) carries for plots; the whole history stays on
# the `series` topic, where the answer points.
HISTORY_TAIL_POINTS = 5_000

"""The live service: follows standing requests (forecasting.live) and publishes forecast revisions."""

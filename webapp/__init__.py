"""Webapp: the Dash UI. It talks only to the gateway's HTTP API."""

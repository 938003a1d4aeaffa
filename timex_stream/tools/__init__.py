"""The client and operations tools: the `timex-stream` CLI, the local stack, the embedded
broker, replay, follow, compare, rendering."""

"""Send messages to AWS IoT Events in guaranteed per-lane order."""

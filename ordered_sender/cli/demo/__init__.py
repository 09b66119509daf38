"""``ordered-sender demo``: the command (``command``) and its verdict (``verdict``)."""

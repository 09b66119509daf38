"""``python -m ordered_sender``: the ``ordered-sender`` command where its script is not on PATH."""

from ordered_sender.cli.app import main

main(prog_name="ordered-sender")

"""A local AWS IoT Events endpoint (the emulator) that boto3 reaches with ``endpoint_url``.

The public API (``Emulator``, ``Faults`` and the recording types) is being written; this module
exists now so that sibling modules of the package can be imported.
"""

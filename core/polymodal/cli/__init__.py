"""The ``polymodal`` command line (click). Importing it imports no torch."""

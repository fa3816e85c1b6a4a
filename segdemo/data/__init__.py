"""Data sets read from the data directory (``$SEGDEMO_DATA_DIR``)."""

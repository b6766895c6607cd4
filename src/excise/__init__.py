"""excise: train language models whose unwanted knowledge can be cut out afterwards."""

__version__ = "0.1.0"

"""morec: offline model-based RL with reward-consistent dynamics models (MOREC)."""

__version__ = "0.1.0"

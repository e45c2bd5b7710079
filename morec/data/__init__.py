"""Datasets: loading (D4RL, NeoRL, Minari, arrays), validation, episodes, normalised scores."""

from morec.data.dataset import ArrayStats, OfflineDataset
from morec.data.errors import DatasetError, UnknownEnvironmentWarning
from morec.data.scores import normalized_score, reference_returns
from morec.data.sources import d4rl_dataset_dir, d4rl_file_name, load_dataset, neorl_dataset_dir, neorl_file_name

__all__ = [
    "ArrayStats",
    "DatasetError",
    "OfflineDataset",
    "UnknownEnvironmentWarning",
    "d4rl_dataset_dir",
    "d4rl_file_name",
    "load_dataset",
    "neorl_dataset_dir",
    "neorl_file_name",
    "normalized_score",
    "reference_returns",
]

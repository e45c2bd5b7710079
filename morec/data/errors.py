"""The one exception the dataset layer raises for bad input, and its one warning."""

from morec.errors import InputWarning, UserError


class DatasetError(UserError, ValueError):
    """A dataset field is missing, malformed or inconsistent. The message names the field and
    the fix."""


class UnknownEnvironmentWarning(InputWarning):
    """A dataset file names no environment (no metadata, no official file name): its observation
    layout is unknown until the caller passes ``env_id``."""

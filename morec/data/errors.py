"""The one exception the dataset layer raises for bad input."""


class DatasetError(ValueError):
    """A dataset field is missing, malformed or inconsistent. The message names the field and
    the fix."""

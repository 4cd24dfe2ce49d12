"""Exceptions raised by the library. Each message names the file, sample key or parameter at fault."""


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class ParamsError(PipelineError, ValueError):
    """A parameter is unknown, of the wrong type or out of range."""


class SourceError(PipelineError):
    """A source dataset is missing, corrupt or malformed (the message names the file)."""


class SampleError(PipelineError, ValueError):
    """One sample breaks the schema (the message names the sample key)."""


class ShardError(PipelineError):
    """A shard set is missing, empty, corrupt or unsuitable for the loader (the message names the file)."""


class OutputExistsError(PipelineError, FileExistsError):
    """An output folder holds something the stage did not write; it refuses to replace it."""

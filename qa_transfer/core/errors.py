"""Every error that a user fixes, in one place: a bad flag, a bad input file or record, a missing optional package,
an output folder in the way, a result file that cannot be written, the hub out of reach. Its message says what and
where (the file and the record, or the flag). Each script's entry point (`core.scripts.run_script`) prints it as
`error: <message>` and exits with status 1 (NetworkDownError: network.NETWORK_DOWN_EXIT_STATUS), without a
traceback; any other exception is a bug and keeps its traceback.

Modules raise the subclass named for what went wrong; scripts catch only UsageError. A second base (ValueError,
OSError, ...) stays where callers catch that built-in kind. Standard library only: every module may import it.
"""


class UsageError(Exception):
    """Something the user can fix; the message names the file and the record, or the flag."""


class ArgumentError(UsageError, ValueError):
    """A bad flag, config file, config value or NAME=VALUE pair, or flags that do not go together."""


# --- Input data -------------------------------------------------------------------------------------------------


class QADataError(UsageError, ValueError):
    """Bad QA input (a file, a record, a dataset that cannot be loaded): the message names the file and the record."""


class InputError(UsageError):
    """Bad classification input (a file, a row, a label, a text): the message names the file and the row."""


class PredictionInputError(UsageError, ValueError):
    """A bad input file or record of predict.py: the message names the file and the record."""


class PredictionFileError(UsageError):
    """A predictions or no-answer scores file that cannot be read as {question id: value}."""


class ProbeError(UsageError, ValueError):
    """An unknown robustness probe name or a bad probe parameter."""


# --- Models -----------------------------------------------------------------------------------------------------


class ModelPathError(UsageError, OSError):
    """A --model_name_or_path (or config / tokenizer name) that names no model that can be loaded here."""


class ModelKindError(UsageError, ValueError):
    """A model folder that is neither a question-answering nor a text-classification model."""


class PackagedModelError(UsageError, RuntimeError):
    """A packaged model is not installed, or its files are not what they should be."""


# --- Output and network -----------------------------------------------------------------------------------------


class OutputDirError(UsageError, ValueError):
    """--output_dir holds an earlier run's files and nothing to resume from."""


class ResultsWriteError(UsageError, OSError):
    """A result file could not be written; the file that was there before (if any) is unchanged."""


class NetworkDownError(UsageError, ConnectionError):
    """The hub, which this run needs, cannot be reached."""

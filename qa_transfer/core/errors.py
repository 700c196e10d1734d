"""The one kind of error that a user fixes: a bad input file or record, a bad flag, a missing optional package, an
output folder in the way, a result file that cannot be written. Its message says what and where (the file and the
record). Each script's entry point (`core.scripts.run_script`) prints it as `error: <message>` and exits with status 1
(network.NetworkDownError: 69), without a traceback; any other exception is a bug and keeps its traceback.

Modules raise subclasses named for what went wrong (QADataError, OutputDirError, ...); scripts catch only this base.
"""


class UsageError(Exception):
    """Something the user can fix; the message names the file and the record, or the flag."""


class ArgumentError(UsageError, ValueError):
    """A bad flag, config value or NAME=VALUE pair; a ValueError as well, which argument checks raise."""

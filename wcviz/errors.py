"""The one exception type for expected user mistakes.

The CLI turns a :class:`WcvizError` into one line on stderr and exit status 2, never a
traceback. Library users get an ordinary exception (a ``ValueError`` subclass) they can catch.
"""


class WcvizError(ValueError):
    """A mistake in the user's input: the message names the problem and the fix."""

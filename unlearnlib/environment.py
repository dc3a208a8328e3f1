"""Environment variables set for a block and restored after it.

>>> import os
>>> with environment(UNLEARNLIB_EXAMPLE="1"):
...     os.environ["UNLEARNLIB_EXAMPLE"]
'1'
>>> "UNLEARNLIB_EXAMPLE" in os.environ
False

Product code used ``unittest.mock.patch.dict(os.environ, ...)`` for this (issue 35): a
test helper, which also restored every other variable the block changed. This restores
exactly the variables it was given.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Mapping


@contextlib.contextmanager
def environment(variables: Mapping[str, object | None] | None = None, /,
                **more: object | None) -> Iterator[None]:
    """Set the environment variables of ``variables`` and ``more`` (by keyword) for the
    ``with`` block; a value of None unsets the variable, any other value is set as
    ``str(value)``. On exit, also by an exception, each of these variables gets back the
    value it had before, or is unset again if it had none; other variables are left alone.
    Names with characters a keyword cannot take go in ``variables``."""
    new = {**(variables or {}), **more}
    saved = {name: os.environ.get(name) for name in new}
    try:
        for name, value in new.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = str(value)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


__all__ = ["environment"]

"""The book: building it (:mod:`.build`), its figures (:mod:`.plots`) and the live
explorer (:mod:`.widgets`). ``unlearnlib.book.build_book`` and the other build
functions are re-exported here."""

from .build import *  # noqa: F401,F403
from .build import __all__  # noqa: F401
